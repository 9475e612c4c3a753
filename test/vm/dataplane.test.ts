// The KNI data path end to end, inside the appliance VM: kni.ko, the native
// data plane, real namespaces, veths, ping and iperf3.
//
//   netns A                     init ns (this process)                 netns B
//   kvdp0 (KNI) 10.99.0.1 ═ FIFOs ═ data plane ═ AF_PACKET on kvp0 ─ veth ─ kvp1 10.99.0.2
//
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { DataPlane, Kni, KniError, moduleInfo, type ControlNotification, type KniInterface } from '../../native/index.js';
import { projectRoot } from '../../qemu/paths.js';
import { csumErrors, iperf3, loadKniMode, nsExec } from '../lib/netns.js';
import { waitFor } from '../lib/util.js';

const sh = (cmd: string) => execa('sh', ['-c', cmd], { all: true });


/** Kernel-side counters of a netdev, from sysfs inside its namespace. */
async function netdevStats(ns: string, dev: string) {
  const read = async (name: string) => Number((await nsExec(ns, `cat /sys/class/net/${dev}/statistics/${name}`)).stdout);
  return { rxPackets: await read('rx_packets'), rxDropped: await read('rx_dropped'), txPackets: await read('tx_packets'), txDropped: await read('tx_dropped') };
}

async function topology(t: ExecutionContext, kni: Kni) {
  await sh('ip netns add A && ip netns add B && ip link add kvp0 type veth peer name kvp1 && ip link set kvp1 netns B && ip link set kvp0 up');
  t.teardown(() => sh('ip netns del A; ip netns del B; ip link del kvp0').catch(() => undefined));
  await sh('ip -n B addr add 10.99.0.2/24 dev kvp1 && ip -n B link set kvp1 up');
  // B keeps its offloads: the AF_PACKET port completes its partial checksums
  // and cuts its TSO super-frames to size.
  t.regex((await nsExec('B', 'ethtool -k kvp1')).stdout, /tcp-segmentation-offload: on/);
  const iface = kni.create({ name: 'kvdp0' });
  const dp = new DataPlane([{ iface, port: { kind: 'packet', ifname: 'kvp0' } }]);
  t.teardown(() => dp.stop());
  await sh('ip link set kvdp0 netns A && ip -n A addr add 10.99.0.1/24 dev kvdp0 && ip -n A link set kvdp0 up');
  const carrier = await nsExec('A', 'echo 1 > /sys/class/net/kvdp0/carrier');
  t.is(carrier.exitCode, 0, carrier.all);
  return { iface, dp };
}

/**
 * The data plane's and the netdev's counters once they agree, or the last
 * pair read after 10 s: a frame may be in flight between them (on a FIFO), and
 * the stack may still send one (a late ACK, neighbour discovery).
 */
