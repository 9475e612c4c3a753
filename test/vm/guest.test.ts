// A nested guest inside the appliance VM, wired to TAP devices, with and
// without vhost-net. One boot serves the whole file (a nested TCG boot takes
// minutes on a loaded two-core machine), so the tests run in order on it.
//
//   appliance VM                                          nested guest (qemu, TCG)
//   ─────────────────────────────────────────             ────────────────────────
//   kvtap0 10.1.0.1/24 ── fd=N, vhost=on  ──(vhost-net)── eth0 10.1.0.2/24
//        (opened by python3, passed to the launcher: the KNI socket's path)
//   kvtap1 10.2.0.1/24 ── ifname=, vhost=off ─(qemu)───── eth1 10.2.0.2/24
//                                                         iperf3 -s
//
// The launcher runs in a separate process that starts the VM as persistent
// and exits; this file adopts it, as a restarted service would.
import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { GUEST_ERROR, GUEST_EXIT, GUEST_READY, guestBoot } from '../../qemu/guest-image.js';
import { loadKernels } from '../../qemu/kernels.js';
import { adoptVm, isQemuWithPidfile, RUN_FILES, type Vm } from '../../qemu/launcher.js';
import { projectRoot } from '../../qemu/paths.js';
import { nicMac, type VmSpecInput } from '../../qemu/vm-spec.js';
import { alive, waitFor } from '../lib/util.js';

const TAPS = [
  { ifname: 'kvtap0', host: '10.1.0.1', guest: '10.1.0.2' },
  { ifname: 'kvtap1', host: '10.2.0.1', guest: '10.2.0.2' },
] as const;

const runDir = mkdtempSync(join(tmpdir(), 'kniv-nested-'));
const consoleLines: string[] = [];
let vm: Vm | undefined;
let launchedAt = 0;

const ip = (...args: string[]) => execa('ip', args);

function thisKernel() {
  for (const k of loadKernels().values()) if (k.release === release()) return k;
  throw new Error(`these tests run inside the appliance VM, not on ${release()}`);
}

/**
 * vhost-net's worker for a qemu: on 6.1 a kernel thread "vhost-<pid>"; from
 * 6.4 on (6.12) a vhost_task, a thread of the same name inside qemu's own
 * thread group. It sleeps until a queue needs it, so its context switches
 * count the times it woke up to move packets.
 */
