// VMs as resources with a state machine:
//
//   defined ──start──► starting ──qemu up──► running ──stop──► stopping ──► stopped
//      ▲                  │                     │ qemu died                    │
//      │                  └──launch failed──► failed ◄──────────┘              │
//      └────────────── start again from stopped or failed ◄────────────────────┘
//
// Actions check the state under the VM's lock, move to the transitional state
// and return; the slow part (qemu booting, a graceful stop) runs afterwards
// and ends with another state change. Transitional states refuse every other
// action, so nothing overtakes a running operation.
import { existsSync, mkdirSync, openSync, readSync, closeSync, fstatSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Store, VmRow } from './db.js';
import type { VmProcess, VmRunner, VmExit } from './drivers.js';
import { ApiError, invalidState, notFound } from './errors.js';
import type { EventBus } from './events.js';
import { ifaceKey, type Interfaces } from './interfaces.js';
import type { KeyedMutex } from './mutex.js';
import { LIMITS, type Vm, type VmCreate, type VmState } from './schemas.js';

const vmKey = (name: string) => `vm:${name}`;

const STARTABLE: readonly VmState[] = ['defined', 'stopped', 'failed'];
const LIVE: readonly VmState[] = ['starting', 'running', 'stopping'];

export interface VmReport {
  adopted: string[];
  died: string[];
  degraded: string[];
}

function describeExit(e: VmExit): string {
  if (e.signal) return `signal ${e.signal}`;
  return `exit status ${e.code ?? 'unknown'}`;
}

