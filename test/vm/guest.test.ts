// A nested guest inside the appliance VM whose NICs are KNI sockets: the
// product's data path end to end. One boot serves the whole file (a nested
// TCG boot takes minutes on a loaded two-core machine), so the tests run in
// order on it.
//
//   netns kvg-n0  10.3.0.1 ─ veth ─ AF_PACKET ═ data plane ═ kvg0 (KNI) ═ socket ═ vhost-net ═ eth0 10.3.0.2
//   netns kvg-n1  10.4.0.1 ─ veth ─ AF_PACKET ═ data plane ═ kvg1 (KNI) ═ socket ═ vhost-net ═ eth1 10.4.0.2
//                                                              VNET_HDR on
//   netns kvg-n2  10.5.0.1 ─ veth ─ AF_PACKET ═ data plane ═ kvg2 (KNI) ═ socket ═ qemu ═════ eth2 10.5.0.2
//                                                              VNET_HDR on, vhost=off      nested guest: iperf3 -s,
//                                                                                           offloads left on
//
// This process is the launcher: it writes sock_en (through enableSocket) and
// hands the descriptors to qemu in stdio slots. The peers keep their offloads
// on too; the data plane completes and cuts what they send.
//
// The VM suite runs this file beside service-guest.test.ts (its guest phase,
// test/runner.ts), so checks name this file's own interfaces, sockets and
// qemu; leftovers.test.ts counts the whole module once both are done.
import test from 'ava';
import { existsSync, fstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { closeFd, DataPlane, enableSocket, Kni, setVnetHdr, type KniInterface } from '../../native/index.js';
import { formatProblem } from '../../qemu/console.js';
import { waitForGuestReady, type GuestUp } from '../../qemu/guest-boot.js';
import { GUEST_ERROR, GUEST_EXIT, guestBoot } from '../../qemu/guest-image.js';
import { loadKernels } from '../../qemu/kernels.js';
import { launchVm, type Vm } from '../../qemu/launcher.js';
import { vhostWakeups, vhostWorkers } from '../../qemu/vhost-workers.js';
import { snmpCsumErrors } from '../lib/netns.js';
import { kniv, waitFor } from '../lib/util.js';

const NICS = [
  { kni: 'kvg0', ns: 'kvg-n0', peer: '10.3.0.1', guest: '10.3.0.2', vnetHdr: false, vhost: true },
  { kni: 'kvg1', ns: 'kvg-n1', peer: '10.4.0.1', guest: '10.4.0.2', vnetHdr: true, vhost: true },
  { kni: 'kvg2', ns: 'kvg-n2', peer: '10.5.0.1', guest: '10.5.0.2', vnetHdr: true, vhost: false },
] as const;

const runDir = mkdtempSync(join(tmpdir(), 'kniv-guest-'));
const consoleLines: string[] = [];
const kni = new Kni();
const ifaces: KniInterface[] = [];
const planes: DataPlane[] = [];
let vm: Vm | undefined;
let launchedAt = 0;
let up: GuestUp | undefined;
let anyFailed = false;
/** The sockets handed to qemu, as /proc/PID/fd names them ("socket:[INODE]"). */
let socketNames: string[] = [];

const sh = (cmd: string) => execa('sh', ['-c', cmd]);
const nsExec = (ns: string, cmd: string) => execa('ip', ['netns', 'exec', ns, 'sh', '-c', cmd], { all: true, reject: false });
const ethtool = async (dev: string, stat: string) => Number(new RegExp(`${stat}: (\\d+)`).exec((await execa('ethtool', ['-S', dev])).stdout)?.[1]);

/** What qemu's descriptors point at. */
function qemuFds(): string[] {
  if (!vm) return [];
  const pid = vm.pid;
  return readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

function thisKernel() {
  for (const k of loadKernels().values()) if (k.release === release()) return k;
  throw new Error(`these tests run inside the appliance VM, not on ${release()}`);
}


/**
 * iperf3 from a peer namespace against the guest. The guest's server tears
 * down and re-listens after every test, which takes a while in a slow guest:
 * a refused, reset or "busy" control connection in that window is retried.
 */
async function iperf(ns: string, address: string, reverse: boolean): Promise<{ receivedBytes: number; bitsPerSecond: number }> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const r = await execa('ip', ['netns', 'exec', ns, 'iperf3', '-c', address, '-t', '3', '-J', ...(reverse ? ['-R'] : [])], { reject: false, timeout: 120_000 });
    const out = JSON.parse(r.stdout || '{}') as { error?: string; end?: { sum_received?: { bytes: number; bits_per_second: number } } };
    if (r.exitCode === 0 && out.end?.sum_received) return { receivedBytes: out.end.sum_received.bytes, bitsPerSecond: out.end.sum_received.bits_per_second };
    const error = out.error ?? r.stderr;
    if (!/refused|busy|reset by peer|unable to (connect|receive)/i.test(error) || Date.now() > deadline) {
      throw new Error(`iperf3 -c ${address}${reverse ? ' -R' : ''} in ${ns} failed: ${error}`);
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
}


/** The guest prints its /proc/net/snmp every few seconds (see the run script below). */
const GUEST_SNMP = /^kniv-snmp (.*)$/;

function waitForConsole(re: RegExp, timeoutMs: number, after = 0): Promise<string> {
  const seen = consoleLines.slice(after).find((l) => re.test(l));
  if (seen !== undefined) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      vm?.off('console', onLine);
      reject(new Error(`no guest console line matching ${re} within ${timeoutMs / 1000} s; console tail:\n${vm?.consoleTail(40).join('\n')}`));
    }, timeoutMs);
    const onLine = (line: string) => {
      if (re.test(line)) {
        clearTimeout(timer);
        vm?.off('console', onLine);
        resolve(line);
      }
    };
    vm?.on('console', onLine);
  });
}