function vhostWorkers(qemuPid: number): { tid: number; where: 'kthread' | 'qemu thread'; wakeups: number }[] {
  const name = `vhost-${qemuPid}`;
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  const wakeups = (dir: string) => {
    const status = read(`${dir}/status`);
    const n = (key: string) => Number(new RegExp(`^${key}:\\s*(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return n('voluntary_ctxt_switches') + n('nonvoluntary_ctxt_switches');
  };
  const out: { tid: number; where: 'kthread' | 'qemu thread'; wakeups: number }[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${qemuPid}/task`);
  } catch {
    // qemu is gone; a 6.1 kthread would still show below
  }
  for (const tid of tasks) {
    const dir = `/proc/${qemuPid}/task/${tid}`;
    if (read(`${dir}/comm`).trim() === name) out.push({ tid: Number(tid), where: 'qemu thread', wakeups: wakeups(dir) });
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (read(`/proc/${pid}/comm`).trim() === name) out.push({ tid: Number(pid), where: 'kthread', wakeups: wakeups(`/proc/${pid}`) });
  }
  return out;
}

interface IperfResult {
  sentBytes: number;
  receivedBytes: number;
  receivedBitsPerSecond: number;
}

/**
 * iperf3 against the guest. Its server tears down and re-listens after every
 * test, which takes a while in a slow guest: a refused, reset or "busy"
 * control connection in that window is retried.
 */
async function iperf(address: string, reverse: boolean): Promise<IperfResult> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await execa('iperf3', ['-c', address, '-t', '3', '-J', ...(reverse ? ['-R'] : [])], { reject: false, timeout: 120_000 });
    const out = JSON.parse(r.stdout || '{}') as { error?: string; end?: { sum_sent?: { bytes: number }; sum_received?: { bytes: number; bits_per_second: number } } };
    if (r.exitCode === 0 && out.end?.sum_received) {
      return { sentBytes: out.end.sum_sent?.bytes ?? 0, receivedBytes: out.end.sum_received.bytes, receivedBitsPerSecond: out.end.sum_received.bits_per_second };
    }
    const error = out.error ?? r.stderr;
    if (!/refused|busy|reset by peer/i.test(error) || Date.now() > deadline) throw new Error(`iperf3 -c ${address}${reverse ? ' -R' : ''} failed: ${error}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

function waitForConsole(re: RegExp, timeoutMs: number): Promise<string> {
  const seen = consoleLines.find((l) => re.test(l));
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

// Opens kvtap0 with TUNSETIFF (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) and
// execs the launcher with the descriptor, as `kniv sock exec` does with a KNI socket.
const OPEN_TAP_AND_EXEC = `
import fcntl, os, struct, sys
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH22x', sys.argv[1].encode(), 0x0002 | 0x1000 | 0x4000))
os.set_inheritable(fd, True)
os.execvp('node', ['node', '--input-type=module', '-e', sys.argv[2], str(fd)])
`;

test.before(async () => {
  for (const tap of TAPS) {
    await ip('tuntap', 'add', 'dev', tap.ifname, 'mode', 'tap', 'vnet_hdr');
    await ip('addr', 'add', `${tap.host}/24`, 'dev', tap.ifname);
    await ip('link', 'set', tap.ifname, 'up');
  }
});

test.after.always(async () => {
  if (vm && !vm.hasExited) await vm.stop();
  // A persistent qemu whose adoption failed would outlive this file.
  for (const p of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    if (isQemuWithPidfile(Number(p), join(runDir, RUN_FILES.pidfile))) process.kill(Number(p), 'SIGKILL');
  }
  for (const tap of TAPS) await execa('ip', ['tuntap', 'del', 'dev', tap.ifname, 'mode', 'tap'], { reject: false });
  rmSync(runDir, { recursive: true, force: true });
});

test.serial('a nested guest boots with an fd NIC (vhost on) and a TAP NIC (vhost off), and pings the appliance on both', async (t) => {
  t.timeout(20 * 60_000, 'a nested TCG boot on a loaded machine');
  const spec: VmSpecInput = {
    name: 'nested',
    memoryMiB: 256,
    boot: guestBoot(thisKernel(), {
      net: TAPS.map((tap, i) => ({ ifname: `eth${i}`, address: `${tap.guest}/24` })),
      iperfServer: true,
      run: TAPS.map((tap) => `ping -c 3 -W 10 ${tap.host}`).join(' && '),
    }),
    nics: [
      { vhost: true, backend: { kind: 'fd', fd: 3 } }, // the real number is set by the launcher process
      { vhost: false, backend: { kind: 'tap', ifname: TAPS[1].ifname } },
    ],
  };
  const launcher = `
    import { launchVm } from ${JSON.stringify(join(projectRoot, 'dist', 'qemu', 'launcher.js'))};
    const spec = ${JSON.stringify(spec)};
    spec.nics[0].backend.fd = Number(process.argv[1]);
    const vm = await launchVm({ spec, runDir: ${JSON.stringify(runDir)}, persistent: true });
    console.log(vm.pid);
    await vm.release();`;
  launchedAt = Date.now();
  const r = await execa('python3', ['-c', OPEN_TAP_AND_EXEC, TAPS[0].ifname, launcher]);
  const pid = Number(r.stdout.trim());
  t.true(alive(pid), 'qemu outlives the process that launched it');

  vm = await adoptVm(runDir, { onConsole: (l) => consoleLines.push(l) });
  t.is(vm.pid, pid);
  t.true(vm.adopted && vm.persistent);
  t.like(await vm.status(), { running: true });

  const ready = await waitForConsole(GUEST_READY, 18 * 60_000);
  const bootSeconds = (Date.now() - launchedAt) / 1000;
  t.log(`guest ready after ${bootSeconds.toFixed(0)} s wall clock (guest uptime ${GUEST_READY.exec(ready)?.[1]} s) on ${release()}`);
  const exit = await waitForConsole(GUEST_EXIT, 5 * 60_000);
  t.is(exit, 'kniv-guest: exit 0', `the guest's pings failed:\n${vm.consoleTail(30).join('\n')}`);
  t.deepEqual(consoleLines.filter((l) => GUEST_ERROR.test(l)), []);
  // Each NIC came up in the guest with the MAC the spec gives it.
  for (const [i, tap] of TAPS.entries()) {
    t.true(consoleLines.includes(`kniv-guest: eth${i} ${tap.guest}/24 ${nicMac('nested', i, {})}`), `eth${i} configured`);
  }
});

