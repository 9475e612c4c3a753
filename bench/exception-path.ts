// The exception-path benchmark, run on a system where kni.ko is loaded (the
// appliance VM, or a real host): packets per second between the data plane
// and a Linux UDP socket, through a KNI interface and through a TAP device,
// both directions, side by side in one run.
//
//  to-linux (data plane -> kernel -> socket)
//    KNI: generator ─ data plane ─ rx_q ═ kni kthread ─ netif_rx ─ IP/UDP ─ socket ─ udp-blast recv
//    TAP: generator ─ port relay ─ write(tap fd) ─ tun ─ IP/UDP ─ socket ─ udp-blast recv
//
//  from-linux (socket -> kernel -> data plane)
//    KNI: udp-blast send ─ socket ─ IP/UDP ─ kni ndo_start_xmit ─ alloc_q/tx_q ═ data plane ─ sink
//    TAP: udp-blast send ─ socket ─ IP/UDP ─ tun xmit ─ read(tap fd) ─ port relay ─ sink
//
//  tcp (a bulk stream, offloads on both paths; to-linux: the peer sends)
//    KNI: socket ─ TCP/IP ─ kni netdev ═ data plane ─ AF_PACKET (vnet) kveA ─ veth ─ kveB ─ TCP/IP ─ peer socket
//    TAP: socket ─ TCP/IP ─ tap (vnet, TSO) ─ relay ─ AF_PACKET (vnet) kveA ─ veth ─ kveB ─ TCP/IP ─ peer socket
//  The peer is a network namespace; both ends are udp-blast (tcp-send, tcp-recv).
//
// Each run creates its device with an address on its own /24, a permanent
// neighbour entry for the peer and IPv6 off, so no ARP, neighbour discovery or
// IPv6 traffic mixes in, and removes it afterwards.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { DataPlane, Kni, moduleInfo, PortRelay, type KniInterface } from '../native/index.js';
import { addSwitches, ensureCTool, kniEthtool, netdev, procStatCpu, softnet, taskCpu, tasksNamed, taskSwitches, USER_HZ, type Switches } from './proc.js';
import {
  casesOf,
  ExceptionPathConfigSchema,
  FRAME_OVERHEAD,
  summarise,
  TCP_SEGMENT_PAYLOAD,
  type BenchPath,
  type Direction,
  type ExceptionPathConfig,
  type ExceptionPathResult,
  type Run,
  type Workload,
} from './result.js';

interface Endpoint {
  ifname: string;
  localMac: string;
  peerMac: string;
  localIp: string;
  peerIp: string;
  udpPort: number;
}

// Locally administered MACs and a private /24 per device; names kniv's tests do not use.
const ENDPOINTS: Record<BenchPath, Endpoint> = {
  kni: { ifname: 'kvbench0', localMac: '02:6b:76:62:00:01', peerMac: '02:6b:76:62:00:02', localIp: '10.201.0.1', peerIp: '10.201.0.2', udpPort: 47001 },
  tap: { ifname: 'kvbench1', localMac: '02:6b:76:62:01:01', peerMac: '02:6b:76:62:01:02', localIp: '10.201.1.1', peerIp: '10.201.1.2', udpPort: 47002 },
};

const ip = (...args: string[]) => execa('ip', args);

/** The TCP case's far end: a namespace behind a veth whose host side is the port. */
const TCP_PEER_NS = 'kniv-ep-peer';
const TCP_PORT_IF = 'kveA';
const TCP_PEER_IF = 'kveB';
/** The KNI interface's pool for the TCP case: room for a window of 64 KiB super-frames, as vhost-direct's. */
const TCP_KNI_POOL = { bufCount: 8192, fifoEntries: 4096 };

// Frames ----------------------------------------------------------------------

function onesComplementSum(buf: Buffer, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i + 1 < end; i += 2) sum += buf.readUInt16BE(i);
  if ((end - start) % 2 === 1) sum += (buf[end - 1] as number) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

