// What the service needs from the layers below it, as narrow interfaces. The
// real implementations are in drivers/ (the native addon, the qemu launcher,
// the benchmark); route tests use fakes of these interfaces.
import type { BenchCreate, BenchProgress, BenchResult, Counters, InterfaceCreate, VmCreate } from './schemas.js';

export type Availability = { ok: true } | { ok: false; reason: string };

/** A failure of a driver call with an errno-like code ('EEXIST', 'ENODEV', …). */
export class DriverError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'DriverError';
  }
}

export interface LinkState {
  ifindex: number;
  mac: string;
  mtu: number;
  up: boolean;
  carrier: boolean;
  /** null when this kni.ko has no KNI socket. */
  vnetHdr: boolean | null;
}

/** One live KNI interface with its data plane. */
export interface KniHandle {
  readonly name: string;
  link(): LinkState;
  counters(): Counters;
  setMtu(mtu: number): Promise<void>;
  setMac(mac: string): Promise<void>;
  setUp(up: boolean): Promise<void>;
  setCarrier(on: boolean): void;
  setVnetHdr(on: boolean): void;
  /** Enables the interface's socket; the fd is this process's (close-on-exec) until handed to qemu. */
  enableSocket(): number;
  disableSocket(): void;
  /** Stops the data plane and removes the netdev. */
  release(): void;
}

export interface KniDriver {
  available(): Availability;
  create(spec: InterfaceCreate): Promise<KniHandle>;
  /** Closes this process's copy of a socket fd (qemu keeps its own). */
  closeFd(fd: number): void;
  /** Closes /dev/kni: every interface this process created goes with it. */
  close(): void;
}

/** What qemu reports of a VM that ended. */
export interface VmExit {
  code: number | null;
  signal: string | null;
}

/** A qemu process, launched or adopted. */
export interface VmProcess {
  readonly pid: number;
  /** Settles when qemu is gone, whoever ended it. */
  readonly exited: Promise<VmExit>;
  /** qemu's run state from QMP (query-status), e.g. 'running', 'paused', 'shutdown'. */
  status(): Promise<string>;
  /** QMP quit, then SIGTERM, then SIGKILL; force skips the quit. Resolves when qemu is gone. */
  stop(force: boolean): Promise<void>;
  reboot(): Promise<void>;
  /** Lets go of the process without stopping it (service shutdown: VMs outlive the service). */
  detach(): void;
}

export interface VmLaunch {
  spec: VmCreate;
  /** The VM's run directory: QMP socket, pid file, console log. */
  runDir: string;
  /** One fd per NIC, in the order of spec.nics: this process's socket fds, for qemu to inherit. */
  nicFds: number[];
}

export interface VmRunner {
  available(): Availability;
  /** Resolves once qemu runs and answers QMP; the caller may then close its copies of nicFds. */
  launch(launch: VmLaunch): Promise<VmProcess>;
  /** Re-attaches to a VM still running from its run directory after a service restart; undefined when it is gone. */
  adopt(runDir: string): Promise<VmProcess | undefined>;
  /** The console log a VM leaves in its run directory. */
  consoleLogPath(runDir: string): string;
}

/** An existing interface lent to a benchmark (BenchCreate.interface), its socket enabled for the run. */
export interface BenchInterface {
  name: string;
  /** The socket's descriptor in this process; the lender closes it when the run ends. */
  fd: number;
  vnetHdr: boolean;
  /** The device on the far side of its data plane (its TAP port), where the run puts the peer address. */
  peerDevice: string;
}

export interface BenchRunner {
  available(): Availability;
  /** Aborting stops the guest and rejects; everything the run created is removed either way. */
  run(spec: BenchCreate, onProgress: (p: BenchProgress) => void, signal: AbortSignal, iface?: BenchInterface): Promise<BenchResult>;
}

/** Facts for /v1/system that come from the host: kernel, module, accelerators, versions. */
export interface SystemProbe {
  kernel: string;
  kni: { loaded: boolean; abiVersion?: number; kthreadMode?: 'single' | 'multiple'; error?: string; parameters: Record<string, string> };
  kvm: boolean;
  vhostNet: boolean;
  qemu: { available: boolean; version: string | null };
}