test.serial('vhost-net carries the vhost=on NIC and not the other, with no fallback to userspace', async (t) => {
  if (!vm) return t.fail('no guest');
  t.deepEqual(await vm.vhostStatus(), [
    { nic: 0, requested: true, started: true },
    { nic: 1, requested: false, started: false },
  ]);
  t.is(vm.vhostFallback, undefined, vm.qemuOutput());
  t.notRegex(vm.qemuOutput(), /falling back on userspace virtio/);
  const workers = vhostWorkers(vm.pid);
  t.is(workers.length, 1, 'one vhost-net device, one worker');
  t.is(workers[0]!.where, release().startsWith('6.1.') ? 'kthread' : 'qemu thread');
  const open = readdirSync(`/proc/${vm.pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${vm!.pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
  t.is(open.filter((f) => f === '/dev/vhost-net').length, 1, 'qemu holds /dev/vhost-net once');
});

test.serial('the appliance pings the guest on both NICs', async (t) => {
  for (const tap of TAPS) {
    const r = await execa('ping', ['-c', '3', '-W', '10', tap.guest], { reject: false });
    t.is(r.exitCode, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /3 received/);
  }
});

test.serial('iperf3 both ways through vhost-net, and the vhost worker did the work', async (t) => {
  if (!vm) return t.fail('no guest');
  const before = vhostWorkers(vm.pid)[0]!.wakeups;
  const toGuest = await iperf(TAPS[0].guest, false);
  const fromGuest = await iperf(TAPS[0].guest, true);
  const after = vhostWorkers(vm.pid)[0]!.wakeups;
  t.true(toGuest.receivedBytes > 0 && fromGuest.receivedBytes > 0);
  // Idle, the worker sleeps; megabytes of segments each way woke it many times.
  t.true(after - before >= 20, `the vhost worker woke ${after - before} times while traffic flowed`);
  t.log(`the vhost worker woke ${after - before} times during the two runs`);
  t.log(`vhost=on:  appliance→guest ${(toGuest.receivedBitsPerSecond / 1e6).toFixed(1)} Mbit/s, guest→appliance ${(fromGuest.receivedBitsPerSecond / 1e6).toFixed(1)} Mbit/s (nested TCG)`);
});

test.serial('iperf3 both ways through userspace virtio (vhost=off)', async (t) => {
  if (!vm) return t.fail('no guest');
  const before = vhostWorkers(vm.pid)[0]!.wakeups;
  const toGuest = await iperf(TAPS[1].guest, false);
  const fromGuest = await iperf(TAPS[1].guest, true);
  const after = vhostWorkers(vm.pid)[0]!.wakeups;
  t.true(toGuest.receivedBytes > 0 && fromGuest.receivedBytes > 0);
  t.log(`the vhost worker (eth0's) woke ${after - before} times meanwhile`);
  t.log(`vhost=off: appliance→guest ${(toGuest.receivedBitsPerSecond / 1e6).toFixed(1)} Mbit/s, guest→appliance ${(fromGuest.receivedBitsPerSecond / 1e6).toFixed(1)} Mbit/s (nested TCG)`);
});

test.serial('stop ends qemu with QMP quit; its vhost worker, files and process are gone', async (t) => {
  if (!vm) return t.fail('no guest');
  const pid = vm.pid;
  t.is(vm.kernelProblem, undefined);
  t.is((await vm.stop()).how, 'quit');
  t.false(alive(pid));
  t.true(await waitFor(() => vhostWorkers(pid).length === 0, 10_000), 'the vhost worker ended with qemu');
  t.false(readdirSync('/proc').some((p) => /^\d+$/.test(p) && isQemuWithPidfile(Number(p), join(runDir, RUN_FILES.pidfile))));
  t.deepEqual(readdirSync(runDir).filter((f) => !/^(qemu\.log|console\.log(\.1)?)$/.test(f)), []);
  t.log(`the whole file so far: ${((Date.now() - launchedAt) / 1000).toFixed(0)} s from launch`);
});