const macBytes = (mac: string) => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
const ipBytes = (addr: string) => Buffer.from(addr.split('.').map(Number));

export interface UdpFrameSpec {
  srcMac: string;
  dstMac: string;
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  /** The whole Ethernet frame, headers included, FCS excluded. */
  frameBytes: number;
}

/** An Ethernet/IPv4/UDP frame with correct IP and UDP checksums, payload 0xa5. */
export function udpFrame(spec: UdpFrameSpec): Buffer {
  const f = Buffer.alloc(spec.frameBytes, 0xa5);
  const ipLen = spec.frameBytes - 14;
  const udpLen = ipLen - 20;
  macBytes(spec.dstMac).copy(f, 0);
  macBytes(spec.srcMac).copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  // IPv4: version 4, IHL 5, no DSCP, total length, id 0, DF, TTL 64, UDP.
  f.writeUInt8(0x45, 14);
  f.writeUInt8(0, 15);
  f.writeUInt16BE(ipLen, 16);
  f.writeUInt16BE(0, 18);
  f.writeUInt16BE(0x4000, 20);
  f.writeUInt8(64, 22);
  f.writeUInt8(17, 23);
  f.writeUInt16BE(0, 24);
  ipBytes(spec.srcIp).copy(f, 26);
  ipBytes(spec.dstIp).copy(f, 30);
  f.writeUInt16BE(~onesComplementSum(f, 14, 34) & 0xffff, 24);
  // UDP, checksummed over the pseudo-header (addresses, protocol, length).
  f.writeUInt16BE(spec.srcPort, 34);
  f.writeUInt16BE(spec.dstPort, 36);
  f.writeUInt16BE(udpLen, 38);
  f.writeUInt16BE(0, 40);
  const pseudo = onesComplementSum(f, 26, 34, 17 + udpLen);
  const sum = ~onesComplementSum(f, 34, 14 + ipLen, pseudo) & 0xffff;
  f.writeUInt16BE(sum === 0 ? 0xffff : sum, 40);
  return f;
}

// The Linux end: udp-blast ------------------------------------------------------

interface HelperReport {
  packets: number;
  bytes: number;
  ns: bigint;
  errors: number;
}

/** A running udp-blast: asks it for its counters with SIGUSR1 and reads the answer line. */
class Helper {
  private readonly lines: string[] = [];
  private waiting: ((line: string | undefined) => void) | undefined;
  private closed = false;
  private stderr = '';

  private constructor(private readonly child: ResultPromise) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(line);
      } else this.lines.push(line);
    });
    rl.on('close', () => {
      this.closed = true;
      this.waiting?.(undefined);
      this.waiting = undefined;
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
  }

  static async start(binary: string, args: string[]): Promise<Helper> {
    const h = new Helper(execa(binary, args, { buffer: false, stdin: 'ignore', reject: false }));
    const first = await h.line(10_000);
    if (first !== 'ready') throw new Error(`udp-blast ${args.join(' ')} did not start: ${first ?? ''} ${h.stderr}`.trim());
    return h;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  private line(timeoutMs: number): Promise<string | undefined> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`udp-blast did not answer within ${timeoutMs} ms ${this.stderr}`.trim()));
      }, timeoutMs);
      this.waiting = (l) => {
        clearTimeout(timer);
        resolve(l);
      };
    });
  }

  private parse(line: string | undefined): HelperReport {
    const m = line === undefined ? null : /^(\d+) (\d+) (\d+) (\d+)$/.exec(line);
    if (!m) throw new Error(`udp-blast said ${JSON.stringify(line)} ${this.stderr}`.trim());
    return { packets: Number(m[1]), bytes: Number(m[2]), ns: BigInt(m[3] as string), errors: Number(m[4]) };
  }

  async report(): Promise<HelperReport> {
    this.child.kill('SIGUSR1');
    return this.parse(await this.line(10_000));
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    const r = await this.child;
    if (r.exitCode !== 0) throw new Error(`udp-blast exited with ${r.exitCode ?? r.signal}: ${this.stderr}`.trim());
  }
}