test.before(async () => {
  for (const [i, n] of NICS.entries()) {
    await sh(`ip netns add ${n.ns} && ip link add kvgp${i}a type veth peer name kvgp${i}b && ip link set kvgp${i}b netns ${n.ns} && ip link set kvgp${i}a up`);
    await sh(`ip -n ${n.ns} addr add ${n.peer}/24 dev kvgp${i}b && ip -n ${n.ns} link set kvgp${i}b up && ip -n ${n.ns} link set lo up`);
    const iface = kni.create({ name: n.kni });
    ifaces.push(iface);
    planes.push(new DataPlane([{ iface, port: { kind: 'packet', ifname: `kvgp${i}a` } }]));
    setVnetHdr(n.kni, n.vnetHdr);
  }
});

test.afterEach.always((t) => {
  if (!t.passed) anyFailed = true;
});

test.after.always(async () => {
  if (vm && !vm.hasExited) await vm.stop();
  // A failed test leaves the guest's whole console behind (a kernel problem already did, in the launcher).
  if (vm && anyFailed && vm.kernelProblems.length === 0) vm.keepConsole('test-failed');
  for (const p of planes) p.stop();
  kni.close();
  for (const [i, n] of NICS.entries()) await sh(`ip netns del ${n.ns}; ip link del kvgp${i}a`).catch(() => undefined);
  rmSync(runDir, { recursive: true, force: true });
});

