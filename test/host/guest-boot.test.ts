// waitForGuestReady's judgement of a boot, over the real ConsoleWatcher fed
// lines like those a 6.12 guest printed when nested TCG faulted it (CI, 2026-12):
// a fault before the guest is up is kept, reset and waited out, a bounded
// number of times; the ready line of a faulted boot does not count.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleWatcher, EXCERPT_AFTER, EXCERPT_BEFORE, formatProblem } from '../../qemu/console.js';
import { GuestBootError, waitForGuestReady } from '../../qemu/guest-boot.js';
import { guestBoot } from '../../qemu/guest-image.js';
import { kernel } from '../../qemu/kernels.js';
import { launchVm, type Vm } from '../../qemu/launcher.js';
import { projectRoot } from '../../qemu/paths.js';

// At loglevel=5 the guest prints no kernel banner (a notice): its first lines are init's.
const BOOT = ['kniv-guest: configuring eth0', 'kniv-guest: configuring eth1'];
const OOPS = [
  '[   14.023275] Oops: general protection fault, maybe for address 0x10: 0000 [#1] PREEMPT SMP NOPTI',
  '[   14.023900] CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.117+deb12-amd64 #1',
  '[   14.024100] RIP: 0010:kmem_cache_alloc_noprof+0x8a/0x2f0',
  '[   14.024200] Code: 4c 8b 45 00 65 4c 03 05 ...',
  '[   14.024300] Call Trace:',
  '[   14.024400]  <TASK>',
  '[   14.024500]  ? die_addr+0x36/0x90',
  '[   14.024600] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b',
];
const READY = 'kniv-guest: ready uptime=42.10';

class ConsoleVm extends EventEmitter {
  readonly watcher = new ConsoleWatcher(200, (l) => this.emit('console', l));
  resets = 0;
  kept: string[] = [];
  hasExited = false;
  onReset: () => void = () => undefined;
  print(lines: readonly string[]) {
    this.watcher.feed(lines.map((l) => `${l}\n`).join(''));
  }
  kernelProblemsSince(mark: number) {
    return this.watcher.problemsSince(mark);
  }
  get consoleLineCount() {
    return this.watcher.lineCount;
  }
  get lastBootLine() {
    return this.watcher.lastBootStart;
  }
  keepConsole(why: string) {
    this.kept.push(why);
    return `/artifacts/${why}.console.log`;
  }
  // As the launcher does on qemu's RESET event.
  async reboot() {
    this.resets++;
    this.watcher.markBoot();
    setImmediate(() => this.onReset());
  }
  consoleTail(n: number) {
    return this.watcher.lastLines().slice(-n);
  }
  consoleText() {
    return '';
  }
  qemuOutput() {
    return '';
  }
}
const asVm = (v: ConsoleVm) => v as unknown as Vm;
const quick = { timeoutMs: 5000, settleMs: 20 };

test('a clean boot is up at its ready line, with no faults', async (t) => {
  const vm = new ConsoleVm();
  const up = waitForGuestReady(asVm(vm), quick);
  vm.print([...BOOT, READY, 'after']);
  const r = await up;
  t.is(r.ready, READY);
  t.deepEqual(r.faults, []);
  t.is(r.readyMark, BOOT.length + 1);
  t.is(vm.resets, 0);
});

test('an Oops while booting is kept, the guest is reset, and the next clean boot is up; its ready line does not count', async (t) => {
  const vm = new ConsoleVm();
  const logs: string[] = [];
  vm.onReset = () => vm.print([...BOOT, READY]);
  const up = waitForGuestReady(asVm(vm), { ...quick, log: (m) => logs.push(m) });
  // The faulted boot goes on to print its ready line: it must not be taken.
  vm.print([...BOOT, ...OOPS.slice(0, 7), READY]);
  const r = await up;
  t.is(vm.resets, 1);
  t.is(r.faults.length, 1);
  t.is(r.faults[0]!.problem.line, OOPS[0]!);
  t.is(r.faults[0]!.artifact, '/artifacts/boot-fault-1.console.log');
  t.deepEqual(vm.kept, ['boot-fault-1']);
  t.regex(logs[0]!, /faulted while booting \(boot 1\); resetting it/);
  t.regex(logs[0]!, /RIP: 0010:kmem_cache_alloc_noprof/, 'the log carries the report, not just its first line');
  t.regex(logs[0]!, /Call Trace/);
  t.is(r.readyMark, vm.consoleLineCount);
});