/** build/bench/udp-blast, compiled from bench/udp-blast.c when missing or stale. */
export const ensureHelper = (): Promise<string> => ensureCTool('udp-blast', ['udp-blast.c']);

// Counters ------------------------------------------------------------------------

/** "Udp: name name ..." / "Udp: value value ..." from /proc/net/snmp. */
function udpSnmp(): Record<string, number> {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp: '));
  const names = (lines[0] ?? '').split(/\s+/).slice(1);
  const values = (lines[1] ?? '').split(/\s+/).slice(1).map(Number);
  const out: Record<string, number> = {};
  names.forEach((n, i) => (out[`udp.${n}`] = values[i] ?? 0));
  return out;
}

/** The symbols perf saw most, self time, from a finished `perf record -a`. */
async function perfProfile(record: ResultPromise, file: string): Promise<NonNullable<Run['profile']>> {
  const r = await record;
  if (r.exitCode !== 0) throw new Error(`perf record failed (is perf installed?): ${String(r.all ?? '').trim()}`);
  const { stdout } = await execa('perf', ['report', '-i', file, '--stdio', '--no-children', '--sort', 'comm,sym', '--percent-limit', '0.5']);
  const out: NonNullable<Run['profile']> = [];
  for (const m of stdout.matchAll(/^\s*([\d.]+)%\s+(.+?)\s+\[([k.])\]\s+(.+?)\s*$/gm)) {
    out.push({ percent: Number(m[1]), comm: m[2] as string, symbol: m[4] as string, kernel: m[3] === 'k' });
  }
  rmSync(file, { force: true });
  return out.slice(0, 40);
}

// One measurement -------------------------------------------------------------------

interface Forwarder {
  /** Frames the forwarder moved in the measured direction (into the kernel, or out of it). */
  packets(): number;
  counters(): Record<string, number>;
  stop(): void;
}

interface Snapshot {
  at: bigint;
  /** The measured helper's report, then the other end's (tcp). */
  helpers: HelperReport[];
  forwarded: number;
  counters: Record<string, number>;
  cpu: ReturnType<typeof procStatCpu>;
  threads: { helper: number; forwarder: number; kthread: number; ksoftirqd: number };
  switches: { helper: Switches; forwarder: Switches; kthread: Switches };
}

class Bench {
  private readonly kni = new Kni();
  private iface: KniInterface | undefined;
  private tap = false;
  private peer = false;

  constructor(
    private readonly config: ExceptionPathConfig,
    private readonly workDir: string,
    private readonly helperBinary: string,
    private readonly log: (line: string) => void,
    private readonly onWindow: WindowHook | undefined,
  ) {}

  private windows = 0;

  /**
   * Creates and configures the device of one path. Only that device exists
   * during its runs: an idle KNI interface still costs its kernel thread's
   * polling, which must not be charged to TAP.
   */
  private async up(path: BenchPath, workload: Workload): Promise<void> {
    const e = ENDPOINTS[path];
    if (workload === 'tcp') await this.peerUp(e);
    if (path === 'kni') {
      this.iface = this.kni.create({ name: e.ifname, mac: e.localMac, ...(workload === 'tcp' ? TCP_KNI_POOL : {}) });
      // Bringing a KNI interface up is a request a data plane answers.
      const answering = new DataPlane([{ iface: this.iface, port: { kind: 'sink' } }], { idleUs: this.config.idleUs });
      try {
        await this.configure(e);
        writeFileSync(`/sys/class/net/${e.ifname}/carrier`, '1');
      } finally {
        answering.stop();
      }
    } else {
      await ip('tuntap', 'add', 'dev', e.ifname, 'mode', 'tap');
      this.tap = true;
      await this.configure(e);
    }
  }

