// Fakes of the service's drivers, for inject() tests of the HTTP layer and the
// resource logic on the host. The real drivers are tested in the appliance VM.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { pino, type Logger } from 'pino';
import { buildApp } from '../../server/app.js';
import {
  DriverError,
  type Availability,
  type BenchInterface,
  type BenchRunner,
  type KniDriver,
  type KniHandle,
  type LinkState,
  type SystemProbe,
  type VmExit,
  type VmLaunch,
  type VmProcess,
  type VmRunner,
} from '../../server/drivers.js';
import type { BenchCreate, BenchPath, BenchProgress, BenchResult, Counters, InterfaceCreate } from '../../server/schemas.js';
import { benchConfig } from '../../server/drivers/bench-runner.js';
import { Service } from '../../server/service.js';
import { loadOrCreateToken, statePaths } from '../../server/state-dir.js';

export function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export class FakeHandle implements KniHandle {
  link_: LinkState;
  socketFd: number | undefined;
  released = false;
  rx = 0;

  constructor(
    readonly name: string,
    private readonly driver: FakeKni,
    spec: InterfaceCreate,
  ) {
    this.link_ = {
      ifindex: 100 + driver.created.length,
      mac: spec.mac ?? `02:00:00:00:00:${(driver.created.length + 1).toString(16).padStart(2, '0')}`,
      mtu: spec.mtu,
      up: false,
      carrier: false,
      vnetHdr: spec.vnetHdr ?? false,
    };
  }

  link(): LinkState {
    if (this.released) throw new Error('released');
    return { ...this.link_ };
  }

  counters(): Counters {
    // Every read sees a little traffic, as a live interface would.
    this.rx++;
    return {
      netdev: { rxPackets: this.rx, rxBytes: this.rx * 100, rxDropped: 0, txPackets: 0, txBytes: 0, txDropped: 0 },
      dataPlane: {
        toKernelPackets: this.rx,
        toKernelBytes: this.rx * 100,
        toPortPackets: 0,
        toPortBytes: 0,
        toKernelGso: 0,
        toPortGso: 0,
        toPortCut: 0,
        dropNoBuffer: 0,
        dropRxFull: 0,
        dropTooBig: 0,
        dropPortError: 0,
        badBuffer: 0,
        portErrors: 0,
        requests: 0,
        sleeps: 0,
        kernelKicks: 0,
      },
    };
  }

  async setMtu(mtu: number) {
    this.link_.mtu = mtu;
  }

  async setMac(mac: string) {
    this.link_.mac = mac;
  }

  async setUp(up: boolean) {
    this.link_.up = up;
    if (!up) this.link_.carrier = false;
  }

  setCarrier(on: boolean) {
    if (!this.link_.up) throw new DriverError('EINVAL', 'carrier can only be set while the interface is up');
    this.link_.carrier = on;
  }

  setVnetHdr(on: boolean) {
    if (this.socketFd !== undefined) throw new DriverError('EBUSY', 'socket enabled');
    this.link_.vnetHdr = on;
  }

  enableSocket(): number {
    if (this.socketFd !== undefined) throw new DriverError('EBUSY', 'already enabled');
    this.socketFd = this.driver.nextFd++;
    this.driver.openFds.add(this.socketFd);
    return this.socketFd;
  }

  disableSocket() {
    this.socketFd = undefined;
  }

  release() {
    this.released = true;
    this.driver.live.delete(this.name);
  }
}

export class FakeKni implements KniDriver {
  availability: Availability = { ok: true };
  /** Netdev names taken on the "host" by something else. */
  hostNetdevs = new Set<string>(['lo', 'eth0']);
  /** Host interfaces a packet port may use. */
  hostPorts = new Set<string>(['veth0', 'veth1', 'eth0']);
  created: string[] = [];
  live = new Map<string, FakeHandle>();
  openFds = new Set<number>();
  nextFd = 1000;
  closed = 0;
  failCreate: string | undefined;

  available() {
    return this.availability;
  }

  async create(spec: InterfaceCreate): Promise<KniHandle> {
    if (this.failCreate) throw new DriverError('EIO', this.failCreate);
    if (this.hostNetdevs.has(spec.name) || this.live.has(spec.name)) throw new DriverError('EEXIST', 'exists');
    if (spec.port.kind === 'packet' && !this.hostPorts.has(spec.port.ifname)) {
      throw new DriverError('ENODEV', `no host interface named ${JSON.stringify(spec.port.ifname)}`);
    }
    const h = new FakeHandle(spec.name, this, spec);
    this.created.push(spec.name);
    this.live.set(spec.name, h);
    return h;
  }

  closeFd(fd: number) {
    if (!this.openFds.delete(fd)) throw new Error(`fd ${fd} closed twice or never opened`);
  }

