import test from 'ava';
import { ConsoleWatcher, kernelProblem } from '../../qemu/console.js';

// Lines as the 6.1 and 6.12 kernels print them.
const problems = [
  '[   12.345678] WARNING: CPU: 1 PID: 123 at drivers/net/kni/kni_net.c:42 kni_xmit+0x1d/0x30 [kni]',
  '[    3.100000] BUG: kernel NULL pointer dereference, address: 0000000000000008',
  '[    3.100000] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580',
  '[    3.100001] Oops: 0002 [#1] PREEMPT SMP NOPTI',
  '[    3.100001] general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP',
  '[    3.100001] refcount_t: underflow; use-after-free.',
  '[    3.100001] list_del corruption. prev->next should be ffff8880, but was 0000000000000000',
  '[    3.100001] list_add corruption. next->prev should be prev',
  '[    3.100001] BUG: KASAN: slab-out-of-bounds in kni_fifo_get+0x10/0x20',
  '[    3.100001] Kernel panic - not syncing: Fatal exception',
  '[    3.100001] kernel BUG at net/core/skbuff.c:110!',
  '[   30.000000] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [kni_single:99]',
  '[  245.000000] INFO: task ip:321 blocked for more than 120 seconds.',
  '[   60.000000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:',
  '[    1.000000] UBSAN: array-index-out-of-bounds in kni.c:10:5',
];

// Benign lines the appliance kernels print on every boot.
const benign = [
  '[    0.742850] mtrr: your CPUs had inconsistent fixed MTRR settings',
  '[    1.417375] Unstable clock detected, switching default tracing clock to "global"',
  '[    2.194907] kni: loading out-of-tree module taints kernel.',
  '[    2.194907] kni: module verification failed: signature and/or required key missing - tainting kernel',
  '[    4.875922] reboot: Power down',
  '[    0.100000] x86/bugs: Return Stack Buffer Underflow mitigation: off',
];

for (const line of problems) {
  test(`a kernel problem is recognised: ${line.slice(15, 60)}`, (t) => {
    t.true(kernelProblem(line));
  });
}

test('boot noise is not mistaken for a kernel problem', (t) => {
  for (const line of benign) t.false(kernelProblem(line), line);
});

test('the watcher reports the first problem and keeps a bounded tail across chunk boundaries', (t) => {
  const echoed: string[] = [];
  const w = new ConsoleWatcher(3, (l) => echoed.push(l));
  w.feed('line one\r\nline t');
  w.feed('wo\n[ 1.0] WARNING: CPU: 0 PID: 1 at x\nline four\n');
  w.feed('[ 2.0] BUG: second\nunfinished');
  t.is(w.problem, '[ 1.0] WARNING: CPU: 0 PID: 1 at x');
  t.deepEqual(w.lastLines(), ['line four', '[ 2.0] BUG: second', 'unfinished']);
  w.end();
  t.deepEqual(echoed, ['line one', 'line two', '[ 1.0] WARNING: CPU: 0 PID: 1 at x', 'line four', '[ 2.0] BUG: second', 'unfinished']);
});