  private async configure(e: Endpoint): Promise<void> {
    const v6 = `/proc/sys/net/ipv6/conf/${e.ifname}/disable_ipv6`;
    if (existsSync(v6)) writeFileSync(v6, '1');
    await ip('link', 'set', e.ifname, 'address', e.localMac);
    await ip('addr', 'add', `${e.localIp}/24`, 'dev', e.ifname);
    await ip('link', 'set', e.ifname, 'up');
    await ip('neigh', 'replace', e.peerIp, 'lladdr', e.peerMac, 'dev', e.ifname, 'nud', 'permanent');
  }

  /** The TCP peer: a namespace with the path's peer address on a veth, the host side left as the port. */
  private async peerUp(e: Endpoint): Promise<void> {
    await this.peerDown();
    await ip('netns', 'add', TCP_PEER_NS);
    this.peer = true;
    await ip('link', 'add', TCP_PORT_IF, 'type', 'veth', 'peer', 'name', TCP_PEER_IF, 'netns', TCP_PEER_NS);
    const v6 = `/proc/sys/net/ipv6/conf/${TCP_PORT_IF}/disable_ipv6`;
    if (existsSync(v6)) writeFileSync(v6, '1');
    await ip('link', 'set', TCP_PORT_IF, 'up');
    const n = (...args: string[]) => ip('-n', TCP_PEER_NS, ...args);
    await execa('ip', ['netns', 'exec', TCP_PEER_NS, 'sysctl', '-qw', `net.ipv6.conf.${TCP_PEER_IF}.disable_ipv6=1`]);
    await n('link', 'set', 'lo', 'up');
    await n('link', 'set', TCP_PEER_IF, 'address', e.peerMac);
    await n('addr', 'add', `${e.peerIp}/24`, 'dev', TCP_PEER_IF);
    await n('link', 'set', TCP_PEER_IF, 'up');
    await n('neigh', 'replace', e.localIp, 'lladdr', e.localMac, 'dev', TCP_PEER_IF, 'nud', 'permanent');
  }

  private async peerDown(): Promise<void> {
    await execa('ip', ['link', 'del', TCP_PORT_IF], { reject: false });
    await execa('ip', ['netns', 'del', TCP_PEER_NS], { reject: false });
    this.peer = false;
  }

  private async down(): Promise<void> {
    if (this.tap) await execa('ip', ['tuntap', 'del', 'dev', ENDPOINTS.tap.ifname, 'mode', 'tap'], { reject: false });
    this.tap = false;
    this.iface?.release();
    this.iface = undefined;
    if (this.peer) await this.peerDown();
  }

  close(): void {
    this.kni.close();
  }

  private forwarder(path: BenchPath, direction: Direction, frame: Buffer | undefined, workload: Workload = 'udp'): Forwarder {
    const { idleUs } = this.config;
    const e = ENDPOINTS[path];
    if (path === 'kni') {
      const iface = this.iface as KniInterface;
      const port =
        workload === 'tcp'
          ? { kind: 'packet' as const, ifname: TCP_PORT_IF }
          : frame
            ? { kind: 'generator' as const, frame, count: 0, pps: 0 }
            : { kind: 'sink' as const };
      const dp = new DataPlane([{ iface, port }], { idleUs });
      return {
        packets: () => (direction === 'to-linux' ? iface.stats().toKernelPackets : iface.stats().toPortPackets),
        counters: () => {
          const s = iface.stats();
          return {
            'dp.dropNoBuffer': s.dropNoBuffer,
            'dp.dropRxFull': s.dropRxFull,
            'dp.dropPortError': s.dropPortError,
            'dp.badBuffer': s.badBuffer,
            'dp.toKernelGso': s.toKernelGso,
            'dp.toPortGso': s.toPortGso,
            'dp.toPortCut': s.toPortCut,
          };
        },
        stop: () => dp.stop(),
      };
    }
    const relay =
      workload === 'tcp'
        ? new PortRelay({ kind: 'packet', ifname: TCP_PORT_IF }, { kind: 'tap', ifname: e.ifname, vnetHdr: true }, { idleUs })
        : frame
          ? new PortRelay({ kind: 'generator', frame, count: 0, pps: 0 }, { kind: 'tap', ifname: e.ifname }, { idleUs })
          : new PortRelay({ kind: 'sink' }, { kind: 'tap', ifname: e.ifname }, { idleUs });
    const dir = () => (direction === 'to-linux' ? relay.stats().aToB : relay.stats().bToA);
    return {
      packets: () => dir().packets,
      counters: () => {
        const s = dir();
        return { 'relay.dropSend': s.dropSend, 'relay.recvErrors': s.recvErrors, 'relay.dropTooBig': s.dropTooBig };
      },
      stop: () => relay.stop(),
    };
  }