async function settledCounters(iface: KniInterface) {
  const end = Date.now() + 10_000;
  for (;;) {
    const s = iface.stats();
    const k = await netdevStats('A', 'kvdp0');
    if ((k.rxPackets + k.rxDropped === s.toKernelPackets && k.txPackets === s.toPortPackets + s.dropPortError) || Date.now() > end) {
      return { s, k };
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function pingAndIperf(t: ExecutionContext, mode: 'single' | 'multiple') {
  await loadKniMode(mode);
  const kni = new Kni();
  t.teardown(() => kni.close());
  const { iface } = await topology(t, kni);

  const ab = await nsExec('A', 'ping -c 5 -i 0.2 -W 5 10.99.0.2');
  t.is(ab.exitCode, 0, ab.all);
  t.regex(ab.stdout, /5 packets transmitted, 5 received/);
  const ba = await nsExec('B', 'ping -c 5 -i 0.2 -W 5 10.99.0.1');
  t.is(ba.exitCode, 0, ba.all);
  t.regex(ba.stdout, /5 packets transmitted, 5 received/);

  for (const reverse of [false, true]) {
    const got = await iperf3(t, 'B', '10.99.0.2', 'A', reverse);
    t.true(got.bytes > 0);
    t.log(`${mode}: iperf3 ${reverse ? 'B→A' : 'A→B'} ${(got.bitsPerSecond / 1e6).toFixed(1)} Mbit/s (TCG)`);
  }

  // Every frame the data plane queued was delivered to the stack or dropped
  // by the module; every frame the stack queued was sent on the port or
  // refused by it.
  const { s, k } = await settledCounters(iface);
  t.true(s.toKernelPackets >= 10 && s.toPortPackets >= 10);
  t.is(k.rxPackets + k.rxDropped, s.toKernelPackets);
  t.is(k.txPackets, s.toPortPackets + s.dropPortError);
  t.is(s.badBuffer, 0);
  t.is(s.dropTooBig, 0, 'every super-frame from B was cut to size');
  t.is(await csumErrors('A'), 0, 'A saw no checksum errors');
  t.is(await csumErrors('B'), 0, 'B saw no checksum errors');
}

test.serial('namespaces joined through kniv: ping and iperf3 both ways, counters match (kthread_mode=single)', (t) => pingAndIperf(t, 'single'));
test.serial('the same with kthread_mode=multiple', (t) => pingAndIperf(t, 'multiple'));

async function withInterface(t: ExecutionContext, name: string, dataPlane: boolean) {
  const kni = new Kni();
  t.teardown(() => kni.close());
  const iface = kni.create({ name });
  if (dataPlane) {
    const dp = new DataPlane([{ iface, port: { kind: 'generator', frame: Buffer.alloc(60), count: 0, pps: 1 } }]);
    t.teardown(() => dp.stop());
  }
  return iface;
}

/** Busy share of all CPUs over `ms`, from /proc/stat. */
async function cpuBusy(ms: number): Promise<number> {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { idle: f[3]! + f[4]!, total: f.reduce((x, y) => x + y, 0) };
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

test.serial('idle, the data plane and kni.ko sleep; the first frames after a pause ring the doorbells and get through', async (t) => {
  await loadKniMode('single');
  const kni = new Kni();
  t.teardown(() => kni.close());
  const { iface } = await topology(t, kni);
  // Quiet both ends, so that idle means idle (no neighbour discovery).
  await nsExec('A', 'sysctl -qw net.ipv6.conf.kvdp0.disable_ipv6=1');
  await nsExec('B', 'sysctl -qw net.ipv6.conf.kvp1.disable_ipv6=1');
  t.true(await waitFor(() => iface.stats().sleeps > 0, 10_000), 'the data plane went to sleep');
  const quiet = await cpuBusy(3000);
  const before = iface.stats();
  // Both sides asleep: B's ping wakes the data plane through its port, which
  // rings kni.ko's doorbell; the reply wakes the data plane through the eventfd.
  const ping = await nsExec('B', 'ping -c 3 -i 1 -W 5 10.99.0.1');
  t.is(ping.exitCode, 0, ping.all);
  t.regex(ping.stdout, /3 packets transmitted, 3 received/);
  const after = iface.stats();
  t.true(after.kernelKicks > before.kernelKicks, `kernelKicks ${before.kernelKicks} → ${after.kernelKicks}`);
  t.true(after.sleeps > before.sleeps, 'it slept again between the pings');
  t.log(`idle with one interface and its data plane: ${(quiet * 100).toFixed(1)}% of the VM's CPUs busy; ${after.sleeps} sleeps, ${after.kernelKicks} kicks`);
});

test.serial('ip link set mtu, address, up, promisc and down apply at once and are notified to the data plane, in order', async (t) => {
  await loadKniMode('single');
  const iface = await withInterface(t, 'kvrq0', true);
  const notified: string[] = [];
  iface.on('notify', (n: ControlNotification) => notified.push(n.type === 'mac' ? `mac ${n.mac}` : `${n.type} ${n.value}`));
  await sh('ip link set kvrq0 mtu 1400');
  await sh('ip link set kvrq0 address 02:00:00:00:00:42');
  await sh('ip link set kvrq0 up');
  await sh('ip link set kvrq0 promisc on');
  await sh('ip link set kvrq0 down');
  const show = (await sh('ip link show kvrq0')).stdout;
  t.regex(show, /mtu 1400/);
  t.regex(show, /link\/ether 02:00:00:00:00:42/);
  t.regex(show, /PROMISC/);
  const bad = await execa('ip', ['link', 'set', 'kvrq0', 'mtu', String(iface.maxMtu + 1)], { reject: false });
  t.not(bad.exitCode, 0, 'an MTU above max_mtu is refused by the core');
  t.true(await waitFor(() => notified.length >= 5, 5000), notified.join(', '));
  t.deepEqual(notified, ['mtu 1400', 'mac 02:00:00:00:00:42', 'link 1', 'promisc 1', 'link 0']);
});

test.serial('with its data plane stopped (SIGSTOP), ip link changes still apply at once without holding RTNL, and the data plane is told after SIGCONT', async (t) => {
  await loadKniMode('single');
  const child = execa('node', ['--input-type=module', '-e', `
    import { Kni, DataPlane } from '${projectRoot}/dist/native/index.js';
    const kni = new Kni();
    const iface = kni.create({ name: 'kvst0' });
    new DataPlane([{ iface, port: { kind: 'sink' } }]);
    iface.on('notify', (n) => console.log(JSON.stringify(n)));
    console.log('ready');
    setInterval(() => {}, 1000);
  `], { reject: false, all: true });
  // Gone before the next test reloads kni.ko: its /dev/kni holds the module.
  t.teardown(async () => {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await child;
  });
  const lines: string[] = [];
  child.stdout.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  t.true(await waitFor(() => lines.includes('ready'), 10_000), 'the child created kvst0');
  child.kill('SIGSTOP');

  // Each of these used to wait for the stopped handler's answer, holding RTNL, for req_timeout_ms (2 s).
  const timed = async (args: string[]) => {
    const t0 = Date.now();
    const r = await execa('ip', args, { reject: false, all: true });
    return { r, ms: Date.now() - t0 };
  };
  const changes = [
    ['link', 'set', 'kvst0', 'mtu', '1400'],
    ['link', 'set', 'kvst0', 'address', '02:00:00:00:00:77'],
    ['link', 'set', 'kvst0', 'up'],
  ];
  const took: number[] = [];
  for (const args of changes) {
    const { r, ms } = await timed(args);
    t.is(r.exitCode, 0, r.all);
    took.push(ms);
  }
  // While one more change runs, another device's netlink query is not delayed.
  const [change, other] = await Promise.all([timed(['link', 'set', 'kvst0', 'mtu', '1300']), timed(['link', 'show', 'dev', 'lo'])]);
  t.is(change.r.exitCode, 0, change.r.all);
  t.is(other.r.exitCode, 0, other.r.all);
  t.log(`with the handler stopped: ip link set took ${took.join(', ')}, ${change.ms} ms; ip link show lo meanwhile ${other.ms} ms (TCG)`);
  for (const ms of [...took, change.ms, other.ms]) t.true(ms < 1000, `${ms} ms: nothing waited for the stopped handler`);
  const show = (await sh('ip link show kvst0')).stdout;
  t.regex(show, /mtu 1300/);
  t.regex(show, /link\/ether 02:00:00:00:00:77/);
  t.regex(show, /state (UP|DOWN|UNKNOWN)/);
  t.regex(show, /<[^>]*\bUP\b/);

  // The stopped data plane loses nothing: it reads the notifications once it runs.
  child.kill('SIGCONT');
  const want = ['{"type":"mtu","value":1400', '{"type":"mac","value":0,"mac":"02:00:00:00:00:77"}', '{"type":"link","value":1', '{"type":"mtu","value":1300'];
  t.true(await waitFor(() => lines.length >= 5, 10_000), lines.join(' | '));
  const got = lines.filter((l) => l !== 'ready');
  want.forEach((w, i) => t.true(got[i]?.startsWith(w), `notification ${i}: ${got[i]} (want ${w}…)`));
});

test.serial('kill -9 of the process that owns interfaces removes them and their memory', async (t) => {
  await loadKniMode('single');
  const base = moduleInfo();
  const child = execa('node', ['--input-type=module', '-e', `
    import { Kni, DataPlane } from '${projectRoot}/dist/native/index.js';
    const kni = new Kni();
    const a = kni.create({ name: 'kvkill0' });
    const b = kni.create({ name: 'kvkill1' });
    new DataPlane([{ iface: a, port: { kind: 'generator', frame: Buffer.alloc(60, 0xff), count: 0, pps: 1000 } }]);
    console.log('ready');
    setInterval(() => {}, 1000);
  `], { reject: false });
  await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
  t.is(moduleInfo().interfaces, base.interfaces + 2);
  child.kill('SIGKILL');
  await child;
  t.true(await waitFor(() => moduleInfo().interfaces === base.interfaces, 10_000), 'interfaces removed');
  t.is(moduleInfo().sharedMemoryBytes, base.sharedMemoryBytes);
  const links = await execa('ip', ['-o', 'link', 'show'], { all: true });
  t.notRegex(links.stdout, /kvkill/);
});

test.serial('100 create/release cycles with traffic leave no netdev and no memory behind', async (t) => {
  await loadKniMode('single');
  const base = moduleInfo();
  const kni = new Kni();
  t.teardown(() => kni.close());
  let delivered = 0;
  for (let i = 0; i < 100; i++) {
    const iface = kni.create({ name: `kvc${i}`, bufCount: 64, fifoEntries: 64 });
    const dp = new DataPlane([{ iface, port: { kind: 'generator', frame: Buffer.alloc(60, 0xff), count: 20, pps: 0 } }], { idleUs: 50 });
    await waitFor(() => iface.stats().toKernelPackets === 20, 5000, 5);
    delivered += iface.stats().toKernelPackets;
    dp.stop();
    iface.release();
  }
  t.is(delivered, 2000);
  const after = moduleInfo();
  t.is(after.interfaces, base.interfaces);
  t.is(after.sharedMemoryBytes, base.sharedMemoryBytes);
  t.notRegex((await execa('ip', ['-o', 'link', 'show'])).stdout, /kvc\d/);
});

test.serial('bad input is refused with a precise error, in TS and in the kernel', async (t) => {
  await loadKniMode('single');
  const kni = new Kni();
  t.teardown(() => kni.close());
  t.throws(() => kni.create({ name: 'this-name-is-far-too-long' }), { message: /interface name/ });
  t.throws(() => kni.create({ name: 'kvbad0', fifoEntries: 100 }), { message: /power of two/ });
  kni.create({ name: 'kvbad0' });
  const dup = t.throws(() => kni.create({ name: 'kvbad0' }));
  t.true(dup instanceof KniError);
  t.is((dup as KniError).code, 'EEXIST');
  t.is((dup as KniError).syscall, 'ioctl');
});