export class Vms {
  private readonly procs = new Map<string, VmProcess>();
  private readonly degraded = new Map<string, string[]>();
  /** Background operations still running, so that close() and tests can wait for them. */
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly runner: VmRunner,
    private readonly interfaces: Interfaces,
    private readonly bus: EventBus,
    private readonly mutex: KeyedMutex,
    private readonly runRoot: string,
    private readonly log: Logger,
  ) {}

  runDir(name: string): string {
    return join(this.runRoot, name);
  }

  list(): Vm[] {
    return this.store.listVms().map((r) => this.view(r, null));
  }

  async get(name: string): Promise<Vm> {
    const row = this.store.getVm(name);
    if (!row) throw notFound('VM', name);
    let runStatus: string | null = null;
    const proc = this.procs.get(name);
    if (proc && row.state === 'running') {
      runStatus = await proc.status().catch(() => null);
    }
    return this.view(row, runStatus);
  }

  states(): Map<string, VmState> {
    return new Map(this.store.listVms().map((r) => [r.name, r.state]));
  }

  private view(row: VmRow, runStatus: string | null): Vm {
    return {
      name: row.name,
      spec: row.spec,
      state: row.state,
      error: row.error,
      degraded: this.degraded.get(row.name) ?? [],
      pid: row.pid,
      runStatus,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
      startedAt: row.startedAt,
    };
  }

  private setState(name: string, state: VmState, fields: Parameters<Store['setVmState']>[2] = {}, reason?: string): VmRow {
    const row = this.store.setVmState(name, state, fields);
    this.log.info({ vm: name, state, ...(row.error && state === 'failed' ? { error: row.error } : {}), ...(reason ? { reason } : {}) }, 'vm state');
    this.bus.publish('vm.state', { name, state, error: row.error, pid: row.pid, ...(reason ? { reason } : {}) });
    return row;
  }

  private background(p: Promise<unknown>): void {
    const tracked = p.catch((err) => this.log.error({ err }, 'background VM operation failed'));
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  /** Waits for every background operation started so far. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private checkBootFiles(spec: VmCreate): void {
    const files: [string, string][] =
      spec.boot.kind === 'kernel'
        ? [
            ['body.boot.kernel', spec.boot.kernel],
            ...(spec.boot.initrd ? [['body.boot.initrd', spec.boot.initrd] as [string, string]] : []),
          ]
        : [['body.boot.image', spec.boot.image]];
    const issues = files.filter(([, p]) => !existsSync(p)).map(([field, p]) => ({ field, message: `no such file: ${p}` }));
    if (issues.length > 0) throw new ApiError('invalid_request', `${issues[0]!.field}: ${issues[0]!.message}`, { issues });
  }

  async create(spec: VmCreate): Promise<Vm> {
    return this.mutex.run(vmKey(spec.name), () => {
      if (this.store.getVm(spec.name)) throw new ApiError('name_in_use', `VM ${JSON.stringify(spec.name)} exists`);
      if (this.store.countVms() >= LIMITS.vms) throw new ApiError('limit_reached', `this service manages at most ${LIMITS.vms} VMs`);
      const issues = spec.nics
        .map((n, i) => ({ field: `body.nics.${i}.interface`, name: n.interface }))
        .filter((n) => !this.store.getInterface(n.name))
        .map((n) => ({ field: n.field, message: `no interface named ${JSON.stringify(n.name)}` }));
      if (issues.length > 0) throw new ApiError('invalid_request', `${issues[0]!.field}: ${issues[0]!.message}`, { issues });
      this.checkBootFiles(spec);
      const row = this.store.insertVm(spec);
      this.log.info({ vm: spec.name }, 'vm created');
      const view = this.view(row, null);
      this.bus.publish('vm.created', { vm: view });
      return view;
    });
  }

  /** Starts qemu; answers at once with the VM in `starting`. */
  async start(name: string): Promise<Vm> {
    const row0 = this.store.getVm(name);
    if (!row0) throw notFound('VM', name);
    const ifnames = row0.spec.nics.map((n) => n.interface);
    return this.mutex.run([vmKey(name), ...ifnames.map(ifaceKey)], () => {
      const row = this.store.getVm(name);
      if (!row) throw notFound('VM', name);
      if (!STARTABLE.includes(row.state)) throw invalidState('VM', name, row.state, 'start', STARTABLE);
      const a = this.runner.available();
      if (!a.ok) throw new ApiError('qemu_unavailable', a.reason);
      this.checkBootFiles(row.spec);
      // Wire every NIC or none: on a failure, undo the ones already wired.
      const fds: number[] = [];
      const wired: string[] = [];
      try {
        for (const nic of row.spec.nics) {
          const fd = this.interfaces.attach(nic.interface, name, true);
          wired.push(nic.interface);
          fds.push(fd!);
        }
      } catch (err) {
        for (const fd of fds) this.interfaces.closeFd(fd);
        for (const i of wired) this.interfaces.detach(i, name);
        throw err;
      }
      const runDir = this.runDir(name);
      mkdirSync(runDir, { recursive: true, mode: 0o700 });
      this.degraded.delete(name);
      const started = this.setState(name, 'starting', { error: null, pid: null, startedAt: null });
      this.background(this.launch(row, runDir, fds));
      return this.view(started, null);
    });
  }

  private async launch(row: VmRow, runDir: string, fds: number[]): Promise<void> {
    const name = row.name;
    let proc: VmProcess | undefined;
    let error: string | undefined;
    try {
      proc = await this.runner.launch({ spec: row.spec, runDir, nicFds: fds });
    } catch (err) {
      error = (err as Error).message;
    } finally {
      // qemu holds its own copies now (or never will): ours must not leak into
      // later children.
      for (const fd of fds) this.interfaces.closeFd(fd);
    }
    const ifnames = row.spec.nics.map((n) => n.interface);
    await this.mutex.run([vmKey(name), ...ifnames.map(ifaceKey)], () => {
      if (!proc) {
        for (const i of ifnames) this.interfaces.detach(i, name);
        this.setState(name, 'failed', { error: `qemu did not start: ${error}`, pid: null });
        return;
      }
      this.procs.set(name, proc);
      this.setState(name, 'running', { pid: proc.pid, startedAt: new Date().toISOString() });
      this.watch(name, proc);
    });
  }

  /** When qemu goes, whoever ended it, the VM's state and its interfaces follow. */
  private watch(name: string, proc: VmProcess): void {
    void proc.exited.then((exit) => {
      // A service that let go of its VMs no longer speaks for them.
      if (this.closed || this.procs.get(name) !== proc) return;
      return this.mutex.run([vmKey(name), ...(this.store.getVm(name)?.spec.nics.map((n) => ifaceKey(n.interface)) ?? [])], () => {
        if (this.closed || this.procs.get(name) !== proc) return;
        this.procs.delete(name);
        this.degraded.delete(name);
        const row = this.store.getVm(name);
        if (!row) return;
        for (const nic of row.spec.nics) this.interfaces.detach(nic.interface, name);
        if (row.state === 'stopping') {
          this.setState(name, 'stopped', { pid: null }, describeExit(exit));
        } else {
          this.setState(name, 'failed', { pid: null, error: `qemu exited unexpectedly (${describeExit(exit)})` });
        }
      });
    });
  }

  async stop(name: string, force: boolean): Promise<Vm> {
    return this.mutex.run(vmKey(name), () => {
      const row = this.store.getVm(name);
      if (!row) throw notFound('VM', name);
      const proc = this.procs.get(name);
      if (row.state !== 'running' || !proc) throw invalidState('VM', name, row.state, 'stop', ['running']);
      const stopping = this.setState(name, 'stopping', {}, force ? 'forced stop' : 'graceful stop');
      this.background(
        proc.stop(force).catch((err) => {
          this.log.error({ vm: name, err }, 'stopping qemu failed');
        }),
      );
      return this.view(stopping, null);
    });
  }

  async reboot(name: string): Promise<Vm> {
    return this.mutex.run(vmKey(name), async () => {
      const row = this.store.getVm(name);
      if (!row) throw notFound('VM', name);
      const proc = this.procs.get(name);
      if (row.state !== 'running' || !proc) throw invalidState('VM', name, row.state, 'reboot', ['running']);
      try {
        await proc.reboot();
      } catch (err) {
        throw new ApiError('operation_failed', `rebooting ${name} failed: ${(err as Error).message}`);
      }
      this.log.info({ vm: name }, 'vm rebooted');
      this.bus.publish('vm.state', { name, state: row.state, error: row.error, pid: row.pid, reason: 'reboot' });
      return this.view(row, null);
    });
  }

  async delete(name: string): Promise<void> {
    return this.mutex.run(vmKey(name), () => {
      const row = this.store.getVm(name);
      if (!row) throw notFound('VM', name);
      if (LIVE.includes(row.state)) throw invalidState('VM', name, row.state, 'delete', ['defined', 'stopped', 'failed']);
      rmSync(this.runDir(name), { recursive: true, force: true });
      this.store.deleteVm(name);
      this.log.info({ vm: name }, 'vm deleted');
      this.bus.publish('vm.deleted', { name });
    });
  }

  /** The end of the VM's console log. */
  console(name: string, bytes: number): string {
    if (!this.store.getVm(name)) throw notFound('VM', name);
    const path = this.runner.consoleLogPath(this.runDir(name));
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return '';
    }
    try {
      const size = fstatSync(fd).size;
      const len = Math.min(size, bytes);
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, size - len);
      return buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  }

  /**
   * After a restart: VMs the store says are live are re-adopted from their run
   * directory (QMP socket) when qemu still runs, and marked failed (or stopped,
   * if a stop was under way) when it does not. A re-adopted VM with NICs is
   * degraded: its NICs hold the sockets of interfaces that went away with the
   * previous service; the re-created interfaces cannot be plugged into a
   * running qemu, so the VM needs a stop and a start to be wired again.
   */
  async adoptAll(): Promise<VmReport> {
    const report: VmReport = { adopted: [], died: [], degraded: [] };
    for (const row of this.store.listVms()) {
      if (!LIVE.includes(row.state)) continue;
      const ifnames = row.spec.nics.map((n) => n.interface);
      await this.mutex.run([vmKey(row.name), ...ifnames.map(ifaceKey)], async () => {
        const proc = await this.runner.adopt(this.runDir(row.name)).catch((err) => {
          this.log.warn({ vm: row.name, err }, 'adopting the VM failed');
          return undefined;
        });
        if (!proc) {
          report.died.push(row.name);
          if (row.state === 'stopping') this.setState(row.name, 'stopped', { pid: null }, 'gone when the service started');
          else this.setState(row.name, 'failed', { pid: null, error: 'qemu was no longer running when the service started' });
          return;
        }
        this.procs.set(row.name, proc);
        report.adopted.push(row.name);
        const problems = row.spec.nics.map(
          (n, i) =>
            `nic ${i} (${n.interface}): the interface was re-created when the service restarted and this qemu still holds the old one's socket; stop and start the VM to wire it again`,
        );
        if (problems.length > 0) {
          this.degraded.set(row.name, problems);
          report.degraded.push(row.name);
        }
        for (const i of ifnames) this.interfaces.markHeld(i, row.name);
        this.setState(row.name, row.state === 'stopping' ? 'stopping' : 'running', { pid: proc.pid }, 'adopted after a service restart');
        this.watch(row.name, proc);
        if (row.state === 'stopping') this.background(proc.stop(false));
      });
    }
    return report;
  }

  /** Service shutdown: VMs keep running (they are re-adopted on the next start). */
  async close(): Promise<void> {
    await this.settled();
    this.closed = true;
    for (const proc of this.procs.values()) proc.detach();
    this.procs.clear();
  }
}
