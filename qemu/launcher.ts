// Launch and supervise a guest's qemu; adopt one that outlived its launcher.
//
// Everything a VM owns lives in its run directory:
//
//   qmp.sock      QMP (unix socket server, qemu's side)
//   console.sock  the serial console (qemu listens; output is dropped while nobody reads)
//   qemu.pid      written by qemu (-pidfile)
//   vm.json       the spec and how it was launched, for adoptVm()
//   qemu.log      qemu's own stdout and stderr (where "falling back on userspace virtio" appears)
//   console.log   the serial console as read by the launcher, capped; console.log.1 is the previous part
//
// qemu starts with its CPUs stopped (-S) and is let go with QMP `cont` once
// QMP and the console are connected, so the console log misses nothing.
// Sockets, pidfile and vm.json are removed when the VM is seen to exit; the
// logs and the directory stay the caller's.
import { EventEmitter } from 'node:events';
import { accessSync, closeSync, constants, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { basename, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { z } from 'zod';
import { kvmUsable, tcgCpuModel } from './accel.js';
import { keepArtifact } from './artifacts.js';
import { ConsoleWatcher, type KernelProblem } from './console.js';
import { QmpClient, QmpDisconnectedError } from './qmp.js';
import { nicVirtioPath, usesKvm, vmArgv } from './vm-argv.js';
import { VmSpecSchema, type VmSpec, type VmSpecInput } from './vm-spec.js';

export const RUN_FILES = {
  qmp: 'qmp.sock',
  console: 'console.sock',
  pidfile: 'qemu.pid',
  state: 'vm.json',
  qemuLog: 'qemu.log',
  consoleLog: 'console.log',
} as const;

/** qemu prints these when vhost-net could not take over a NIC (facts §4.2). */
export const VHOST_FAILURE = /falling back on userspace virtio|vhost-net requested but could not be initialized/;

/** sun_path holds 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

export interface LaunchOptions {
  spec: VmSpecInput;
  /** Created if missing. One VM per directory. */
  runDir: string;
  /**
   * false (default): qemu dies with this process (setpriv --pdeathsig KILL).
   * true: qemu runs in its own session and survives this process; adoptVm() finds it again.
   */
  persistent?: boolean;
  /** Every serial console line, as it arrives. */
  onConsole?: (line: string) => void;
  /** console.log is moved to console.log.1 when it grows past this (default 1 MiB). */
  consoleLogBytes?: number;
  /** How long qemu may take to open its QMP socket (default 30 s). */
  startTimeoutMs?: number;
}

export interface AdoptOptions {
  onConsole?: (line: string) => void;
  consoleLogBytes?: number;
  /** How long to wait for QMP (default 10 s). */
  timeoutMs?: number;
}

/** How qemu ended: its exit code or signal when it was our child; adopted VMs only report that they are gone. */
export interface VmExit {
  code: number | undefined;
  signal: string | undefined;
}

export interface StopOptions {
  /** How long QMP `quit` may take to end the process (default 10 s). */
  quitTimeoutMs?: number;
  /** How long after SIGTERM before SIGKILL (default 5 s). */
  termTimeoutMs?: number;
}

export type StopResult = { how: 'already-exited' | 'quit' | 'SIGTERM' | 'SIGKILL'; steps: string[] };

export interface VhostNicStatus {
  nic: number;
  /** The spec asked for vhost on this NIC. */
  requested: boolean;
  /** qemu's x-query-virtio-status "vhost-started": vhost-net moves this NIC's packets now. */
  started: boolean;
}

const StateSchema = z.object({
  spec: VmSpecSchema,
  persistent: z.boolean(),
  startedAt: z.string(),
});

export class VmGoneError extends Error {
  constructor(
    readonly runDir: string,
    readonly reason: string,
  ) {
    super(`no VM to adopt in ${runDir}: ${reason}`);
    this.name = 'VmGoneError';
  }
}

export interface VmEvents {
  console: [string];
  /** A line qemu printed on stdout/stderr. */
  stderr: [string];
  'vhost-fallback': [string];
  exit: [VmExit];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The process exists and is not a zombie. */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/** pid is a qemu-system process started with `-pidfile <pidfile>`: the VM of that run directory, not a reused pid. */
export function isQemuWithPidfile(pid: number, pidfile: string): boolean {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  const i = argv.indexOf('-pidfile');
  return basename(argv[0] ?? '').startsWith('qemu-system-') && i > 0 && argv[i + 1] === pidfile;
}

/** Appends to a file and starts a new one when it grows past a cap, keeping one previous part. */
class CappedLog {
  private fd: number;
  private size: number;

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
  ) {
    this.fd = openSync(path, 'a');
    this.size = fstatSync(this.fd).size;
  }

  write(chunk: Buffer): void {
    if (this.fd < 0) return;
    if (this.size > 0 && this.size + chunk.length > this.maxBytes) {
      closeSync(this.fd);
      renameSync(this.path, `${this.path}.1`);
      this.fd = openSync(this.path, 'a');
      this.size = 0;
    }
    writeSync(this.fd, chunk);
    this.size += chunk.length;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Follows a file qemu appends to, line by line (polling: qemu.log is tiny and rarely written). */
class FileFollower {
  private offset = 0;
  private partial = '';
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly path: string,
    private readonly onLine: (line: string) => void,
  ) {
    this.timer = setInterval(() => this.poll(), 200);
    this.timer.unref();
    this.poll();
  }

  poll(): void {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return;
    }
    try {
      const size = fstatSync(fd).size;
      if (size < this.offset) this.offset = 0;
      if (size === this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      const lines = (this.partial + buf.subarray(0, n).toString('utf8')).split('\n');
      this.partial = lines.pop() ?? '';
      for (const l of lines) this.onLine(l.replace(/\r$/, ''));
    } finally {
      closeSync(fd);
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.poll();
    if (this.partial) this.onLine(this.partial);
    this.partial = '';
  }
}

interface VmParts {
  spec: VmSpec;
  runDir: string;
  pid: number;
  persistent: boolean;
  adopted: boolean;
  qmp: QmpClient;
  child: ResultPromise | undefined;
  consoleLogBytes: number;
  onConsole: ((line: string) => void) | undefined;
}

/**
 * A running guest. The same type whether this process launched it or adopted
 * it; `exited` resolves once qemu is gone, either way.
 */
export class Vm extends EventEmitter<VmEvents> {
  readonly spec: VmSpec;
  readonly runDir: string;
  readonly pid: number;
  readonly persistent: boolean;
  readonly adopted: boolean;
  readonly qmp: QmpClient;
  readonly exited: Promise<VmExit>;
  /** qemu said vhost-net could not be used for a NIC; the first such line. */
  vhostFallback: string | undefined;
  /** Where the console was kept when qemu exited after a kernel problem (qemu/artifacts.ts). */
  keptConsole: string | undefined;
  private readonly child: ResultPromise | undefined;
  private readonly watcher: ConsoleWatcher;
  private readonly log: CappedLog;
  private readonly qemuLog: FileFollower;
  private consoleSocket: Socket | undefined;
  private exitInfo: VmExit | undefined;
  private released = false;
  private pollTimer: NodeJS.Timeout | undefined;

  /** @internal use launchVm() or adoptVm(). */
  constructor(p: VmParts) {
    super();
    this.spec = p.spec;
    this.runDir = p.runDir;
    this.pid = p.pid;
    this.persistent = p.persistent;
    this.adopted = p.adopted;
    this.qmp = p.qmp;
    this.child = p.child;
    this.log = new CappedLog(this.file('consoleLog'), p.consoleLogBytes);
    this.watcher = new ConsoleWatcher(200, (line) => {
      p.onConsole?.(line);
      this.emit('console', line);
    });
    // A reset (system_reset, or the guest rebooting itself after a panic) starts a new boot.
    this.qmp.on('event', (e) => {
      if (e.event === 'RESET') this.watcher.markBoot();
    });
    this.qemuLog = new FileFollower(this.file('qemuLog'), (line) => {
      if (this.vhostFallback === undefined && VHOST_FAILURE.test(line)) {
        this.vhostFallback = line;
        this.emit('vhost-fallback', line);
      }
      this.emit('stderr', line);
    });
    this.exited = this.watchExit();
  }

  private file(name: keyof typeof RUN_FILES): string {
    return join(this.runDir, RUN_FILES[name]);
  }

  /** The first guest console line that reported a kernel bug (BUG:, WARNING:, Oops, ...). */
  get kernelProblem(): string | undefined {
    return this.watcher.problem;
  }

  /** Every kernel problem on the console, each with the lines around it. */
  get kernelProblems(): readonly KernelProblem[] {
    return this.watcher.problems;
  }

  /** How many console lines have been seen: a mark for kernelProblemsSince(). */
  get consoleLineCount(): number {
    return this.watcher.lineCount;
  }

  /** Console line count when the guest last reset (QMP RESET) or printed a kernel banner; -1 before. */
  get lastBootLine(): number {
    return this.watcher.lastBootStart;
  }

  kernelProblemsSince(mark: number): KernelProblem[] {
    return this.watcher.problemsSince(mark);
  }

  /**
   * Keeps the whole console log as an artifact (qemu/artifacts.ts), named
   * after the VM and `why`; returns its path, if one was written.
   */
  keepConsole(why: string): string | undefined {
    return keepArtifact(`${this.spec.name}-${why}.console.log`, this.consoleText());
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** @internal connect the serial console and log it. */
  async attachConsole(timeoutMs = 5000): Promise<void> {
    const path = this.file('console');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        this.consoleSocket = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        break;
      } catch (err) {
        if (Date.now() >= deadline || this.hasExited) throw new Error(`cannot connect to the console of ${this.spec.name} at ${path}: ${(err as Error).message}`);
        await sleep(50);
      }
    }
    this.consoleSocket.on('data', (d: Buffer) => {
      this.log.write(d);
      this.watcher.feed(d);
    });
    this.consoleSocket.on('error', () => undefined);
  }

  private async watchExit(): Promise<VmExit> {
    let exit: VmExit;
    if (this.child) {
      const r = await this.child;
      exit = { code: r.exitCode, signal: r.signal };
    } else {
      // Not our child: poll. The timer keeps the process alive while someone holds the VM.
      await new Promise<void>((resolve) => {
        const check = () => {
          if (!processAlive(this.pid)) {
            clearInterval(this.pollTimer);
            resolve();
          }
        };
        this.pollTimer = setInterval(check, 200);
        check();
      });
      exit = { code: undefined, signal: undefined };
    }
    this.exitInfo = exit;
    this.qemuLog.stop();
    this.consoleSocket?.destroy();
    this.watcher.end();
    this.log.close();
    // A guest whose kernel reported a problem leaves its whole console behind.
    if (this.watcher.problems.length > 0) this.keptConsole = this.keepConsole('kernel-problem');
    await this.qmp.close();
    for (const f of ['qmp', 'console', 'pidfile', 'state'] as const) rmSync(this.file(f), { force: true });
    this.emit('exit', exit);
    return exit;
  }

  /** QMP query-status: "running", "paused", "prelaunch", "shutdown", ... */
  async status(): Promise<{ status: string; running: boolean }> {
    const r = await this.qmp.execute<{ status: string; running: boolean }>('query-status');
    return { status: r.status, running: r.running };
  }

  /** A hard reset of the guest (QMP system_reset), like pressing the reset button. */
  async reboot(): Promise<void> {
    await this.qmp.execute('system_reset');
  }

  /** Whether vhost-net is running each NIC, from qemu itself. */
  async vhostStatus(): Promise<VhostNicStatus[]> {
    return Promise.all(
      this.spec.nics.map(async (nic, i) => {
        const s = await this.qmp.execute<{ 'vhost-started': boolean }>('x-query-virtio-status', { path: nicVirtioPath(i) });
        return { nic: i, requested: nic.vhost, started: s['vhost-started'] };
      }),
    );
  }

  /** The serial console as the log files keep it (the last 1-2 MiB). */
  consoleText(): string {
    let text = '';
    for (const f of [`${this.file('consoleLog')}.1`, this.file('consoleLog')]) {
      try {
        text += readFileSync(f, 'utf8');
      } catch {
        // not written yet
      }
    }
    return text;
  }

  /** The last lines of the serial console, from the log files. */
  consoleTail(lines = 50): string[] {
    const all = this.consoleText().split(/\r?\n/).map((l) => l.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ''));
    if (all.at(-1) === '') all.pop();
    return all.slice(-lines);
  }

  /** Lines qemu printed on its stdout and stderr. */
  qemuOutput(): string {
    try {
      return readFileSync(this.file('qemuLog'), 'utf8');
    } catch {
      return '';
    }
  }

  private async exitedWithin(ms: number): Promise<boolean> {
    if (this.hasExited) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
    const done = await Promise.race([this.exited.then(() => true as const), timeout]);
    clearTimeout(timer);
    return done;
  }

  private signal(sig: NodeJS.Signals): void {
    // Never signal a pid that is no longer this VM's qemu.
    if (this.hasExited || !isQemuWithPidfile(this.pid, this.file('pidfile'))) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // it exited meanwhile
    }
  }

  /**
   * Stop qemu: QMP `quit`, then SIGTERM, then SIGKILL, each step bounded.
   * Resolves once the process is gone, with the step that ended it.
   */
  async stop(opts: StopOptions = {}): Promise<StopResult> {
    const quitMs = opts.quitTimeoutMs ?? 10_000;
    const termMs = opts.termTimeoutMs ?? 5_000;
    const steps: string[] = [];
    if (this.hasExited) return { how: 'already-exited', steps };
    if (this.qmp.isOpen) {
      try {
        await this.qmp.execute('quit', undefined, { timeoutMs: quitMs });
        steps.push('quit answered');
      } catch (err) {
        // qemu may close the connection before its answer arrives: that is success.
        steps.push(err instanceof QmpDisconnectedError ? 'QMP closed' : `quit failed: ${(err as Error).message}`);
      }
      if (await this.exitedWithin(quitMs)) return { how: 'quit', steps };
    } else {
      steps.push('no QMP connection');
    }
    this.signal('SIGTERM');
    steps.push('SIGTERM');
    if (await this.exitedWithin(termMs)) return { how: 'SIGTERM', steps };
    this.signal('SIGKILL');
    steps.push('SIGKILL');
    if (await this.exitedWithin(10_000)) return { how: 'SIGKILL', steps };
    throw new Error(`qemu ${this.pid} (${this.spec.name}) is still there 10 s after SIGKILL`);
  }

  /**
   * Let go of the VM without stopping it: QMP and the console are closed and
   * this process may exit. A persistent VM keeps running (adoptVm() finds it);
   * a non-persistent one still dies with this process.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.pollTimer);
    this.qemuLog.stop();
    this.consoleSocket?.destroy();
    this.log.close();
    await this.qmp.close();
    this.child?.unref();
  }
}

function socketPathCheck(path: string): void {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new Error(`${path} is too long for a unix socket (${Buffer.byteLength(path)} bytes; at most ${MAX_SOCKET_PATH}): use a shorter runDir`);
  }
}

/** Refuse a run directory whose VM is still alive; clear what a dead one left. */
function claimRunDir(runDir: string): void {
  const pidfile = join(runDir, RUN_FILES.pidfile);
  const pid = readPid(pidfile);
  if (pid !== undefined && processAlive(pid) && isQemuWithPidfile(pid, pidfile)) {
    throw new Error(`${runDir} already belongs to a running VM (qemu pid ${pid}); adopt or stop it first`);
  }
  for (const f of [RUN_FILES.qmp, RUN_FILES.console, RUN_FILES.pidfile, RUN_FILES.state]) rmSync(join(runDir, f), { force: true });
}

function readPid(pidfile: string): number | undefined {
  try {
    const n = Number(readFileSync(pidfile, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Start a guest. Resolves once qemu runs with QMP and the console connected;
 * rejects (and leaves no qemu behind) if it does not get that far, with what
 * qemu printed.
 */
export async function launchVm(opts: LaunchOptions): Promise<Vm> {
  const spec = VmSpecSchema.parse(opts.spec);
  const persistent = opts.persistent ?? false;
  const kvm = kvmUsable();
  if (spec.accel === 'kvm' && !kvm) throw new Error(`${spec.name}: accel "kvm" was asked for, but KVM is not usable here (no /dev/kvm or no vmx/svm)`);
  if (spec.nics.some((n) => n.vhost)) {
    try {
      accessSync('/dev/vhost-net', constants.R_OK | constants.W_OK);
    } catch (err) {
      // qemu 7.2 would warn, drop the netdev and then abort on an assertion.
      throw new Error(`${spec.name}: a NIC asks for vhost, but /dev/vhost-net cannot be opened here (${(err as NodeJS.ErrnoException).code}); load vhost_net or set vhost: false`);
    }
  }
  const runDir = opts.runDir;
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const path = (f: keyof typeof RUN_FILES) => join(runDir, RUN_FILES[f]);
  socketPathCheck(path('qmp'));
  socketPathCheck(path('console'));
  claimRunDir(runDir);

  // The child gets the fd NICs' descriptors at 3, 4, ...; the parent's copies stay the caller's.
  const hostFds: number[] = [];
  const nicFds = spec.nics.map((nic, i) => {
    if (nic.backend.kind !== 'fd') return undefined;
    try {
      fstatSync(nic.backend.fd);
    } catch {
      throw new Error(`${spec.name}: nics[${i}] names fd ${nic.backend.fd}, which is not open in this process`);
    }
    hostFds.push(nic.backend.fd);
    return 2 + hostFds.length;
  });
  const argv = vmArgv(spec, {
    kvmUsable: usesKvm(spec, kvm),
    tcgCpu: tcgCpuModel(),
    qmpSocket: path('qmp'),
    console: { kind: 'socket', path: path('console') },
    pidfile: path('pidfile'),
    nicFds,
    paused: true,
  });
  writeFileSync(path('state'), `${JSON.stringify({ spec, persistent, startedAt: new Date().toISOString() }, null, 2)}\n`);

  const logFd = openSync(path('qemuLog'), 'w');
  let child: ResultPromise;
  try {
    // Plain descriptor numbers go to spawn() as they are (dup2 into the child
    // without CLOEXEC); execa's types only admit a few literal numbers.
    const stdio = ['ignore', logFd, logFd, ...hostFds] as unknown as ['ignore', 1, 1, ...3[]];
    const common = { stdio, reject: false, buffer: false } as const;
    child = persistent
      ? // Own session, no death signal, and execa must not kill it when we exit.
        execa('qemu-system-x86_64', argv, { ...common, detached: true, cleanup: false })
      : execa('setpriv', ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...argv], common);
  } finally {
    closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    const r = await child;
    rmSync(path('state'), { force: true });
    throw new Error(`cannot start qemu for ${spec.name}: ${r.originalMessage ?? r.message}`);
  }

  const gone = new AbortController();
  void child.then((r) => gone.abort(new Error(`qemu exited (${r.signal ?? `status ${r.exitCode}`})`)));
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  let qmp: QmpClient;
  try {
    qmp = await QmpClient.connect(path('qmp'), { retry: true, timeoutMs: startTimeoutMs, signal: gone.signal });
  } catch (err) {
    if (!gone.signal.aborted) process.kill(pid, 'SIGKILL');
    await child;
    const said = readFileSync(path('qemuLog'), 'utf8').trim();
    for (const f of ['qmp', 'console', 'pidfile', 'state'] as const) rmSync(path(f), { force: true });
    throw new Error(`qemu for ${spec.name} did not start: ${(err as Error).message}${said ? `\nqemu said: ${said}` : ''}`);
  }
  const vm = new Vm({
    spec,
    runDir,
    pid,
    persistent,
    adopted: false,
    qmp,
    child,
    consoleLogBytes: opts.consoleLogBytes ?? 1 << 20,
    onConsole: opts.onConsole,
  });
  try {
    await vm.attachConsole();
    await qmp.execute('cont');
  } catch (err) {
    await vm.stop({ quitTimeoutMs: 2000, termTimeoutMs: 2000 });
    throw err;
  }
  return vm;
}

/**
 * Find the VM a previous launcher left running in `runDir` (persistent VMs),
 * check that the pidfile's process is alive and really is that VM's qemu,
 * reconnect QMP and the console, and return the same handle launchVm gives.
 * Throws VmGoneError (after clearing stale files) when there is no such VM.
 */
export async function adoptVm(runDir: string, opts: AdoptOptions = {}): Promise<Vm> {
  const path = (f: keyof typeof RUN_FILES) => join(runDir, RUN_FILES[f]);
  const gone = (reason: string): never => {
    for (const f of ['qmp', 'console', 'pidfile', 'state'] as const) rmSync(path(f), { force: true });
    throw new VmGoneError(runDir, reason);
  };
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new VmGoneError(runDir, 'the run directory does not exist');
  const pid = readPid(path('pidfile'));
  if (pid === undefined) return gone('no pidfile (qemu never started or has exited)');
  if (!processAlive(pid)) return gone(`qemu ${pid} is no longer running`);
  if (!isQemuWithPidfile(pid, path('pidfile'))) return gone(`process ${pid} is not this VM's qemu (the pid was reused)`);
  let state: z.infer<typeof StateSchema>;
  try {
    state = StateSchema.parse(JSON.parse(readFileSync(path('state'), 'utf8')));
  } catch (err) {
    throw new Error(`qemu ${pid} runs in ${runDir} but ${RUN_FILES.state} is unreadable: ${(err as Error).message}`);
  }
  const qmp = await QmpClient.connect(path('qmp'), { timeoutMs: opts.timeoutMs ?? 10_000 });
  const vm = new Vm({
    spec: state.spec,
    runDir,
    pid,
    persistent: state.persistent,
    adopted: true,
    qmp,
    child: undefined,
    consoleLogBytes: opts.consoleLogBytes ?? 1 << 20,
    onConsole: opts.onConsole,
  });
  try {
    await vm.attachConsole();
  } catch (err) {
    await vm.release();
    throw err;
  }
  return vm;
}
