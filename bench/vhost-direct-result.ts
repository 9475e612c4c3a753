// The vhost-direct benchmark's configuration and result document: zod
// schemas (what the JSON file holds), the medians over repeats with the
// ratios between paths, and the table printed for people.
import { z } from 'zod';
import { align, fmtPps, formatHostLoad, groupBy, HostLoadSchema, median, resultHead, systemFields } from './stats.js';

/**
 * The backends vhost-net drives, each against the same far end:
 *   kni        a KNI interface's socket → FIFOs → data plane → AF_PACKET on the veth
 *   tap-relay  a TAP device → AF_PACKET on it → the same data plane relay → the veth
 *   tap        a TAP device inside the peer namespace: its stack is the far end
 */
export const PATHS = ['kni', 'tap-relay', 'tap'] as const;
export const PathSchema = z.enum(PATHS);
export type Path = z.infer<typeof PathSchema>;

/**
 * What is sent:
 *   frames  60-byte UDP frames (64 B on a wire), frames per second
 *   stream  VNET_HDR on: TCP/IPv4 TSO super-frames of 64 000 bytes of payload;
 *           off: 1514-byte UDP frames (what a guest sends without offloads); payload bytes
 *   ping    ICMP echo to the far end's address, one at a time: round-trip latency
 */
export const WORKLOADS = ['frames', 'stream', 'ping'] as const;
export const WorkloadSchema = z.enum(WORKLOADS);
export type Workload = z.infer<typeof WorkloadSchema>;

/** to-port: the driver sends (guest → port); from-port: the far end sends to the driver (port → guest). */
export const DIRECTIONS = ['to-port', 'from-port'] as const;
export const DirectionSchema = z.enum(DIRECTIONS);
export type Direction = z.infer<typeof DirectionSchema>;

/** Payload of a stream super-frame (IP total length 64 040) and the MSS it is cut to. */
export const TSO_PAYLOAD = 64_000;
export const TSO_MSS = 1448;
/** Ethernet + IPv4 + TCP, and Ethernet + IPv4 + UDP. */
export const TCP_HEADERS = 54;
export const UDP_HEADERS = 42;
export const SMALL_FRAME = 60;
export const FULL_FRAME = 1514;

const unique = <T>(xs: T[]) => new Set(xs).size === xs.length;

export const VhostDirectConfigSchema = z
  .object({
    paths: z.array(PathSchema).min(1).refine(unique, 'each path once').default([...PATHS]),
    workloads: z.array(WorkloadSchema).min(1).refine(unique, 'each workload once').default([...WORKLOADS]),
    directions: z.array(DirectionSchema).min(1).refine(unique, 'each direction once').default([...DIRECTIONS]),
    vnetHdr: z.array(z.boolean()).min(1).refine(unique, 'on and off once each').default([true, false]),
    /** Measured seconds of each run. */
    seconds: z.number().int().min(1).max(300).default(3),
    repeat: z.number().int().min(1).max(20).default(3),
    /** The data plane and relay threads' sleep when idle, µs (the service's default). */
    idleUs: z.number().int().min(1).max(100_000).default(200),
    /**
     * The KNI interface's pool: a 64 KiB frame takes 33 of its 2 KiB
     * buffers, so the default holds about 250 (a TAP queues 1000 frames of
     * any size). A small pool makes the sender wait for room.
     */
    kniBufCount: z.number().int().min(64).max(65536).default(8192),
    kniFifoEntries: z
      .number()
      .int()
      .min(16)
      .max(65536)
      .refine((n) => (n & (n - 1)) === 0, 'a power of two')
      .default(4096),
  })
  .strict();
export type VhostDirectConfig = z.output<typeof VhostDirectConfigSchema>;
export type VhostDirectConfigInput = z.input<typeof VhostDirectConfigSchema>;

const Count = z.number().int().min(0);
const Seconds = z.number().min(0);

export const TrafficSchema = z.object({
  frames: Count,
  /** Ethernet bytes (headers included; a GSO super-frame counts whole). */
  bytes: Count,
  /** Payload bytes: `bytes` less each frame's headers, so cut and uncut frames compare. */
  payloadBytes: Count,
});

export const LatencySchema = z.object({
  count: Count,
  lost: Count,
  minUs: z.number().nullable(),
  medianUs: z.number().nullable(),
  p99Us: z.number().nullable(),
  maxUs: z.number().nullable(),
});

export const RunSchema = z.object({
  path: PathSchema,
  workload: WorkloadSchema,
  direction: DirectionSchema,
  vnetHdr: z.boolean(),
  repeat: z.number().int().min(1),
  /** The sender's measured seconds (the driver's, or the far end's for from-port). */
  seconds: Seconds,
  sent: TrafficSchema,
  received: TrafficSchema,
  /** GSO frames the receiving driver got whole (from-port). */
  receivedGsoFrames: Count,
  lossRatio: z.number(),
  /** Received payload, Gbit/s, and received frames per second. */
  gbps: z.number().min(0),
  pps: z.number().min(0),
  latency: LatencySchema.optional(),
  cpu: z.object({
    /** Seconds of the machine's CPUs not idle during the whole run (setup and drain included). */
    busy: Seconds,
    softirq: Seconds,
    /** CPU seconds of each thread on the path during the run. */
    threads: z.object({
      vhost: Seconds.nullable(),
      kthread: Seconds,
      forwarder: Seconds,
      driver: Seconds,
      farEnd: Seconds,
      ksoftirqd: Seconds,
    }),
  }),
  /** Received payload bytes per busy CPU-second, and busy CPU ns per received frame. */
  bytesPerCpuSecond: z.number().min(0),
  cpuNsPerFrame: z.number().min(0).nullable(),
  counters: z.record(z.string(), z.number()),
});
export type Run = z.infer<typeof RunSchema>;

