// launchVm/adoptVm against real qemu on the host (TCG): a real guest boot
// (the appliance kernel with the guest image) where the guest matters, and a
// VM that boots nothing (an empty raw disk: SeaBIOS finds no boot sector and
// waits) where only the process does.
import test from 'ava';
import { appendFileSync, closeSync, existsSync, fstatSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { GUEST_EXIT, GUEST_READY, guestBoot } from '../../qemu/guest-image.js';
import { kernel } from '../../qemu/kernels.js';
import { adoptVm, isQemuWithPidfile, launchVm, RUN_FILES, VHOST_FAILURE, VmGoneError, type Vm } from '../../qemu/launcher.js';
import { projectRoot } from '../../qemu/paths.js';
import type { VmSpecInput } from '../../qemu/vm-spec.js';
import { alive, waitFor } from '../lib/util.js';

/** A fresh run directory, removed (with a check that no qemu uses it) after the test. */
function runDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-vm-'));
  t.teardown(async () => {
    const left = qemuFor(dir);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    if (left.length > 0) throw new Error(`qemu ${left.join(', ')} was left running for ${dir}`);
  });
  return dir;
}

/** Live qemu processes whose pidfile is in `dir`. */
function qemuFor(dir: string): number[] {
  const pidfile = join(dir, RUN_FILES.pidfile);
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => alive(pid) && isQemuWithPidfile(pid, pidfile));
}

/** What a run directory holds once its VM is gone: the logs only. */
function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((f) => !/^(qemu\.log|console\.log(\.1)?)$/.test(f));
}

// An empty raw disk, shared by the VMs that boot nothing.
const diskDir = mkdtempSync(join(tmpdir(), 'kniv-disk-'));
const emptyDisk = join(diskDir, 'empty.img');
writeFileSync(emptyDisk, Buffer.alloc(1 << 20));
test.after.always(() => rmSync(diskDir, { recursive: true, force: true }));

const nothing = (name = 'idle'): VmSpecInput => ({ name, memoryMiB: 64, boot: { kind: 'disk', image: emptyDisk, format: 'raw' }, accel: 'tcg' });

function waitForLine(vm: Vm, re: RegExp, timeoutMs = 300_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      vm.off('console', onLine);
      reject(new Error(`no console line matching ${re} within ${timeoutMs} ms; console tail:\n${vm.consoleTail(30).join('\n')}`));
    }, timeoutMs);
    const onLine = (line: string) => {
      if (re.test(line)) {
        clearTimeout(timer);
        vm.off('console', onLine);
        resolve(line);
      }
    };
    vm.on('console', onLine);
  });
}

// Guest boots take a few seconds each on two cores: one at a time.
test.serial('a guest boots to ready, reboots on system_reset, and stops with QMP quit', async (t) => {
  const dir = runDir(t);
  const lines: string[] = [];
  const vm = await launchVm({
    spec: { name: 'life', memoryMiB: 256, boot: guestBoot(kernel('6.1'), {}) },
    runDir: dir,
    onConsole: (l) => lines.push(l),
  });
  t.teardown(() => vm.stop());
  t.false(vm.persistent);
  t.false(vm.adopted);
  t.deepEqual(await vm.status(), { status: 'running', running: true });
  t.is(Number(readFileSync(join(dir, RUN_FILES.pidfile), 'utf8')), vm.pid);
  t.true(isQemuWithPidfile(vm.pid, join(dir, RUN_FILES.pidfile)));

  await waitForLine(vm, GUEST_READY);
  t.true(lines.some((l) => GUEST_READY.test(l)), 'onConsole saw the same lines');
  const booted = lines.length;
  await vm.reboot();
  await waitForLine(vm, GUEST_READY);
  t.true(lines.slice(booted).some((l) => /Linux version 6\.1\./.test(l) || GUEST_READY.test(l)), 'the guest booted again');
  t.is(vm.consoleTail(1000).filter((l) => GUEST_READY.test(l)).length, 2, 'the console log holds both boots');
  t.is(vm.kernelProblem, undefined);

  const r = await vm.stop();
  t.is(r.how, 'quit');
  t.deepEqual(await vm.exited, { code: 0, signal: undefined });
  t.false(alive(vm.pid));
  t.deepEqual(leftovers(dir), []);
  t.deepEqual(await vm.stop(), { how: 'already-exited', steps: [] });
  await t.throwsAsync(vm.status(), { message: /is closed/ });
});