test.serial('a guest boots with three KNI sockets as its NICs and pings every peer namespace through them', async (t) => {
  t.timeout(20 * 60_000, 'a nested TCG boot on a loaded machine');
  const fds = NICS.map((n) => enableSocket(n.kni));
  socketNames = fds.map((fd) => `socket:[${fstatSync(fd).ino}]`);
  const run = [
    '(while :; do sleep 3; echo "kniv-snmp $(tr \'\\n\' \'|\' < /proc/net/snmp)"; done) &',
    NICS.map((n) => `ping -c 3 -W 10 ${n.peer}`).join(' && '),
  ].join('\n');
  launchedAt = Date.now();
  try {
    vm = await launchVm({
      spec: {
        name: 'kniguest',
        memoryMiB: 256,
        boot: guestBoot(thisKernel(), {
          net: NICS.map((n, i) => ({ ifname: `eth${i}`, address: `${n.guest}/24` })),
          iperfServer: true,
          run,
        }),
        nics: NICS.map((n, i) => ({ vhost: n.vhost, backend: { kind: 'fd' as const, fd: fds[i]! } })),
      },
      runDir,
      onConsole: (l) => consoleLines.push(l),
    });
  } finally {
    // qemu holds them now; this process keeps no reference.
    for (const fd of fds) closeFd(fd);
  }
  for (const n of NICS) t.regex(readFileSync(`/sys/class/net/${n.kni}/sock_en`, 'utf8'), /^1/, `${n.kni}'s socket is attached`);
  t.deepEqual(socketNames.filter((name) => !qemuFds().includes(name)), [], 'qemu holds all three sockets');

  up = await waitForGuestReady(vm, { timeoutMs: 18 * 60_000, log: (m) => t.log(m) });
  t.log(`guest ready after ${((Date.now() - launchedAt) / 1000).toFixed(0)} s wall clock (guest uptime ${/uptime=([\d.]+)/.exec(up.ready)?.[1]} s) on ${release()}${up.faults.length ? `, ${up.faults.length} faulted boot(s) reset first` : ''}`);
  const exit = await waitForConsole(GUEST_EXIT, 5 * 60_000);
  t.is(exit, 'kniv-guest: exit 0', `the guest's pings failed:\n${vm.consoleTail(30).join('\n')}`);
  t.deepEqual(consoleLines.filter((l) => GUEST_ERROR.test(l)), []);
});

test.serial('vhost-net carries the two vhost=on NICs, qemu itself the third, with no fallback to userspace', async (t) => {
  if (!vm) return t.fail('no guest');
  t.deepEqual(await vm.vhostStatus(), NICS.map((n, i) => ({ nic: i, requested: n.vhost, started: n.vhost })));
  t.is(vm.vhostFallback, undefined, vm.qemuOutput());
  t.notRegex(vm.qemuOutput(), /falling back on userspace virtio|unable to start vhost/);
  const workers = vhostWorkers(vm.pid);
  t.is(workers.length, 2, 'one vhost-net worker per vhost NIC');
  t.true(workers.every((w) => w.where === (release().startsWith('6.1.') ? 'kthread' : 'qemu thread')));
  const open = qemuFds();
  t.is(open.filter((f) => f === '/dev/vhost-net').length, 2, 'qemu holds /dev/vhost-net twice');
  t.is(open.filter((f) => f.startsWith('socket:')).length >= 3, true, 'and the three KNI sockets');
});

test.serial('the peers ping the guest on all three NICs', async (t) => {
  for (const n of NICS) {
    const r = await nsExec(n.ns, `ping -c 3 -W 10 ${n.guest}`);
    t.is(r.exitCode, 0, r.all);
    t.regex(r.stdout, /3 (packets )?received/);
  }
});

for (const [i, n] of NICS.entries()) {
  const what = `${n.vhost ? 'vhost-net' : 'qemu (vhost=off)'}, VNET_HDR ${n.vnetHdr ? 'on' : 'off'}`;
  test.serial(`iperf3 both ways through ${n.kni}: ${what}`, async (t) => {
    if (!vm) return t.fail('no guest');
    const before = vhostWakeups(vm.pid);
    const gsoBefore = await ethtool(n.kni, 'tx_gso_frames');
    const toGuest = await iperf(n.ns, n.guest, false);
    const fromGuest = await iperf(n.ns, n.guest, true);
    const woke = vhostWakeups(vm.pid) - before;
    const gso = (await ethtool(n.kni, 'tx_gso_frames')) - gsoBefore;
    t.true(toGuest.receivedBytes > 0 && fromGuest.receivedBytes > 0);
    t.log(`peer→guest ${(toGuest.bitsPerSecond / 1e6).toFixed(1)} Mbit/s, guest→peer ${(fromGuest.bitsPerSecond / 1e6).toFixed(1)} Mbit/s (nested TCG); vhost workers woke ${woke} times; ${gso} TSO frames segmented`);
    // With vhost the workers move the packets; idle, they sleep.
    if (n.vhost) t.true(woke >= 20, `the vhost workers woke ${woke} times while traffic flowed`);
    // The guest keeps its offloads: with VNET_HDR it sends TSO frames, which
    // the socket segments; without it qemu offers the guest no TSO at all.
    if (n.vnetHdr) t.true(gso > 0, 'the guest sent TSO frames and the socket segmented them');
    else t.is(gso, 0);
    t.is(await ethtool(n.kni, 'tx_drop_bad_vnet_hdr'), 0);
    t.is(ifaces[i]!.stats().badBuffer, 0);
    t.is(snmpCsumErrors((await nsExec(n.ns, 'cat /proc/net/snmp')).stdout), 0, `${n.ns} counted no checksum errors`);
  });
}