  /** All the counters at one moment; mark() tells the host that moment. helpers[0] is the measured end. */
  private async snapshot(path: BenchPath, helpers: Helper[], fwd: Forwarder, mark: () => void): Promise<Snapshot> {
    const e = ENDPOINTS[path];
    // The helpers stamp their counters when they see the signal; the
    // forwarder's are read at the same moment, the slower ones after.
    const reports = helpers.map((h) => h.report());
    const at = process.hrtime.bigint();
    const forwarded = fwd.packets();
    mark();
    const counters = fwd.counters();
    const reported = await Promise.all(reports);
    Object.assign(counters, udpSnmp(), softnet(), netdev(e.ifname), path === 'kni' ? await kniEthtool(e.ifname) : {});
    const sum = (paths: string[]) => paths.reduce((a, p) => a + taskCpu(p), 0);
    const switches = (paths: string[]) => paths.map(taskSwitches).reduce(addSwitches, { voluntary: 0, involuntary: 0 });
    const helperTasks = helpers.map((h) => `/proc/${h.pid}`);
    const forwarderTasks = tasksNamed('/proc/self/task', (c) => c === 'kniv-dataplane' || c === 'kniv-relay');
    const kthreads = tasksNamed('/proc', (c) => c.startsWith('kni_'));
    const threads = {
      helper: sum(helperTasks),
      forwarder: sum(forwarderTasks),
      kthread: sum(kthreads),
      ksoftirqd: sum(tasksNamed('/proc', (c) => c.startsWith('ksoftirqd/'))),
    };
    const sw = { helper: switches(helperTasks), forwarder: switches(forwarderTasks), kthread: switches(kthreads) };
    return { at, helpers: reported, forwarded, counters, cpu: procStatCpu(), threads, switches: sw };
  }

  /** The two ends of a TCP run, receiver first (the measured one); the receiver listens before the sender connects. */
  private async tcpEnds(path: BenchPath, direction: Direction): Promise<Helper[]> {
    const e = ENDPOINTS[path];
    const port = String(e.udpPort);
    const inPeer = ['ip', 'netns', 'exec', TCP_PEER_NS, this.helperBinary];
    const ends: Helper[] = [];
    try {
      if (direction === 'to-linux') {
        ends.push(await Helper.start(this.helperBinary, ['tcp-recv', e.localIp, port]));
        ends.push(await Helper.start(inPeer[0] as string, [...inPeer.slice(1), 'tcp-send', e.peerIp, e.localIp, port]));
      } else {
        ends.push(await Helper.start(inPeer[0] as string, [...inPeer.slice(1), 'tcp-recv', e.peerIp, port]));
        ends.push(await Helper.start(this.helperBinary, ['tcp-send', e.localIp, e.peerIp, port]));
      }
      return ends;
    } catch (err) {
      for (const h of ends.reverse()) await h.stop().catch(() => undefined);
      throw err;
    }
  }

