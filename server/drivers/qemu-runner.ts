// The real VmRunner over the qemu launcher (qemu/launcher.ts, qemu/vm-spec.ts).
//
// The launcher is being written in parallel; until it is part of the build it
// is loaded at run time and its absence makes VMs unavailable (503) instead of
// breaking the build. LauncherModule below is the contract this file expects.
// Written against the launcher on the qemu-guests branch (launchVm, adoptVm,
// Vm.stop/status/reboot/release, VmGoneError). When it is merged, replace
// loadLauncher() with static imports of launchVm and adoptVm.
import { execaSync } from 'execa';
import { join } from 'node:path';
import type { Availability, VmExit, VmLaunch, VmProcess, VmRunner } from '../drivers.js';

/** What the service uses of the launcher's Vm handle (qemu/launcher.ts on the qemu-guests branch). */
interface LauncherHandle {
  pid: number;
  exited: Promise<{ code?: number | null; signal?: string | null }>;
  status(): Promise<string | { status: string }>;
  /** QMP quit, then SIGTERM, then SIGKILL, each bounded. */
  stop(opts?: { quitTimeoutMs?: number; termTimeoutMs?: number }): Promise<unknown>;
  reboot(): Promise<unknown>;
  /** Closes QMP and the console without stopping a persistent qemu. */
  release(): Promise<void>;
}

interface LauncherModule {
  /** NIC backends {kind:'fd', fd} name this process's fds; the launcher hands them to qemu as 3, 4, … */
  launchVm(o: { spec: unknown; runDir: string; persistent: true }): Promise<LauncherHandle>;
  /** Throws VmGoneError when no qemu of that run directory is alive. */
  adoptVm(runDir: string): Promise<LauncherHandle>;
}

async function loadLauncher(): Promise<LauncherModule | string> {
  const url = new URL('../../qemu/launcher.js', import.meta.url).href;
  try {
    const mod = (await import(url)) as Partial<LauncherModule>;
    if (typeof mod.launchVm !== 'function' || typeof mod.adoptVm !== 'function') return 'qemu/launcher has no launchVm/adoptVm';
    return mod as LauncherModule;
  } catch (err) {
    return `the qemu launcher is not part of this build (${(err as Error).message})`;
  }
}

function qemuVersion(): string | null {
  try {
    const out = execaSync('qemu-system-x86_64', ['--version'], { stdin: 'ignore', timeout: 10_000 }).stdout;
    return /version\s+(\S+)/.exec(out)?.[1] ?? out.split('\n')[0] ?? null;
  } catch {
    return null;
  }
}

/** The service's VM spec → the launcher's VmSpec. NIC i gets fd nicFds[i]. */
export function toLauncherSpec(l: VmLaunch) {
  const s = l.spec;
  return {
    name: s.name,
    vcpus: s.vcpus,
    memoryMiB: s.memoryMiB,
    boot: s.boot,
    nics: s.nics.map((n, i) => ({
      ...(n.mac ? { mac: n.mac } : {}),
      vhost: n.vhost,
      backend: { kind: 'fd' as const, fd: l.nicFds[i]! },
    })),
    accel: 'auto' as const,
  };
}

class LauncherProcess implements VmProcess {
  readonly pid: number;
  readonly exited: Promise<VmExit>;

  constructor(private readonly h: LauncherHandle) {
    this.pid = h.pid;
    this.exited = h.exited.then(
      (e) => ({ code: e.code ?? null, signal: e.signal ?? null }),
      () => ({ code: null, signal: null }),
    );
  }

  async status(): Promise<string> {
    const s = await this.h.status();
    return typeof s === 'string' ? s : s.status;
  }

  async stop(force: boolean): Promise<void> {
    // Forced: no time for the guest to act on quit; SIGTERM, then SIGKILL.
    await this.h.stop(force ? { quitTimeoutMs: 1, termTimeoutMs: 2000 } : {});
    await this.exited;
  }

  async reboot(): Promise<void> {
    await this.h.reboot();
  }

  detach(): void {
    void this.h.release().catch(() => undefined);
  }
}

export class QemuRunner implements VmRunner {
  private constructor(
    private readonly launcher: LauncherModule | string,
    readonly version: string | null,
  ) {}

  static async create(): Promise<QemuRunner> {
    return new QemuRunner(await loadLauncher(), qemuVersion());
  }

  available(): Availability {
    if (typeof this.launcher === 'string') return { ok: false, reason: this.launcher };
    if (this.version === null) return { ok: false, reason: 'qemu-system-x86_64 is not installed or does not run' };
    return { ok: true };
  }

  async launch(l: VmLaunch): Promise<VmProcess> {
    if (typeof this.launcher === 'string') throw new Error(this.launcher);
    return new LauncherProcess(await this.launcher.launchVm({ spec: toLauncherSpec(l), runDir: l.runDir, persistent: true }));
  }

  async adopt(runDir: string): Promise<VmProcess | undefined> {
    if (typeof this.launcher === 'string') return undefined;
    try {
      return new LauncherProcess(await this.launcher.adoptVm(runDir));
    } catch (err) {
      if ((err as Error).name === 'VmGoneError' || (err as Error).constructor?.name === 'VmGoneError') return undefined;
      throw err;
    }
  }

  consoleLogPath(runDir: string): string {
    return join(runDir, 'console.log');
  }
}
