// The vhost-direct benchmark, run where kni.ko is loaded and /dev/vhost-net
// exists (the appliance VM, or a real host): vhost-drive, a userspace
// virtio-net driver, plays the guest one emulation level down and drives
// vhost-net over three backends against the same far end.
//
//   kni        vhost-drive ═ vhost-net ─ KNI socket ─ tx_q/rx_q ═ data plane ─ AF_PACKET kvdA ─ veth ─ kvdB (peer)
//   tap-relay  vhost-drive ═ vhost-net ─ tap fd ─ kvdt0 ─ AF_PACKET ─ relay ─ AF_PACKET kvdA ─ veth ─ kvdB (peer)
//   tap        vhost-drive ═ vhost-net ─ tap fd ─ kvdt1 (peer)
//
// The peer is a network namespace. to-port: the driver sends and the peer's
// device counters say what arrived (data frames go to a blackholed address,
// so the peer's stack takes them in and drops them without answering).
// from-port: a second vhost-drive in the peer namespace injects frames with
// AF_PACKET (TSO super-frames for the stream) and the driver counts what
// reaches it. ping: ICMP echo to the peer's address, answered by its stack.
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { closeFd, DataPlane, disableSocket, enableSocket, Kni, moduleInfo, PortRelay, setVnetHdr, type KniInterface } from '../native/index.js';
import { counterDelta, cpuOfTasks, ensureDriver, kniEthtool, netdevIn, procStatCpu, softnet, USER_HZ } from './proc.js';
import {
  FULL_FRAME,
  SMALL_FRAME,
  summarise,
  TCP_HEADERS,
  TSO_MSS,
  TSO_PAYLOAD,
  UDP_HEADERS,
  VhostDirectConfigSchema,
  type Direction,
  type Path,
  type Run,
  type VhostDirectConfig,
  type VhostDirectConfigInput,
  type VhostDirectResult,
  type Workload,
} from './vhost-direct-result.js';

const PEER_NS = 'kniv-vd-peer';
const VETH_LOCAL = 'kvdA';
const VETH_PEER = 'kvdB';
const KNI_IF = 'kvdk0';
const RELAY_TAP = 'kvdt0';
const PEER_TAP = 'kvdt1';
/** Data frames go here: blackholed in the peer, so its stack drops them without an ICMP error. */
const SINK_IP = '10.203.9.9';

interface Addressing {
  driverMac: string;
  driverIp: string;
  peerMac: string;
  peerIp: string;
  /** The peer's device: where to-port traffic is counted and from-port traffic injected. */
  peerIf: string;
}
const VIA_VETH: Addressing = { driverMac: '02:6b:76:64:00:01', driverIp: '10.203.0.1', peerMac: '02:6b:76:64:00:02', peerIp: '10.203.0.2', peerIf: VETH_PEER };
const VIA_PEER_TAP: Addressing = { driverMac: '02:6b:76:64:01:01', driverIp: '10.203.1.1', peerMac: '02:6b:76:64:01:02', peerIp: '10.203.1.2', peerIf: PEER_TAP };
const addressing = (path: Path) => (path === 'tap' ? VIA_PEER_TAP : VIA_VETH);

const ip = (...args: string[]) => execa('ip', args);
const inPeer = (...args: string[]) => execa('ip', ['netns', 'exec', PEER_NS, ...args]);

function noIpv6(ifname: string): void {
  const f = `/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`;
  if (existsSync(f)) writeFileSync(f, '1');
}

/** What vhost-drive prints (the fields used here). */
interface DriveReport {
  seconds: number;
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  rxGsoFrames: number;
  rxErrors: number;
  ringFullWaits: number;
  vhostWorkerCpuS: number | null;
  threadUserS: number;
  threadSysS: number;
  sendErrors?: number;
  latencyUs?: { count: number; lost: number; min: number | null; median: number | null; p99: number | null; max: number | null };
}