  async measure(path: BenchPath, direction: Direction, frameBytes: number, repeat: number, workload: Workload = 'udp'): Promise<Run> {
    const e = ENDPOINTS[path];
    const { seconds, warmupSeconds } = this.config;
    let helpers: Helper[] = [];
    let fwd: Forwarder | undefined;
    let measured = false;
    try {
      await this.up(path, workload);
      if (workload === 'tcp') {
        fwd = this.forwarder(path, direction, undefined, 'tcp');
        helpers = await this.tcpEnds(path, direction);
      } else if (direction === 'to-linux') {
        helpers = [await Helper.start(this.helperBinary, ['recv', e.localIp, String(e.udpPort)])];
        const frame = udpFrame({ srcMac: e.peerMac, dstMac: e.localMac, srcIp: e.peerIp, dstIp: e.localIp, srcPort: 9, dstPort: e.udpPort, frameBytes });
        fwd = this.forwarder(path, direction, frame);
      } else {
        fwd = this.forwarder(path, direction, undefined);
        helpers = [await Helper.start(this.helperBinary, ['send', e.localIp, e.peerIp, String(e.udpPort), String(frameBytes - FRAME_OVERHEAD)])];
      }
      await sleep(warmupSeconds * 1000);
      const index = this.windows++;
      const a = await this.snapshot(path, helpers, fwd, () => this.onWindow?.('start', index));
      const label = `${workload}-${path}-${direction}-${frameBytes}-${repeat}`;
      const perfData = join(this.workDir, `perf-${label}.data`);
      const perf = this.config.profile
        ? execa('perf', ['record', '-a', '-q', '-F', '999', '-o', perfData, '--', 'sleep', String(seconds)], { all: true, reject: false })
        : undefined;
      await sleep(seconds * 1000);
      const b = await this.snapshot(path, helpers, fwd, () => this.onWindow?.('end', index));
      const run = this.result(path, workload, direction, frameBytes, repeat, a, b);
      if (perf) run.profile = await perfProfile(perf, perfData);
      const what = workload === 'tcp' ? 'TCP   ' : `${String(frameBytes).padStart(4)} B`;
      this.log(
        `  ${String(repeat).padStart(2)}  ${direction.padEnd(10)} ${what}  ${path.toUpperCase()}  ` +
          `sent ${run.sent.pps.toFixed(0).padStart(8)} pps  received ${run.received.pps.toFixed(0).padStart(8)} pps  ${run.received.gbps.toFixed(3)} Gbit/s`,
      );
      measured = true;
      return run;
    } finally {
      fwd?.stop();
      // After a failure, the helpers' own complaints must not hide the first error.
      for (const h of [...helpers].reverse()) {
        await h.stop().catch((err: unknown) => {
          if (measured) throw err;
        });
      }
      await this.down();
    }
  }