test('a panic that restarts the kernel by itself (panic=-1) is not reset again', async (t) => {
  const vm = new ConsoleVm();
  const up = waitForGuestReady(asVm(vm), quick);
  vm.print([...BOOT, ...OOPS]);
  vm.watcher.markBoot(); // qemu's RESET event: the guest reset itself
  vm.print(['kniv-guest: early line of the next boot']);
  await new Promise((r) => setTimeout(r, 100));
  vm.print([READY]);
  const r = await up;
  t.is(vm.resets, 0);
  t.is(r.faults.length, 1);
});

test('a guest that faults on every boot fails after maxReboots resets, with the report', async (t) => {
  const vm = new ConsoleVm();
  vm.onReset = () => vm.print([...BOOT, ...OOPS.slice(0, 3)]);
  const up = waitForGuestReady(asVm(vm), { ...quick, maxReboots: 2 });
  vm.print([...BOOT, ...OOPS.slice(0, 3)]);
  const err = await t.throwsAsync(up, { instanceOf: GuestBootError });
  t.is(vm.resets, 2);
  t.is((err as GuestBootError).faults.length, 3);
  t.regex(err!.message, /faulted on each of 3 boots/);
  t.regex(err!.message, /RIP: 0010/);
});

test('qemu exiting and the time limit end the wait with the console tail', async (t) => {
  const vm = new ConsoleVm();
  const up = waitForGuestReady(asVm(vm), quick);
  vm.print(BOOT);
  vm.emit('exit', { code: 1, signal: undefined });
  await t.throwsAsync(up, { message: /qemu exited before the guest was ready[\s\S]*configuring eth1/ });
  const slow = new ConsoleVm();
  await t.throwsAsync(waitForGuestReady(asVm(slow), { ...quick, timeoutMs: 50 }), { message: /not ready within 0.05 s/ });
});

test('the watcher keeps the lines before a problem and the report after it as one excerpt', (t) => {
  const w = new ConsoleWatcher(5);
  const before = Array.from({ length: 20 }, (_, i) => `line ${i}`);
  const after = Array.from({ length: EXCERPT_AFTER + 5 }, (_, i) => `trace ${i}`);
  w.feed([...before, OOPS[0]!, ...OOPS.slice(1), ...after].map((l) => `${l}\n`).join(''));
  t.is(w.problems.length, 1, "the report's own panic line does not open a second problem");
  const p = w.problems[0]!;
  t.is(p.lineNo, 20);
  t.deepEqual(p.excerpt.slice(0, EXCERPT_BEFORE), before.slice(-EXCERPT_BEFORE));
  t.is(p.excerpt.length, EXCERPT_BEFORE + 1 + EXCERPT_AFTER);
  t.true(p.excerpt.includes(OOPS[2]!));
  t.deepEqual(w.lastLines(), after.slice(-5), 'the tail stays as long as asked');
  w.feed('[ 99.0] WARNING: CPU: 0 PID: 1 at x\n');
  t.is(w.problems.length, 2, 'a problem past the open excerpt is a new one');
  t.deepEqual(w.problemsSince(21).map((q) => q.line), ['[ 99.0] WARNING: CPU: 0 PID: 1 at x']);
});