test.serial('a guest that powers itself off: its script ran, qemu exited 0, the console log stayed capped', async (t) => {
  const dir = runDir(t);
  const vm = await launchVm({
    spec: { name: 'once', memoryMiB: 256, boot: guestBoot(kernel('6.12'), { run: 'i=0; while [ $i -lt 300 ]; do echo "line $i of the guest"; i=$((i+1)); done; exit 7', poweroff: true }) },
    runDir: dir,
    consoleLogBytes: 4096,
  });
  t.deepEqual(await vm.exited, { code: 0, signal: undefined });
  const tail = vm.consoleTail(20);
  t.true(tail.some((l) => GUEST_EXIT.exec(l)?.[1] === '7'), tail.join('\n'));
  t.true(tail.includes('line 299 of the guest'));
  const log = statSync(join(dir, 'console.log')).size;
  const old = statSync(join(dir, 'console.log.1')).size;
  t.true(log <= 4096 && old <= 4096 + 2048, `console.log ${log} bytes, console.log.1 ${old} bytes`);
  t.deepEqual(leftovers(dir), []);
});

test.serial('stop escalates to SIGKILL when qemu answers nothing (SIGSTOPped)', async (t) => {
  const dir = runDir(t);
  const vm = await launchVm({ spec: nothing(), runDir: dir });
  process.kill(vm.pid, 'SIGSTOP');
  const r = await vm.stop({ quitTimeoutMs: 500, termTimeoutMs: 500 });
  t.is(r.how, 'SIGKILL');
  t.is(r.steps.length, 3);
  t.regex(r.steps[0]!, /^quit failed: QMP command "quit" got no answer/);
  t.deepEqual(r.steps.slice(1), ['SIGTERM', 'SIGKILL']);
  t.deepEqual(await vm.exited, { code: undefined, signal: 'SIGKILL' });
  t.deepEqual(leftovers(dir), []);
});

test.serial('without QMP, stop goes straight to SIGTERM, which qemu obeys', async (t) => {
  const dir = runDir(t);
  const vm = await launchVm({ spec: nothing(), runDir: dir });
  await vm.qmp.close();
  const r = await vm.stop();
  t.deepEqual(r, { how: 'SIGTERM', steps: ['no QMP connection', 'SIGTERM'] });
  t.false(alive(vm.pid));
  t.deepEqual(leftovers(dir), []);
});

const launcher = join(projectRoot, 'dist', 'qemu', 'launcher.js');

test.serial('a persistent VM outlives its launcher, in its own session, and is adopted, stopped and cleaned up', async (t) => {
  const dir = runDir(t);
  const spec = nothing('keeper');
  const script = `
    import { launchVm } from ${JSON.stringify(launcher)};
    const vm = await launchVm({ spec: ${JSON.stringify(spec)}, runDir: ${JSON.stringify(dir)}, persistent: true });
    console.log(vm.pid);
    await vm.release();`;
  const r = await execa('node', ['--input-type=module', '-e', script], { timeout: 60_000 });
  const pid = Number(r.stdout.trim());
  t.true(alive(pid), 'qemu still runs after the launcher exited');
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const session = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
  t.is(session, pid, 'qemu leads its own session');

  const vm = await adoptVm(dir);
  t.teardown(() => vm.stop());
  t.true(vm.adopted);
  t.true(vm.persistent);
  t.is(vm.pid, pid);
  t.is(vm.spec.name, 'keeper');
  t.like(await vm.status(), { running: true });
  t.is((await vm.stop()).how, 'quit');
  t.deepEqual(await vm.exited, { code: undefined, signal: undefined });
  t.false(alive(pid));
  t.deepEqual(leftovers(dir), []);
  const gone = await t.throwsAsync(adoptVm(dir), { instanceOf: VmGoneError });
  t.regex(gone.message, /no pidfile/);
});

test.serial('a non-persistent VM dies with its launcher, even on SIGKILL', async (t) => {
  const dir = runDir(t);
  const script = `
    import { launchVm } from ${JSON.stringify(launcher)};
    const vm = await launchVm({ spec: ${JSON.stringify(nothing())}, runDir: ${JSON.stringify(dir)} });
    console.log(vm.pid);
    setInterval(() => {}, 1000);`;
  const child = execa('node', ['--input-type=module', '-e', script], { reject: false });
  const pid = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  t.true(alive(pid));
  child.kill('SIGKILL');
  await child;
  t.true(await waitFor(() => !alive(pid), 5000), `qemu ${pid} died with its launcher`);
  const gone = await t.throwsAsync(adoptVm(dir), { instanceOf: VmGoneError });
  t.regex(gone.message, /no longer running/);
  t.deepEqual(leftovers(dir), [], 'adoptVm cleared what the dead VM left');
});