export const SummaryRowSchema = z.object({
  workload: WorkloadSchema,
  direction: DirectionSchema,
  vnetHdr: z.boolean(),
  path: PathSchema,
  runs: z.number().int().min(1),
  gbps: z.number(),
  pps: z.number(),
  lossRatio: z.number(),
  bytesPerCpuSecond: z.number(),
  latencyMedianUs: z.number().nullable(),
  /** This path's median over the same case's tap-relay and tap medians (KNI's targets are ratios). */
  vsTapRelay: z.number().nullable(),
  vsTap: z.number().nullable(),
});
export type SummaryRow = z.infer<typeof SummaryRowSchema>;

export const VhostDirectResultSchema = z.object({
  ...resultHead('vhost-direct'),
  system: z.object({
    ...systemFields,
    kthreadMode: z.string(),
    where: z.enum(['here', 'appliance-vm']),
    accel: z.enum(['kvm', 'tcg']).nullable(),
  }),
  config: VhostDirectConfigSchema,
  runs: z.array(RunSchema),
  summary: z.array(SummaryRowSchema),
  host: HostLoadSchema.optional(),
});
export type VhostDirectResult = z.infer<typeof VhostDirectResultSchema>;

/** The figure a case is judged by: latency for ping (lower is better), bytes per CPU-second otherwise. */
const caseKey = (r: { workload: Workload; direction: Direction; vnetHdr: boolean }) => `${r.workload} ${r.direction} ${r.vnetHdr}`;

export function summarise(runs: Run[]): SummaryRow[] {
  const rows: SummaryRow[] = groupBy(runs, (r) => `${caseKey(r)} ${r.path}`).map((g) => {
    const r0 = g[0]!;
    const lat = g.map((r) => r.latency?.medianUs).filter((v): v is number => typeof v === 'number');
    return {
      workload: r0.workload,
      direction: r0.direction,
      vnetHdr: r0.vnetHdr,
      path: r0.path,
      runs: g.length,
      gbps: median(g.map((r) => r.gbps)),
      pps: median(g.map((r) => r.pps)),
      lossRatio: median(g.map((r) => r.lossRatio)),
      bytesPerCpuSecond: median(g.map((r) => r.bytesPerCpuSecond)),
      latencyMedianUs: lat.length ? median(lat) : null,
      vsTapRelay: null,
      vsTap: null,
    };
  });
  const figure = (r: SummaryRow) => (r.workload === 'ping' ? r.latencyMedianUs : r.bytesPerCpuSecond);
  for (const r of rows) {
    const other = (p: Path) => rows.find((o) => o.path === p && caseKey(o) === caseKey(r));
    const ratio = (p: Path) => {
      const a = figure(r);
      const o = other(p);
      const b = o ? figure(o) : null;
      return a !== null && b !== null && b > 0 ? a / b : null;
    };
    if (r.path !== 'tap-relay') r.vsTapRelay = ratio('tap-relay');
    if (r.path !== 'tap') r.vsTap = ratio('tap');
  }
  return rows;
}

/** A path's stream bytes per CPU-second with VNET_HDR on over off, per direction. */
export function vnetHdrGain(rows: SummaryRow[], path: Path, direction: Direction): number | null {
  const on = rows.find((r) => r.path === path && r.workload === 'stream' && r.direction === direction && r.vnetHdr);
  const off = rows.find((r) => r.path === path && r.workload === 'stream' && r.direction === direction && !r.vnetHdr);
  return on && off && off.bytesPerCpuSecond > 0 ? on.bytesPerCpuSecond / off.bytesPerCpuSecond : null;
}

const fmtRatio = (v: number | null) => (v === null ? '' : `${v.toFixed(2)}×`);
const fmtBytes = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`);

export function formatTable(result: VhostDirectResult): string {
  const head = ['case', 'path', 'Gbit/s', 'frames/s', 'loss', 'per CPU-s', 'latency', 'vs tap-relay', 'vs tap'];
  const rows = result.summary.map((s) => [
    `${s.workload} ${s.direction} hdr ${s.vnetHdr ? 'on' : 'off'}`,
    s.path,
    s.workload === 'ping' ? '' : s.gbps.toFixed(3),
    s.workload === 'ping' ? '' : fmtPps(s.pps),
    s.workload === 'ping' ? '' : `${(s.lossRatio * 100).toFixed(0)} %`,
    s.workload === 'ping' ? '' : fmtBytes(s.bytesPerCpuSecond),
    s.latencyMedianUs === null ? '' : `${s.latencyMedianUs.toFixed(0)} µs`,
    fmtRatio(s.vsTapRelay),
    fmtRatio(s.vsTap),
  ]);
  const lines = [
    `vhost-direct: ${result.system.kernel}, ${result.system.cpus} CPUs, ${result.config.seconds} s × ${result.config.repeat}, medians`,
    '(ratios: bytes per busy CPU-second, or latency for ping; latency ratios below 1 are better)',
    ...align([head, ...rows]),
  ];
  const gains = PATHS.flatMap((p) =>
    DIRECTIONS.map((d) => {
      const g = vnetHdrGain(result.summary, p, d);
      return g === null ? '' : `${p} ${d}: ${g.toFixed(2)}×`;
    }),
  ).filter(Boolean);
  if (gains.length) lines.push(`VNET_HDR on / off, stream bytes per CPU-second: ${gains.join(', ')}`);
  if (result.host) lines.push(formatHostLoad(result.host));
  return `${lines.join('\n')}\n`;
}