async function drive(argv: string[], fd: number | undefined, signal: AbortSignal | undefined): Promise<DriveReport> {
  // execa's types know no descriptor numbers past stdio; a number there is inherited as that fd.
  const stdio = (fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', fd]) as unknown as ['ignore', 'pipe', 'pipe'];
  const r = await execa(argv[0]!, argv.slice(1), { stdio, reject: false, ...(signal ? { cancelSignal: signal } : {}) });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode ?? r.signal}): ${String(r.stderr).trim()}`);
  return JSON.parse(String(r.stdout)) as DriveReport;
}

/** One backend, set up for one run and taken down after it. */
interface Backend {
  /** vhost-drive's backend arguments, the fd to hand it as fd 3, and the command prefix it runs under. */
  driverArgs: string[];
  fd?: number;
  prefix: string[];
  counters(): Promise<Record<string, number>>;
  down(): Promise<void>;
}

interface Snapshot {
  cpu: ReturnType<typeof procStatCpu>;
  kthread: number;
  forwarder: number;
  ksoftirqd: number;
  peer: Record<string, number>;
  counters: Record<string, number>;
}

class Bench {
  private readonly kni = new Kni();

  constructor(
    private readonly config: VhostDirectConfig,
    private readonly driver: string,
    private readonly log: (line: string) => void,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** The peer namespace and the veth into it: one for the whole benchmark. */
  async setup(): Promise<void> {
    await this.teardown();
    await ip('netns', 'add', PEER_NS);
    await inPeer('sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    await ip('link', 'add', VETH_LOCAL, 'type', 'veth', 'peer', 'name', VETH_PEER, 'netns', PEER_NS);
    noIpv6(VETH_LOCAL);
    await ip('link', 'set', VETH_LOCAL, 'up');
    await this.peerDevice(VETH_PEER, VIA_VETH);
    await ip('-n', PEER_NS, 'link', 'set', 'lo', 'up');
    await ip('-n', PEER_NS, 'route', 'add', 'blackhole', `${SINK_IP.replace(/\.\d+$/, '.0')}/24`);
  }

  private async peerDevice(ifname: string, a: Addressing): Promise<void> {
    await ip('-n', PEER_NS, 'link', 'set', ifname, 'address', a.peerMac);
    await ip('-n', PEER_NS, 'addr', 'add', `${a.peerIp}/24`, 'dev', ifname);
    await ip('-n', PEER_NS, 'link', 'set', ifname, 'up');
    await ip('-n', PEER_NS, 'neigh', 'replace', a.driverIp, 'lladdr', a.driverMac, 'dev', ifname, 'nud', 'permanent');
  }

  async teardown(): Promise<void> {
    await execa('ip', ['netns', 'del', PEER_NS], { reject: false });
    await execa('ip', ['link', 'del', VETH_LOCAL], { reject: false });
  }

  close(): void {
    this.kni.close();
  }

  private async up(path: Path, vnetHdr: boolean): Promise<Backend> {
    const { idleUs } = this.config;
    if (path === 'kni') {
      // A pool for super-frames (config.kniBufCount): with the interface
      // default of 2048 buffers about 60 of them fit, half lent to alloc_q.
      const iface: KniInterface = this.kni.create({
        name: KNI_IF,
        mac: VIA_VETH.driverMac,
        bufCount: this.config.kniBufCount,
        fifoEntries: this.config.kniFifoEntries,
      });
      let dp: DataPlane | undefined;
      try {
        dp = new DataPlane([{ iface, port: { kind: 'packet', ifname: VETH_LOCAL } }], { idleUs });
        setVnetHdr(KNI_IF, vnetHdr);
        const fd = enableSocket(KNI_IF);
        return {
          driverArgs: ['--backend-fd', '3'],
          fd,
          prefix: [],
          counters: async () => {
            const s = iface.stats();
            return { ...(await kniEthtool(KNI_IF)), 'dp.dropNoBuffer': s.dropNoBuffer, 'dp.dropRxFull': s.dropRxFull, 'dp.dropPortError': s.dropPortError, 'dp.badBuffer': s.badBuffer, 'dp.toPortGso': s.toPortGso, 'dp.toPortCut': s.toPortCut, 'dp.toKernelGso': s.toKernelGso };
          },
          down: async () => {
            disableSocket(KNI_IF);
            dp?.stop();
            iface.release();
          },
        };
      } catch (err) {
        dp?.stop();
        iface.release();
        throw err;
      }
    }
    if (path === 'tap-relay') {
      await ip('tuntap', 'add', 'dev', RELAY_TAP, 'mode', 'tap');
      noIpv6(RELAY_TAP);
      await ip('link', 'set', RELAY_TAP, 'up');
      const relay = new PortRelay({ kind: 'packet', ifname: RELAY_TAP }, { kind: 'packet', ifname: VETH_LOCAL }, { idleUs });
      return {
        driverArgs: ['--tap', RELAY_TAP],
        prefix: [],
        counters: async () => {
          const s = relay.stats();
          return { 'relay.toPort.dropSend': s.aToB.dropSend, 'relay.toPort.dropTooBig': s.aToB.dropTooBig, 'relay.fromPort.dropSend': s.bToA.dropSend, 'relay.fromPort.dropTooBig': s.bToA.dropTooBig };
        },
        down: async () => {
          relay.stop();
          await execa('ip', ['tuntap', 'del', 'dev', RELAY_TAP, 'mode', 'tap'], { reject: false });
        },
      };
    }
    void vnetHdr;
    await ip('-n', PEER_NS, 'tuntap', 'add', 'dev', PEER_TAP, 'mode', 'tap');
    await this.peerDevice(PEER_TAP, VIA_PEER_TAP);
    return {
      driverArgs: ['--tap', PEER_TAP],
      prefix: ['ip', 'netns', 'exec', PEER_NS],
      counters: async () => ({}),
      down: async () => {
        await execa('ip', ['-n', PEER_NS, 'tuntap', 'del', 'dev', PEER_TAP, 'mode', 'tap'], { reject: false });
      },
    };
  }

  private async snapshot(path: Path, backend: Backend): Promise<Snapshot> {
    return {
      cpu: procStatCpu(),
      kthread: cpuOfTasks('/proc', (c) => c.startsWith('kni_')),
      forwarder: cpuOfTasks('/proc/self/task', (c) => c === 'kniv-dataplane' || c === 'kniv-relay'),
      ksoftirqd: cpuOfTasks('/proc', (c) => c.startsWith('ksoftirqd/')),
      peer: await netdevIn(PEER_NS, addressing(path).peerIf),
      counters: { ...softnet(), ...(await backend.counters()) },
    };
  }

  /** vhost-drive's arguments for a workload: what a data frame is. */
  private static dataArgs(workload: Workload, vnetHdr: boolean, sender: 'driver' | 'far-end'): { args: string[]; headers: number } {
    if (workload === 'frames') return { args: ['--frame-size', String(SMALL_FRAME)], headers: UDP_HEADERS };
    // A far end's stack sends super-frames whatever the backend takes; a
    // guest sends them only when its backend carries the header.
    if (sender === 'far-end' || vnetHdr) return { args: ['--tso', String(TSO_PAYLOAD), '--mss', String(TSO_MSS)], headers: TCP_HEADERS };
    return { args: ['--frame-size', String(FULL_FRAME)], headers: UDP_HEADERS };
  }

  async measure(path: Path, workload: Workload, direction: Direction, vnetHdr: boolean, repeat: number): Promise<Run> {
    const a = addressing(path);
    const { seconds } = this.config;
    const backend = await this.up(path, vnetHdr);
    try {
      const hdr = vnetHdr ? (direction === 'from-port' ? ['--offload'] : []) : ['--vhost-hdr'];
      const addr = ['--src-mac', a.driverMac, '--dst-mac', a.peerMac, '--src-ip', a.driverIp];
      const driverCmd = [...backend.prefix, this.driver, ...backend.driverArgs, ...hdr, ...addr];
      const before = await this.snapshot(path, backend);
      let driverReport: DriveReport;
      let farEnd: DriveReport | undefined;
      let headers = UDP_HEADERS;
      if (workload === 'ping') {
        driverReport = await drive([...driverCmd, '--dst-ip', a.peerIp, '--mode', 'ping', '--seconds', String(seconds)], backend.fd, this.signal);
      } else if (direction === 'to-port') {
        const data = Bench.dataArgs(workload, vnetHdr, 'driver');
        headers = data.headers;
        driverReport = await drive([...driverCmd, '--dst-ip', SINK_IP, '--mode', 'tx', '--seconds', String(seconds), ...data.args], backend.fd, this.signal);
      } else {
        const data = Bench.dataArgs(workload, vnetHdr, 'far-end');
        headers = data.headers;
        // The driver listens a little longer than the far end sends.
        const receiving = drive([...driverCmd, '--dst-ip', a.peerIp, '--mode', 'rx', '--seconds', String(seconds + 1.5)], backend.fd, this.signal);
        await sleep(500);
        const injector = [this.driver, '--inject', a.peerIf, '--mode', 'tx', '--seconds', String(seconds)];
        const farAddr = ['--src-mac', a.peerMac, '--dst-mac', a.driverMac, '--src-ip', a.peerIp, '--dst-ip', a.driverIp];
        const sending = drive(['ip', 'netns', 'exec', PEER_NS, ...injector, ...farAddr, ...data.args], undefined, this.signal);
        [driverReport, farEnd] = await Promise.all([receiving, sending]);
      }
      if (backend.fd !== undefined) closeFd(backend.fd);
      backend.fd = undefined;
      const after = await this.snapshot(path, backend);
      const run = Bench.result({ path, workload, direction, vnetHdr, repeat, headers, before, after, driver: driverReport, farEnd, peerIf: a.peerIf });
      this.log(
        `  ${String(repeat).padStart(2)}  ${`${workload} ${direction} hdr ${vnetHdr ? 'on' : 'off'}`.padEnd(26)} ${path.padEnd(9)} ` +
          (workload === 'ping'
            ? `median ${run.latency?.medianUs?.toFixed(0) ?? '-'} µs, ${run.latency?.lost ?? 0} lost`
            : `${run.gbps.toFixed(3)} Gbit/s  ${run.pps.toFixed(0)} frames/s  loss ${(run.lossRatio * 100).toFixed(0)} %`),
      );
      return run;
    } finally {
      if (backend.fd !== undefined) closeFd(backend.fd);
      await backend.down();
    }
  }

  private static result(o: {
    path: Path;
    workload: Workload;
    direction: Direction;
    vnetHdr: boolean;
    repeat: number;
    headers: number;
    before: Snapshot;
    after: Snapshot;
    driver: DriveReport;
    farEnd: DriveReport | undefined;
    peerIf: string;
  }): Run {
    const { driver, farEnd, before, after, headers } = o;
    const peer = counterDelta(before.peer, after.peer);
    const traffic = (frames: number, bytes: number) => ({ frames, bytes, payloadBytes: Math.max(0, bytes - frames * headers) });
    const toPort = o.direction === 'to-port' || o.workload === 'ping';
    const sent = toPort ? traffic(driver.txFrames, driver.txBytes) : traffic(farEnd!.txFrames, farEnd!.txBytes);
    const received = toPort
      ? traffic(peer[`${o.peerIf}.rx_packets`] ?? 0, peer[`${o.peerIf}.rx_bytes`] ?? 0)
      : traffic(driver.rxFrames, driver.rxBytes);
    const seconds = toPort ? driver.seconds : farEnd!.seconds;
    const busy = (after.cpu.total - after.cpu.idle - (before.cpu.total - before.cpu.idle)) / USER_HZ;
    const counters: Record<string, number> = { ...counterDelta(before.counters, after.counters), ...peer, 'driver.ringFullWaits': driver.ringFullWaits, 'driver.rxErrors': driver.rxErrors };
    if (farEnd?.sendErrors !== undefined) counters['farEnd.sendErrors'] = farEnd.sendErrors;
    const l = driver.latencyUs;
    return {
      path: o.path,
      workload: o.workload,
      direction: o.workload === 'ping' ? 'to-port' : o.direction,
      vnetHdr: o.vnetHdr,
      repeat: o.repeat,
      seconds,
      sent,
      received,
      receivedGsoFrames: toPort ? 0 : driver.rxGsoFrames,
      lossRatio: sent.payloadBytes > 0 ? Math.max(0, 1 - received.payloadBytes / sent.payloadBytes) : 0,
      gbps: seconds > 0 ? (received.payloadBytes * 8) / seconds / 1e9 : 0,
      pps: seconds > 0 ? received.frames / seconds : 0,
      ...(l ? { latency: { count: l.count, lost: l.lost, minUs: l.min, medianUs: l.median, p99Us: l.p99, maxUs: l.max } } : {}),
      cpu: {
        busy,
        softirq: (after.cpu.softirq - before.cpu.softirq) / USER_HZ,
        threads: {
          vhost: driver.vhostWorkerCpuS,
          kthread: after.kthread - before.kthread,
          forwarder: after.forwarder - before.forwarder,
          driver: driver.threadUserS + driver.threadSysS,
          farEnd: farEnd ? farEnd.threadUserS + farEnd.threadSysS : 0,
          ksoftirqd: after.ksoftirqd - before.ksoftirqd,
        },
      },
      bytesPerCpuSecond: busy > 0 ? received.payloadBytes / busy : 0,
      cpuNsPerFrame: received.frames > 0 ? (busy * 1e9) / received.frames : null,
      counters,
    };
  }
}

export { ensureDriver };

/** The runs a config asks for, in order: the paths of one case next to each other in time. */
export function plan(config: VhostDirectConfig): { path: Path; workload: Workload; direction: Direction; vnetHdr: boolean; repeat: number }[] {
  const out = [];
  for (let repeat = 1; repeat <= config.repeat; repeat++) {
    for (const workload of config.workloads) {
      // A round trip has no direction: ping runs once per VNET_HDR setting.
      const directions = workload === 'ping' ? (['to-port'] as const) : config.directions;
      for (const direction of directions) {
        for (const vnetHdr of config.vnetHdr) for (const path of config.paths) out.push({ path, workload, direction, vnetHdr, repeat });
      }
    }
  }
  return out;
}

/**
 * Runs the benchmark here: kni.ko loaded, /dev/vhost-net present, root.
 * Progress goes to log(); `signal` stops the run in progress and the rest.
 */
export async function runVhostDirect(options: VhostDirectConfigInput, log: (line: string) => void, signal?: AbortSignal): Promise<VhostDirectResult> {
  const config = VhostDirectConfigSchema.parse(options);
  if (!existsSync('/dev/vhost-net')) throw new Error('/dev/vhost-net is missing: load vhost_net (the appliance VM has it)');
  const info = moduleInfo();
  const started = new Date();
  const t0 = process.hrtime.bigint();
  const bench = new Bench(config, await ensureDriver(), log, signal);
  const runs: Run[] = [];
  try {
    await bench.setup();
    for (const p of plan(config)) {
      signal?.throwIfAborted();
      runs.push(await bench.measure(p.path, p.workload, p.direction, p.vnetHdr, p.repeat));
    }
  } finally {
    await bench.teardown();
    bench.close();
  }
  return {
    benchmark: 'vhost-direct',
    version: 1,
    startedAt: started.toISOString(),
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    system: { kernel: release(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, kthreadMode: info.kthreadMode, where: 'here', accel: null },
    config,
    runs,
    summary: summarise(runs),
  };
}