test.serial('an fd NIC reaches qemu as fd 3; a failed start says what qemu said and leaves nothing', async (t) => {
  const dir = runDir(t);
  // Not a TAP: qemu's TUNGETIFF probe fails, naming the descriptor it got.
  const fd = openSync('/dev/null', 'r');
  t.teardown(() => closeSync(fd));
  const err = await t.throwsAsync(
    launchVm({ spec: { ...nothing(), nics: [{ vhost: false, backend: { kind: 'fd', fd } }] }, runDir: dir }),
  );
  t.regex(err.message, /^qemu for idle did not start: /);
  t.regex(err.message, /qemu said: .*-netdev tap,id=net0,fd=3,vhost=off: .*TUNGETIFF on FD 3/s);
  t.true(fstatSync(fd).isCharacterDevice(), "the caller's descriptor is still open");
  t.deepEqual(qemuFor(dir), []);
  t.deepEqual(leftovers(dir), []);
  await t.throwsAsync(launchVm({ spec: { ...nothing(), nics: [{ vhost: false, backend: { kind: 'fd', fd: 1000 } }] }, runDir: dir }), {
    message: 'idle: nics[0] names fd 1000, which is not open in this process',
  });
  t.deepEqual(leftovers(dir), []);
});

test.serial('one VM per run directory; adopt refuses a pidfile whose process is not that qemu', async (t) => {
  const dir = runDir(t);
  const vm = await launchVm({ spec: nothing(), runDir: dir });
  t.teardown(() => vm.stop());
  await t.throwsAsync(launchVm({ spec: nothing('second'), runDir: dir }), {
    message: `${dir} already belongs to a running VM (qemu pid ${vm.pid}); adopt or stop it first`,
  });
  await vm.stop();

  const other = runDir(t);
  writeFileSync(join(other, RUN_FILES.pidfile), `${process.pid}\n`);
  const err = await t.throwsAsync(adoptVm(other), { instanceOf: VmGoneError });
  t.is(err.message, `no VM to adopt in ${other}: process ${process.pid} is not this VM's qemu (the pid was reused)`);
  t.false(existsSync(join(other, RUN_FILES.pidfile)));
  await t.throwsAsync(adoptVm(join(other, 'missing')), { message: /the run directory does not exist/ });
});

test('qemu 7.2 says these when vhost-net does not take a NIC over', (t) => {
  t.regex('qemu-system-x86_64: unable to start vhost net: 88: falling back on userspace virtio', VHOST_FAILURE);
  t.regex('qemu-system-x86_64: -netdev tap,id=net0,fd=3,vhost=on: vhost-net requested but could not be initialized', VHOST_FAILURE);
  t.notRegex('qemu-system-x86_64: terminating on signal 15 from pid 1 (init)', VHOST_FAILURE);
});

test.serial("qemu's own output is followed: each line an event, a vhost failure flagged once", async (t) => {
  const dir = runDir(t);
  const vm = await launchVm({ spec: nothing(), runDir: dir });
  t.teardown(() => vm.stop());
  const lines: string[] = [];
  const fallbacks: string[] = [];
  vm.on('stderr', (l) => lines.push(l));
  vm.on('vhost-fallback', (l) => fallbacks.push(l));
  // Stands in for qemu writing to its stderr (which is this file): vhost-net
  // cannot fail on a host without /dev/vhost-net, and qemu 7.2 aborts
  // instead of falling back when it is missing (see the next test).
  const log = join(dir, RUN_FILES.qemuLog);
  appendFileSync(log, 'qemu-system-x86_64: warning: something\n');
  appendFileSync(log, 'qemu-system-x86_64: unable to start vhost net: 22: falling back on userspace virtio\n');
  appendFileSync(log, 'qemu-system-x86_64: unable to start vhost net: 22: falling back on userspace virtio\n');
  t.true(await waitFor(() => lines.length === 3, 5000), lines.join('\n'));
  t.is(vm.vhostFallback, 'qemu-system-x86_64: unable to start vhost net: 22: falling back on userspace virtio');
  t.is(fallbacks.length, 1);
});

test('bad specs and impossible requests fail before anything starts', async (t) => {
  const dir = runDir(t);
  await t.throwsAsync(launchVm({ spec: { name: 'x y', boot: { kind: 'kernel', kernel: '/k' } }, runDir: dir }), { name: 'ZodError' });
  const long = join(dir, 'd'.repeat(100));
  await t.throwsAsync(launchVm({ spec: nothing(), runDir: long }), { message: /is too long for a unix socket .* use a shorter runDir/ });
  if (!existsSync('/dev/vhost-net')) {
    const fd = openSync('/dev/null', 'r');
    t.teardown(() => closeSync(fd));
    await t.throwsAsync(launchVm({ spec: { ...nothing(), nics: [{ backend: { kind: 'fd', fd } }] }, runDir: dir }), {
      message: 'idle: a NIC asks for vhost, but /dev/vhost-net cannot be opened here (ENOENT); load vhost_net or set vhost: false',
    });
  }
  if (!existsSync('/dev/kvm')) {
    await t.throwsAsync(launchVm({ spec: { ...nothing(), accel: 'kvm' }, runDir: dir }), { message: /accel "kvm" was asked for, but KVM is not usable here/ });
  }
  t.deepEqual(qemuFor(dir), []);
});