test.serial('the guest counted no checksum errors on any NIC', async (t) => {
  const from = consoleLines.length;
  const line = await waitForConsole(GUEST_SNMP, 60_000, from);
  t.is(snmpCsumErrors(GUEST_SNMP.exec(line)![1]!), 0, line);
});

test.serial('the guest kernel reported no problem once it was up', (t) => {
  if (!vm || !up) return t.fail('no guest');
  t.deepEqual(vm.kernelProblemsSince(up.readyMark).map(formatProblem), []);
});

test.serial('kniv sock exec hands a socket to a command as fd 3 and detaches it when the command ends', async (t) => {
  const extra = kni.create({ name: 'kvg9' });
  t.teardown(() => extra.release());
  const r = await execa('node', [kniv, 'sock', 'exec', 'kvg9', '--', 'sh', '-c', 'readlink /proc/self/fd/{fd}; cat /sys/class/net/kvg9/sock_en'], { reject: false, all: true });
  t.is(r.exitCode, 0, r.all);
  t.regex(r.stdout, /^socket:\[\d+\]\n1$/);
  t.is(readFileSync('/sys/class/net/kvg9/sock_en', 'utf8').trim(), '0');
});

test.serial('removing an interface under the running guest, then kill -9 of qemu mid-transfer, leave nothing behind', async (t) => {
  t.timeout(3 * 60_000);
  if (!vm) return t.fail('no guest');
  // kvg2's interface goes away while qemu still holds its socket.
  planes[2]!.stop();
  ifaces[2]!.release();
  t.false(existsSync('/sys/class/net/kvg2'), 'kvg2 is gone');
  t.true(NICS.slice(0, 2).every((n) => existsSync(`/sys/class/net/${n.kni}`)), 'kvg0 and kvg1 stay');
  t.true(qemuFds().includes(socketNames[2]!), 'the detached socket lives on in qemu');

  // qemu dies with the kernel copying on kvg0 (vhost) and kvg1.
  const load = execa('ip', ['netns', 'exec', NICS[0].ns, 'iperf3', '-c', NICS[0].guest, '-t', '30'], { reject: false, timeout: 60_000 });
  await new Promise((r) => setTimeout(r, 4000));
  process.kill(vm.pid, 'SIGKILL');
  await vm.exited;
  // Its peer would wait minutes for TCP to give up on a guest that is gone.
  load.kill('SIGKILL');
  await load;
  // Their sockets detach as qemu's descriptors close; that kni.ko freed all
  // three (kvg2's too) leftovers.test.ts checks once nothing else holds one.
  const detached = () => NICS.slice(0, 2).every((n) => readFileSync(`/sys/class/net/${n.kni}/sock_en`, 'utf8').trim() === '0');
  t.true(await waitFor(detached, 10_000), 'kvg0 and kvg1 detached from their sockets with qemu');
  t.true(await waitFor(() => vhostWorkers(vm!.pid).length === 0, 10_000), 'the vhost workers ended with qemu');
  t.log(`the whole file: ${((Date.now() - launchedAt) / 1000).toFixed(0)} s from launch`);
});