  close() {
    for (const h of this.live.values()) h.release();
    this.closed++;
  }
}

export class FakeProc implements VmProcess {
  private readonly done = deferred<VmExit>();
  readonly exited = this.done.promise;
  reboots = 0;
  stops: boolean[] = [];
  detached = false;
  gone = false;

  constructor(
    readonly pid: number,
    readonly launch: VmLaunch | undefined,
  ) {}

  async status() {
    return this.gone ? 'shutdown' : 'running';
  }

  async stop(force: boolean) {
    this.stops.push(force);
    this.die({ code: 0, signal: null });
    await this.exited;
  }

  async reboot() {
    this.reboots++;
  }

  detach() {
    this.detached = true;
  }

  /** qemu goes away, e.g. killed behind the service's back. */
  die(exit: VmExit) {
    this.gone = true;
    this.done.resolve(exit);
  }
}

export class FakeRunner implements VmRunner {
  availability: Availability = { ok: true };
  procs: FakeProc[] = [];
  /** Procs that survive a service restart, by run directory. */
  survivors = new Map<string, FakeProc>();
  failLaunch: string | undefined;
  /** When set, launch waits for it (a slow boot). */
  gate: Promise<void> | undefined;
  /** fds handed to launch(), with whether the driver still had them open then. */
  launchedFds: number[][] = [];
  private pid = 4000;

  constructor(private readonly kni?: FakeKni) {}

  available() {
    return this.availability;
  }

  async launch(l: VmLaunch): Promise<VmProcess> {
    for (const fd of l.nicFds) if (this.kni && !this.kni.openFds.has(fd)) throw new Error(`fd ${fd} is not open`);
    this.launchedFds.push([...l.nicFds]);
    if (this.gate) await this.gate;
    if (this.failLaunch) throw new Error(this.failLaunch);
    const p = new FakeProc(this.pid++, l);
    this.procs.push(p);
    this.survivors.set(l.runDir, p);
    return p;
  }

  async adopt(runDir: string): Promise<VmProcess | undefined> {
    const p = this.survivors.get(runDir);
    return p && !p.gone ? p : undefined;
  }

  consoleLogPath(runDir: string) {
    return join(runDir, 'console.log');
  }
}

/** The figures of one path, protocol and direction. */
export type BenchFigures = (path: BenchPath, protocol: 'tcp' | 'udp', direction: 'host-to-guest' | 'guest-to-host') => {
  mbps: number;
  packetsPerSecond: number | null;
  lossPercent: number | null;
  retransmits: number | null;
};

/** The same made-up figures for every case. */
export const flatFigures: BenchFigures = (_path, protocol) =>
  protocol === 'tcp'
    ? { mbps: 1234.5, retransmits: 0, packetsPerSecond: null, lossPercent: null }
    : { mbps: 1234.5, retransmits: null, packetsPerSecond: 5000, lossPercent: 1.5 };

/**
 * Figures shaped like a run under TCG (made up, not measured): each path's
 * own, VNET_HDR on well ahead for TCP (the guest's offloads), TAP a little
 * ahead of KNI, host → guest ahead of guest → host, UDP packets/s close together.
 */
export const pathFigures: BenchFigures = (path, protocol, direction) => {
  const tcp: Record<BenchPath, [number, number]> = {
    'kni-vnethdr-off': [182, 151],
    'kni-vnethdr-on': [948, 806],
    'tap-vnethdr-on': [1104, 913],
    'tap-vnethdr-off': [214, 176],
  };
  const udp: Record<BenchPath, [number, number]> = {
    'kni-vnethdr-off': [21_400, 18_900],
    'kni-vnethdr-on': [22_100, 19_600],
    'tap-vnethdr-on': [25_800, 22_300],
    'tap-vnethdr-off': [24_900, 21_700],
  };
  const i = direction === 'host-to-guest' ? 0 : 1;
  if (protocol === 'tcp') return { mbps: tcp[path][i], retransmits: 3 + i, packetsPerSecond: null, lossPercent: null };
  const pps = udp[path][i];
  return { mbps: (pps * 64 * 8) / 1e6, retransmits: null, packetsPerSecond: pps, lossPercent: 0.4 + i };
};

/** A benchmark that answers with made-up figures once `gate` opens; records what it was asked. */
export class FakeBench implements BenchRunner {
  availability: Availability = { ok: true };
  gate = deferred<void>();
  progress: ((p: BenchProgress) => void) | undefined;
  fail: string | undefined;
  /** The interface lent to the last run. */
  lent: BenchInterface | undefined;
  aborted = false;
  /** What each case measures; pathFigures makes the paths differ. */
  figures: BenchFigures = flatFigures;
  /** The guest's accelerator the result reports. */
  accel: 'tcg' | 'kvm' = 'tcg';

