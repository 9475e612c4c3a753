// Waiting for a guest to come up, and what a kernel fault on the way means.
//
// A guest kernel that reports a problem (Oops, BUG, WARNING, panic, ...) while
// booting is not trusted: its console is kept (qemu/artifacts.ts), it is reset
// and booted again, at most `maxReboots` times, and the caller learns of every
// such fault so that its run can say so. Once the guest is up, any further
// problem is the caller's to fail on: kernelProblemsSince(readyMark).
//
// Why a boot-time fault is tolerated at all: nested TCG (a guest's qemu inside
// the TCG appliance VM) has been seen to fault a guest kernel in its earliest
// boot, before any device exists (docs/guests.md, "Nested TCG and the CPU
// model"). A fault that kniv causes needs its NICs, so it comes after the
// guest is up, where nothing is forgiven.
import { formatProblem, type KernelProblem } from './console.js';
import { GUEST_READY } from './guest-image.js';
import type { Vm } from './launcher.js';

/** A boot that faulted, and what was done about it. */
export interface BootFault {
  problem: KernelProblem;
  /** The console kept for it, when an artifacts directory is configured. */
  artifact: string | undefined;
}

export interface GuestUp {
  /** The console line that said the guest is ready. */
  ready: string;
  /** Console line count when it did: problems from here on are failures. */
  readyMark: number;
  /** Boots before the good one that faulted and were reset. */
  faults: BootFault[];
}

export interface WaitOptions {
  timeoutMs: number;
  /** How many faulted boots may be reset before giving up (default 2). */
  maxReboots?: number;
  signal?: AbortSignal;
  /** Told of each fault and reset, for the run's log. */
  log?: (message: string) => void;
  /** The line that means ready (default GUEST_READY). */
  ready?: RegExp;
  /** How long to let a fault's report finish printing before the reset (default 3 s). */
  settleMs?: number;
}

export class GuestBootError extends Error {
  constructor(
    message: string,
    readonly faults: BootFault[],
  ) {
    super(message);
    this.name = 'GuestBootError';
  }
}


export function waitForGuestReady(vm: Vm, opts: WaitOptions): Promise<GuestUp> {
  const readyRe = opts.ready ?? GUEST_READY;
  const maxReboots = opts.maxReboots ?? 2;
  const settleMs = opts.settleMs ?? 3000;
  const faults: BootFault[] = [];
  // The console line (the watcher's count) at which the boot being waited for began.
  let bootStart = 0;
  let settling: NodeJS.Timeout | undefined;

  return new Promise<GuestUp>((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      clearTimeout(settling);
      vm.off('console', onLine);
      vm.off('exit', onExit);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (message: string) => {
      cleanup();
      reject(new GuestBootError(message, faults));
    };
    const tail = () => vm.consoleTail(30).join('\n');

    const reset = (problem: KernelProblem) => {
      settling = undefined;
      const artifact = vm.keepConsole(`boot-fault-${faults.length + 1}`);
      faults.push({ problem, artifact });
      const kept = artifact ? `\nconsole kept in ${artifact}` : '';
      if (faults.length > maxReboots) {
        fail(`the guest kernel faulted on each of ${faults.length} boots; the last time: ${formatProblem(problem)}${kept}`);
        return;
      }
      // A panic (panic=-1) restarts the kernel by itself; anything else is reset here.
      const restarted = vm.lastBootLine > problem.lineNo;
      opts.log?.(`the guest kernel faulted while booting (boot ${faults.length}); ${restarted ? 'it restarted itself' : 'resetting it'} and waiting again: ${formatProblem(problem)}${kept}`);
      if (restarted) {
        bootStart = vm.lastBootLine;
        check(undefined);
      } else {
        bootStart = vm.consoleLineCount;
        vm.reboot().catch((err: Error) => fail(`resetting the faulted guest failed: ${err.message}`));
      }
    };

    const check = (line: string | undefined) => {
      if (settling !== undefined) return;
      const problem = vm.kernelProblemsSince(bootStart)[0];
      if (problem !== undefined) {
        // Let the report (RIP, Code, call trace) reach the console first.
        settling = setTimeout(() => reset(problem), settleMs);
      } else if (line !== undefined && readyRe.test(line)) {
        cleanup();
        resolve({ ready: line, readyMark: vm.consoleLineCount, faults });
      }
    };
    const onLine = (line: string) => check(line);
    const onExit = () => fail(`qemu exited before the guest was ready; console tail:\n${tail()}\nqemu: ${vm.qemuOutput()}`);
    const onAbort = () => fail('aborted while waiting for the guest to boot');
    const timer = setTimeout(
      () => fail(`the guest was not ready within ${opts.timeoutMs / 1000} s${faults.length ? ` (${faults.length} faulted boots reset)` : ''}; console tail:\n${tail()}`),
      opts.timeoutMs,
    );
    vm.on('console', onLine);
    vm.on('exit', onExit);
    opts.signal?.addEventListener('abort', onAbort);
    if (opts.signal?.aborted) onAbort();
    else if (vm.hasExited) onExit();
    else {
      // Lines that arrived before this call (the caller had set-up to do).
      const seen = vm.consoleText().split(/\r?\n/).find((l) => readyRe.test(l));
      check(seen);
    }
  });
}