  private result(path: BenchPath, workload: Workload, direction: Direction, frameBytes: number, repeat: number, a: Snapshot, b: Snapshot): Run {
    const wall = Number(b.at - a.at) / 1e9;
    const rate = (packets: number, secs: number, bytesPerPacket: number) => {
      const pps = secs > 0 ? packets / secs : 0;
      return { packets, pps, gbps: (pps * bytesPerPacket * 8) / 1e9 };
    };
    const delta = (i: number) => {
      const x = a.helpers[i] as HelperReport;
      const y = b.helpers[i] as HelperReport;
      return { packets: y.packets - x.packets, bytes: y.bytes - x.bytes, seconds: Number(y.ns - x.ns) / 1e9, errors: y.errors - x.errors };
    };
    let sent;
    let received;
    if (workload === 'tcp') {
      // Bytes of the stream, counted in MTU-sized segments; both ends report.
      const segs = (d: ReturnType<typeof delta>) => rate(Math.round(d.bytes / TCP_SEGMENT_PAYLOAD), d.seconds, TCP_SEGMENT_PAYLOAD);
      received = segs(delta(0));
      sent = segs(delta(1));
    } else {
      const socket = rate(delta(0).packets, delta(0).seconds, frameBytes);
      const forwarded = rate(b.forwarded - a.forwarded, wall, frameBytes);
      sent = direction === 'to-linux' ? forwarded : socket;
      received = direction === 'to-linux' ? socket : forwarded;
    }
    const counters: Record<string, number> = {};
    for (const [k, v] of Object.entries(b.counters)) counters[k] = v - (a.counters[k] ?? 0);
    if (workload === 'udp' && direction === 'from-linux') counters['helper.sendErrors'] = delta(0).errors;
    const cpuTotal = b.cpu.total - a.cpu.total || 1;
    const share = (k: 'user' | 'system' | 'softirq' | 'idle') => (b.cpu[k] - a.cpu[k]) / cpuTotal;
    const busySeconds = (b.cpu.total - a.cpu.total - (b.cpu.idle - a.cpu.idle)) / USER_HZ;
    const per = (k: keyof Snapshot['threads']) => (b.threads[k] - a.threads[k]) / wall;
    const rateOf = (k: keyof Snapshot['switches']) => ({
      voluntary: Math.max(0, b.switches[k].voluntary - a.switches[k].voluntary) / wall,
      involuntary: Math.max(0, b.switches[k].involuntary - a.switches[k].involuntary) / wall,
    });
    return {
      path,
      workload,
      direction,
      frameBytes,
      repeat,
      seconds: wall,
      sent,
      received,
      lossRatio: sent.pps > 0 ? 1 - received.pps / sent.pps : 0,
      ...(received.packets > 0 ? { cpuUsPerPacket: (busySeconds * 1e6) / received.packets } : {}),
      counters,
      cpu: {
        user: share('user'),
        system: share('system'),
        softirq: share('softirq'),
        idle: share('idle'),
        threads: { helper: per('helper'), forwarder: per('forwarder'), kthread: per('kthread'), ksoftirqd: per('ksoftirqd') },
        switches: { helper: rateOf('helper'), forwarder: rateOf('forwarder'), kthread: rateOf('kthread') },
      },
    };
  }
}

function readParam(name: string): number | null {
  try {
    return Number(readFileSync(`/sys/module/kni/parameters/${name}`, 'utf8'));
  } catch {
    return null;
  }
}

/** Called as each measured window starts and ends; index counts runs from 0 in the order of `runs`. */
export type WindowHook = (edge: 'start' | 'end', index: number) => void;

/**
 * Runs the benchmark here: kni.ko must be loaded and this process root. Every
 * combination of the config's paths, directions and frame sizes, `repeat`
 * times, KNI and TAP next to each other in time. Progress goes to log().
 */
export async function runExceptionPath(
  options: Partial<ExceptionPathConfig>,
  log: (line: string) => void,
  onWindow?: WindowHook,
): Promise<ExceptionPathResult> {
  const config = ExceptionPathConfigSchema.parse(options);
  const info = moduleInfo();
  const started = new Date();
  const t0 = process.hrtime.bigint();
  const dir = mkdtempSync(join(tmpdir(), 'kniv-bench-'));
  const runs: Run[] = [];
  try {
    const bench = new Bench(config, dir, await ensureHelper(), log, onWindow);
    try {
      const cases = casesOf(config);
      for (let r = 1; r <= config.repeat; r++) {
        for (const direction of config.directions) {
          for (const { workload, frameBytes } of cases) {
            for (const path of config.paths) runs.push(await bench.measure(path, direction, frameBytes, r, workload));
          }
        }
      }
    } finally {
      bench.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    benchmark: 'exception-path',
    version: 1,
    startedAt: started.toISOString(),
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    system: {
      kernel: release(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      kthreadMode: info.kthreadMode,
      pollIntervalUs: readParam('poll_interval_us'),
      where: 'here',
      accel: null,
    },
    config,
    runs,
    summary: summarise(runs),
  };
}