// Consoles that nested TCG guests really printed (test/tools/boot-soak.ts,
// 6.12, 2026-12-03): each boot faulted, panicked, restarted itself
// (panic=-1; qemu's RESET event) and then came up.
const FAULTS = join(projectRoot, 'test', 'fixtures', 'boot-faults');
for (const file of readdirSync(FAULTS).filter((f) => f.endsWith('.console.log'))) {
  test(`a recorded boot fault (${file}) is one fault with its report, then the restarted boot is up`, async (t) => {
    const lines = readFileSync(join(FAULTS, file), 'utf8').split('\n').filter(Boolean);
    const panicAt = lines.findIndex((l) => /Kernel panic - not syncing/.test(l));
    t.true(panicAt > 0, 'the recording holds the panic');
    const vm = new ConsoleVm();
    const logs: string[] = [];
    const up = waitForGuestReady(asVm(vm), { ...quick, log: (m) => logs.push(m) });
    vm.print(lines.slice(0, panicAt + 1));
    vm.watcher.markBoot(); // the RESET event that panic=-1 caused
    await new Promise((r) => setTimeout(r, 100));
    vm.print(lines.slice(panicAt + 1));
    const r = await up;
    t.is(vm.resets, 0, 'not reset again');
    t.is(r.faults.length, 1);
    t.regex(r.ready, /^kniv-guest: ready uptime=/);
    t.regex(logs[0]!, /it restarted itself/);
    t.regex(logs[0]!, /RIP: 0010:/, 'the report carries the RIP');
    t.regex(logs[0]!, /EFLAGS: 04[0-9a-f]{6}/, 'and the corrupted EFLAGS');
  });
}

// The same judgement against real qemu on the host (TCG, a few seconds a boot).

function realRunDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-boot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test.serial('real qemu: a kernel that panics on every boot restarts itself (qemu RESET), is not reset again, and fails after maxReboots with the panic and its console kept', async (t) => {
  const artifacts = realRunDir(t);
  const saved = process.env.KNIV_ARTIFACTS;
  process.env.KNIV_ARTIFACTS = artifacts;
  t.teardown(() => {
    if (saved === undefined) delete process.env.KNIV_ARTIFACTS;
    else process.env.KNIV_ARTIFACTS = saved;
  });
  const boot = guestBoot(kernel('6.1'), {});
  // No init in the initramfs and no root device: "Kernel panic - not syncing", then panic=-1.
  const vm = await launchVm({ spec: { name: 'panics', memoryMiB: 256, boot: { ...boot, cmdline: `${boot.cmdline} rdinit=/nonexistent` } }, runDir: realRunDir(t) });
  t.teardown(() => vm.stop());
  const resets: string[] = [];
  vm.qmp.on('event', (e) => e.event === 'RESET' && resets.push(JSON.stringify(e.data)));
  const logs: string[] = [];
  const err = await t.throwsAsync(waitForGuestReady(vm, { timeoutMs: 240_000, maxReboots: 1, log: (m) => logs.push(m) }), { instanceOf: GuestBootError });
  t.regex(err!.message, /faulted on each of 2 boots; the last time: .*Kernel panic/);
  t.regex(logs[0]!, /it restarted itself/, 'the panic=-1 reboot is seen through QMP, not reset twice');
  t.true(resets.length >= 1 && resets.every((r) => /"guest":true/.test(r)), resets.join(' '));
  const kept = (err as GuestBootError).faults.map((f) => f.artifact);
  t.is(kept.length, 2);
  for (const k of kept) t.regex(readFileSync(k!, 'utf8'), /Kernel panic - not syncing/);
});

test.serial('real qemu: a fault after the guest is up is not forgiven: kernelProblemsSince(readyMark) has it, with its report', async (t) => {
  // The guest's script runs once it is ready: sysrq c panics the kernel at once.
  const boot = guestBoot(kernel('6.1'), { run: 'sleep 1; echo c > /proc/sysrq-trigger' });
  const vm = await launchVm({ spec: { name: 'crashes', memoryMiB: 256, boot }, runDir: realRunDir(t) });
  t.teardown(() => vm.stop());
  const up = await waitForGuestReady(vm, { timeoutMs: 240_000 });
  t.deepEqual(up.faults, []);
  const deadline = Date.now() + 120_000;
  while (vm.kernelProblemsSince(up.readyMark).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const p = vm.kernelProblemsSince(up.readyMark)[0];
  t.truthy(p, vm.consoleTail(30).join('\n'));
  t.regex(formatProblem(p!), /sysrq triggered crash[\s\S]*--- console around it ---/);
});
