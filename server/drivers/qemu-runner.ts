// The real VmRunner over the qemu launcher (qemu/launcher.ts, qemu/vm-spec.ts).
import { execaSync } from 'execa';
import { join } from 'node:path';
import { adoptVm, launchVm, VmGoneError, type Vm } from '../../qemu/launcher.js';
import type { Availability, VmExit, VmLaunch, VmProcess, VmRunner } from '../drivers.js';

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

  constructor(private readonly vm: Vm) {
    this.pid = vm.pid;
    this.exited = vm.exited.then(
      (e) => ({ code: e.code ?? null, signal: e.signal ?? null }),
      () => ({ code: null, signal: null }),
    );
  }

  async status(): Promise<string> {
    return (await this.vm.status()).status;
  }

  async stop(force: boolean): Promise<void> {
    // Forced: no time for the guest to act on quit; SIGTERM, then SIGKILL.
    await this.vm.stop(force ? { quitTimeoutMs: 1, termTimeoutMs: 2000 } : {});
    await this.exited;
  }

  async reboot(): Promise<void> {
    await this.vm.reboot();
  }

  detach(): void {
    void this.vm.release().catch(() => undefined);
  }
}

export class QemuRunner implements VmRunner {
  private constructor(readonly version: string | null) {}

  static async create(): Promise<QemuRunner> {
    return new QemuRunner(qemuVersion());
  }

  available(): Availability {
    if (this.version === null) return { ok: false, reason: 'qemu-system-x86_64 is not installed or does not run' };
    return { ok: true };
  }

  async launch(l: VmLaunch): Promise<VmProcess> {
    return new LauncherProcess(await launchVm({ spec: toLauncherSpec(l), runDir: l.runDir, persistent: true }));
  }

  async adopt(runDir: string): Promise<VmProcess | undefined> {
    try {
      return new LauncherProcess(await adoptVm(runDir));
    } catch (err) {
      if (err instanceof VmGoneError) return undefined;
      throw err;
    }
  }

  consoleLogPath(runDir: string): string {
    return join(runDir, 'console.log');
  }
}