  available() {
    return this.availability;
  }

  async run(spec: BenchCreate, onProgress: (p: BenchProgress) => void, signal: AbortSignal, iface?: BenchInterface): Promise<BenchResult> {
    this.progress = onProgress;
    this.lent = iface;
    onProgress({ phase: 'booting guest', fraction: 0.1, message: null });
    await Promise.race([
      this.gate.promise,
      new Promise((_r, rej) =>
        signal.addEventListener('abort', () => {
          this.aborted = true;
          rej(new Error('the benchmark was aborted'));
        }),
      ),
    ]);
    if (this.fail) throw new Error(this.fail);
    onProgress({ phase: 'done', fraction: 1, message: null });
    const config = benchConfig(spec, iface);
    const results = (config.paths ?? []).flatMap((path) =>
      (config.protocols ?? []).flatMap((protocol) =>
        (config.directions ?? []).map((direction) => ({
          direction,
          ...this.figures(path, protocol, direction),
          path,
          backend: path.startsWith('kni') ? ('kni' as const) : ('tap' as const),
          vnetHdr: path.endsWith('-on'),
          vhost: spec.vhost,
          protocol,
          runs: spec.repeat,
        })),
      ),
    );
    return {
      results,
      accel: this.accel,
      kernel: '6.1.0-99-amd64',
      guest: { kernel: '6.1.0-99-amd64', vcpus: 1, memoryMiB: 256, bootSeconds: 100, bootFaults: [] },
      durationS: spec.durationS,
      repeat: spec.repeat,
      udpPayloadBytes: spec.udpPayloadBytes,
      vhostStatus: (config.paths ?? []).map((path) => ({ path, requested: spec.vhost, started: spec.vhost })),
      vhostFallback: null,
      vhostVerified: true,
      interface: iface?.name ?? null,
      seconds: 200,
    };
  }
}

export const fakeProbe = (): SystemProbe => ({
  kernel: '6.1.0-99-amd64',
  kni: { loaded: true, abiVersion: 5, kthreadMode: 'single', parameters: { kthread_mode: 'single' } },
  kvm: false,
  vhostNet: true,
  qemu: { available: true, version: '7.2.0' },
});

export interface Harness {
  app: ReturnType<typeof buildApp>;
  service: Service;
  kni: FakeKni;
  runner: FakeRunner;
  bench: FakeBench;
  token: string;
  stateDir: string;
  auth: { authorization: string };
  logs: string[];
}

export const silentLogger = (): Logger => pino({ level: 'silent' });

/** A logger whose lines land in `lines`. */
export function capturingLogger(lines: string[]): Logger {
  return pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
}

export interface HarnessOptions {
  stateDir?: string;
  kni?: FakeKni;
  runner?: FakeRunner;
  bench?: FakeBench;
  logger?: Logger;
  keepStateDir?: boolean;
  bodyLimit?: number;
  heartbeatMs?: number;
  countersIntervalMs?: number;
}

export async function harness(t: ExecutionContext, o: HarnessOptions = {}): Promise<Harness> {
  const stateDir = o.stateDir ?? mkdtempSync(join(tmpdir(), 'kniv-test-'));
  const kni = o.kni ?? new FakeKni();
  const runner = o.runner ?? new FakeRunner(kni);
  const bench = o.bench ?? new FakeBench();
  const logs: string[] = [];
  const logger = o.logger ?? capturingLogger(logs);
  const service = await Service.open(
    { stateDir, logger, countersIntervalMs: o.countersIntervalMs ?? 60_000 },
    { kni, vms: runner, bench, probe: fakeProbe },
  );
  const { token } = loadOrCreateToken(statePaths(stateDir).token);
  const app = buildApp(
    { token, logger, version: '0.1.0-test', bodyLimit: o.bodyLimit, heartbeatMs: o.heartbeatMs },
    { system: () => ({ kernel: '6.1.0-99-amd64', kni: { loaded: true, abiVersion: 5, kthreadMode: 'single' }, kvm: false, vhostNet: true }), service },
  );
  let closed = false;
  t.teardown(async () => {
    if (closed) return;
    closed = true;
    bench.gate.resolve();
    await app.close().catch(() => undefined);
    await service.close();
    if (!o.keepStateDir && !o.stateDir) rmSync(stateDir, { recursive: true, force: true });
  });
  return { app, service, kni, runner, bench, token, stateDir, auth: { authorization: `Bearer ${token}` }, logs };
}

/** Closes a harness's app and service (as a service restart would), keeping its state directory. */
export async function closeHarness(h: Harness): Promise<void> {
  await h.app.close();
  await h.service.close();
}
