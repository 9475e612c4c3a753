// The exception-path benchmark's result document: its zod schema (what the
// JSON file holds), the medians over repeats, and the table printed for people.
import { z } from 'zod';
import { align, fmtPps, formatHostLoad, groupBy, HostLoadSchema, median, resultHead, systemFields } from './stats.js';

export const PATHS = ['kni', 'tap'] as const;
export const DIRECTIONS = ['to-linux', 'from-linux'] as const;
export const WORKLOADS = ['udp', 'tcp'] as const;
export const PathSchema = z.enum(PATHS);
/**
 * udp: one UDP socket and the data plane's generator or sink, per frame size.
 * tcp: a bulk TCP stream between a Linux socket and a peer namespace behind
 * the port (a veth), offloads on both paths: KNI's data plane forwards over
 * AF_PACKET with virtio-net headers, TAP's relay (IFF_VNET_HDR, TSO) likewise.
 */
export const WorkloadSchema = z.enum(WORKLOADS);
export type Workload = z.infer<typeof WorkloadSchema>;
/** A TCP run's rates count MTU-sized segments: its payload bytes / this. */
export const TCP_SEGMENT_PAYLOAD = 1448;
/** The frame size a TCP run is filed under: full-MTU frames on the wire. */
export const TCP_FRAME_BYTES = 1514;
export const DirectionSchema = z.enum(DIRECTIONS);
export type BenchPath = z.infer<typeof PathSchema>;
export type Direction = z.infer<typeof DirectionSchema>;

/** Ethernet + IPv4 + UDP headers: a frame of N bytes carries N - 42 bytes of UDP payload. */
export const FRAME_OVERHEAD = 42;
/** Frame sizes, in bytes as the data plane and the kernel see them (no FCS). */
export const FrameBytesSchema = z.number().int().min(60).max(1514);

const Count = z.number().int().min(0);
const Rate = z.number().min(0);

export const RateSchema = z.object({
  packets: Count,
  pps: Rate,
  /** Frame bytes (headers included, no FCS) times 8 per second, in Gbit/s; for tcp, the stream's payload. */
  gbps: Rate,
});

export const CpuSchema = z.object({
  /** Share of all the VM's CPU time, 0..1, from /proc/stat. */
  user: Rate,
  system: Rate,
  softirq: Rate,
  idle: Rate,
  /** CPU-seconds per second (1 = one CPU kept busy) of the threads doing the work. */
  threads: z.object({
    helper: Rate,
    forwarder: Rate,
    kthread: Rate,
    ksoftirqd: Rate,
  }),
  /**
   * Context switches per second of the same threads, voluntary (they slept)
   * and involuntary (preempted). Fields added to the document after its first
   * version are optional, so that earlier results still read and pool.
   */
  switches: z
    .object({
      helper: z.object({ voluntary: Rate, involuntary: Rate }),
      forwarder: z.object({ voluntary: Rate, involuntary: Rate }),
      kthread: z.object({ voluntary: Rate, involuntary: Rate }),
    })
    .optional(),
});

export const RunSchema = z.object({
  path: PathSchema,
  /** Added after the first version: runs without it are udp. */
  workload: WorkloadSchema.default('udp'),
  direction: DirectionSchema,
  frameBytes: FrameBytesSchema,
  repeat: z.number().int().min(1),
  /** Length of the measured window, warm-up excluded. */
  seconds: z.number().positive(),
  /**
   * to-linux: frames the data plane queued on rx_q (KNI) or wrote into the
   * TAP device; from-linux: datagrams the sending socket handed to the kernel.
   */
  sent: RateSchema,
  /**
   * to-linux: datagrams the receiving socket got; from-linux: frames that
   * reached the data plane's sink. This is the figure the path achieved.
   */
  received: RateSchema,
  /** 1 - received / sent rates: what the path dropped (queues make it approximate). */
  lossRatio: z.number(),
  /** Busy CPU time of the whole VM (all CPUs, from /proc/stat) per received packet, in µs. */
  cpuUsPerPacket: z.number().min(0).optional(),
  /** Deltas over the window of the counters that say where frames went. */
  counters: z.record(z.string(), z.number()),
  cpu: CpuSchema,
  /**
   * In the appliance VM: what the host gave the VM during the window, read
   * from qemu's threads. On a shared host this varies from run to run; the
   * packets per host CPU-second it yields (the cost of a packet through the
   * emulated path) varies much less than the rates.
   */
  vm: z
    .object({
      hostSeconds: z.number().positive(),
      hostCpuSeconds: z.number().min(0),
      /** Time qemu's threads were ready to run but waited for a host CPU: other load on the host. */
      hostWaitSeconds: z.number().min(0).optional(),
      /** Of hostCpuSeconds, qemu's main thread: its main loop, which under TCG emulates the guest's timers and devices. */
      hostMainThreadSeconds: z.number().min(0).optional(),
    })
    .optional(),
  /** With --profile: where the CPUs spent the window (perf cpu-clock samples, self time). */
  profile: z.array(z.object({ percent: z.number(), comm: z.string(), symbol: z.string(), kernel: z.boolean() })).optional(),
});
export type Run = z.infer<typeof RunSchema>;

export const SummarySchema = z.object({
  path: PathSchema,
  workload: WorkloadSchema.default('udp'),
  direction: DirectionSchema,
  frameBytes: FrameBytesSchema,
  runs: z.number().int().min(1),
  /** Medians over the repeats. */
  sentPps: Rate,
  receivedPps: Rate,
  receivedGbps: Rate,
  lossRatio: z.number(),
  cpuUsPerPacket: z.number().nullish(),
  /** Host CPU cores the VM got during the window, and received packets per host CPU-second (appliance VM only; added after the first version, hence nullish). */
  vmCores: z.number().nullish(),
  /** Host CPU cores' worth of time the VM's threads waited to run (other load on the host). */
  vmWaitCores: z.number().nullish(),
  receivedPerHostCpuSecond: z.number().nullish(),
});
export type Summary = z.infer<typeof SummarySchema>;

export const ExceptionPathConfigSchema = z.object({
  seconds: z.number().int().min(1).max(600).default(3),
  warmupSeconds: z.number().int().min(0).max(60).default(1),
  repeat: z.number().int().min(1).max(50).default(3),
  frameBytes: z.array(FrameBytesSchema).min(1).default([64, 1500]),
  paths: z.array(PathSchema).min(1).default([...PATHS]),
  directions: z.array(DirectionSchema).min(1).default([...DIRECTIONS]),
  /** Added after the first version (which measured udp only). */
  workloads: z.array(WorkloadSchema).min(1).default([...WORKLOADS]),
  /** The data plane's and the relay's sleep when idle (DataPlane idleUs). */
  idleUs: z.number().int().min(1).max(100_000).default(200),
  /** Sample every CPU with perf during each window (costs CPU: figures drop). */
  profile: z.boolean().default(false),
});
export type ExceptionPathConfig = z.output<typeof ExceptionPathConfigSchema>;

export const ExceptionPathResultSchema = z.object({
  ...resultHead('exception-path'),
  system: z.object({
    ...systemFields,
    kthreadMode: z.enum(['single', 'multiple']),
    pollIntervalUs: z.number().int().nullable(),
    /** Where it ran: in the appliance VM (and its accelerator), or on this system as it is. */
    where: z.enum(['appliance-vm', 'here']),
    accel: z.enum(['tcg', 'kvm']).nullable(),
  }),
  /** In the appliance VM: the machine running it, whose other load shows up as noise. */
  host: HostLoadSchema.optional(),
  config: ExceptionPathConfigSchema,
  runs: z.array(RunSchema),
  summary: z.array(SummarySchema),
});
export type ExceptionPathResult = z.infer<typeof ExceptionPathResultSchema>;

/** One summary row per path, direction and frame size that has runs, medians over its repeats. */
export function summarise(runs: Run[]): Summary[] {
  return groupBy(runs, (r) => `${r.workload}/${r.direction}/${r.frameBytes}/${r.path}`).map((g) => {
    const first = g[0] as Run;
    const vm = g.flatMap((r) => (r.vm && r.vm.hostCpuSeconds > 0 ? [{ run: r, ...r.vm }] : []));
    const cpu = g.flatMap((r) => (r.cpuUsPerPacket === undefined ? [] : [r.cpuUsPerPacket]));
    return {
      path: first.path,
      workload: first.workload,
      direction: first.direction,
      frameBytes: first.frameBytes,
      runs: g.length,
      sentPps: median(g.map((r) => r.sent.pps)),
      receivedPps: median(g.map((r) => r.received.pps)),
      receivedGbps: median(g.map((r) => r.received.gbps)),
      lossRatio: median(g.map((r) => r.lossRatio)),
      cpuUsPerPacket: cpu.length === g.length ? median(cpu) : null,
      vmCores: vm.length === g.length ? median(vm.map((v) => v.hostCpuSeconds / v.hostSeconds)) : null,
      vmWaitCores: vm.length === g.length && vm.every((v) => v.hostWaitSeconds !== undefined) ? median(vm.map((v) => (v.hostWaitSeconds ?? 0) / v.hostSeconds)) : null,
      receivedPerHostCpuSecond: vm.length === g.length ? median(vm.map((v) => (v.run.received.pps * v.hostSeconds) / v.hostCpuSeconds)) : null,
    };
  });
}

const fmtGbps = (n: number) => (n >= 1 ? n.toFixed(2) : n >= 0.01 ? n.toFixed(3) : n.toFixed(4));
const fmtLoss = (n: number) => `${(Math.max(0, n) * 100).toFixed(n > 0 && n < 0.01 ? 2 : 0)}%`;

/**
 * KNI against TAP for one direction and size: the median over repeats of
 * KNI's figure divided by TAP's in the same repeat. The two runs of a repeat
 * follow each other, so slow changes in what the host gives the VM cancel out.
 */
export function pairedRatio(
  runs: Run[],
  direction: Direction,
  frameBytes: number,
  figure: (r: Run) => number | undefined,
  workload: Workload = 'udp',
): number | undefined {
  const ratios: number[] = [];
  const cases = runs.filter((r) => r.direction === direction && r.frameBytes === frameBytes && r.workload === workload);
  for (const k of cases.filter((r) => r.path === 'kni')) {
    const t = cases.find((r) => r.path === 'tap' && r.repeat === k.repeat);
    const a = figure(k);
    const b = t && figure(t);
    if (a !== undefined && b !== undefined && b > 0) ratios.push(a / b);
  }
  return ratios.length > 0 ? median(ratios) : undefined;
}

/** Received packets per host CPU-second of the VM, when the host sampled it. */
export const perHostCpuSecond = (r: Run): number | undefined =>
  r.vm && r.vm.hostCpuSeconds > 0 ? (r.received.pps * r.vm.hostSeconds) / r.vm.hostCpuSeconds : undefined;

const ratio = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(2)}x`);

/**
 * A table with a row per direction and frame size: for each path the cells
 * `cells` gives (headed by `columns`), then KNI/TAP of `figure` when both ran.
 */
/** The workloads and frame sizes a config measures, in its order. */
export function casesOf(c: ExceptionPathConfig): { workload: Workload; frameBytes: number }[] {
  return c.workloads.flatMap((w): { workload: Workload; frameBytes: number }[] =>
    w === 'tcp' ? [{ workload: w, frameBytes: TCP_FRAME_BYTES }] : c.frameBytes.map((f) => ({ workload: w, frameBytes: f })),
  );
}

function caseTable(result: ExceptionPathResult, columns: string[], cells: (x: Summary | undefined) => string[], figure: (r: Run) => number | undefined): string[] {
  const c = result.config;
  const header = ['direction', 'case', ...c.paths.flatMap((p) => columns.map((col) => `${p.toUpperCase()} ${col}`))];
  if (c.paths.length === 2) header.push('KNI/TAP');
  const rows: string[][] = [header];
  for (const d of c.directions) {
    for (const { workload, frameBytes: f } of casesOf(c)) {
      const row = [d, workload === 'tcp' ? 'TCP stream' : `${f} B`];
      const byPath = new Map(result.summary.filter((x) => x.workload === workload && x.direction === d && x.frameBytes === f).map((x) => [x.path, x]));
      for (const p of c.paths) row.push(...cells(byPath.get(p)));
      if (c.paths.length === 2) row.push(ratio(pairedRatio(result.runs, d, f, figure, workload)));
      rows.push(row);
    }
  }
  return align(rows);
}

/** The human summary: one row per direction and size, KNI and TAP side by side. */
export function formatTable(result: ExceptionPathResult): string {
  const s = result.system;
  const c = result.config;
  const where = s.where === 'appliance-vm' ? `appliance VM (${s.accel === 'tcg' ? 'TCG: emulated CPU, compare side by side only' : s.accel ?? '?'})` : 'this system';
  const lines = [
    `exception path: data plane <-> Linux UDP socket, and a Linux TCP stream through the port, KNI vs TAP`,
    `kernel ${s.kernel}, ${s.cpus} CPUs, ${where}, kthread_mode=${s.kthreadMode}, poll_interval_us=${s.pollIntervalUs ?? '?'}, idleUs=${c.idleUs}`,
    `${c.seconds} s per run after ${c.warmupSeconds} s warm-up, median of ${c.repeat}; rates are what arrived; KNI/TAP is the median of the ratios within each repeat`,
    ...(c.profile ? ['profiled with perf: the rates are lower than without --profile'] : []),
    '',
  ];
  lines.push(
    ...caseTable(
      result,
      ['pps', 'Gbit/s', 'loss'],
      (x) => (x ? [fmtPps(x.receivedPps), fmtGbps(x.receivedGbps), fmtLoss(x.lossRatio)] : ['-', '-', '-']),
      (r) => r.received.pps,
    ),
  );
  if (c.workloads.includes('tcp')) lines.push(`TCP stream: Gbit/s of payload; pps counts it in ${TCP_SEGMENT_PAYLOAD}-byte segments`);
  if (result.summary.some((x) => x.cpuUsPerPacket != null)) {
    lines.push(
      '',
      'busy CPU time of the whole VM per packet received, in µs (KNI/TAP below 1 is KNI cheaper)',
      ...caseTable(result, ['µs/pkt'], (x) => [x?.cpuUsPerPacket != null ? x.cpuUsPerPacket.toFixed(2) : '-'], (r) => r.cpuUsPerPacket),
    );
  }
  if (result.summary.every((x) => x.receivedPerHostCpuSecond != null)) {
    lines.push(
      '',
      'per host CPU-second of the VM (the cost of a packet through the emulated path; steadier than pps on a shared host);',
      'cores: host CPUs the VM used; wait: host CPUs\' worth of time it was ready to run but another process had the CPU',
      ...caseTable(
        result,
        ['pkt/CPU-s', 'cores', 'wait'],
        (x) => [
          x?.receivedPerHostCpuSecond != null ? fmtPps(x.receivedPerHostCpuSecond) : '-',
          x?.vmCores != null ? x.vmCores.toFixed(2) : '-',
          x?.vmWaitCores != null ? x.vmWaitCores.toFixed(2) : '-',
        ],
        perHostCpuSecond,
      ),
    );
  }
  const h = result.host;
  lines.push('');
  if (h) lines.push(formatHostLoad(h));
  lines.push(`whole run: ${result.seconds.toFixed(0)} s`);
  return `${lines.join('\n')}\n`;
}

// Pooling runs by what the host gave the VM ---------------------------------------

/**
 * How much of its vCPUs' worth of host CPU the VM got during both runs of a
 * KNI/TAP pair: all of it (at least 80%), about half (40–60%), or something
 * else (the two runs got different shares, or the host was busier still).
 */
export type HostShare = 'full' | 'half' | 'mixed';

function hostShare(k: Run, t: Run, vcpus: number): HostShare {
  const share = (r: Run) => (r.vm ? r.vm.hostCpuSeconds / r.vm.hostSeconds / vcpus : 0);
  const lo = Math.min(share(k), share(t));
  const hi = Math.max(share(k), share(t));
  if (lo >= 0.8) return 'full';
  if (lo >= 0.4 && hi <= 0.6) return 'half';
  return 'mixed';
}

export interface PooledRow {
  kernel: string;
  vcpus: number;
  direction: Direction;
  frameBytes: number;
  share: HostShare;
  pairs: number;
  kniPps: number;
  tapPps: number;
  /** Median, lowest and highest of the pairs' KNI/TAP ratios. */
  ratio: number;
  min: number;
  max: number;
}

/**
 * KNI/TAP pairs (the two runs of one repeat) from several results, grouped by
 * kernel, vCPUs, case and the host share both runs got: on a shared host this
 * separates "KNI against TAP with the CPUs the VM asked for" from "with half
 * of them", which single runs mix. Only runs with the host's figures count,
 * and not profiled ones (perf's cost lowers the rates, and not evenly).
 */
export function poolPairs(results: ExceptionPathResult[]): PooledRow[] {
  const groups = new Map<string, { row: Omit<PooledRow, 'pairs' | 'kniPps' | 'tapPps' | 'ratio' | 'min' | 'max'>; pairs: [Run, Run][] }>();
  for (const res of results.filter((r) => !r.config.profile)) {
    for (const k of res.runs.filter((r) => r.path === 'kni' && r.workload === 'udp' && r.vm)) {
      const t = res.runs.find((r) => r.path === 'tap' && r.workload === 'udp' && r.vm && r.repeat === k.repeat && r.direction === k.direction && r.frameBytes === k.frameBytes);
      if (!t || t.received.pps <= 0) continue;
      const row = { kernel: res.system.kernel, vcpus: res.system.cpus, direction: k.direction, frameBytes: k.frameBytes, share: hostShare(k, t, res.system.cpus) };
      const key = JSON.stringify(row);
      const g = groups.get(key) ?? { row, pairs: [] };
      g.pairs.push([k, t]);
      groups.set(key, g);
    }
  }
  const order = (r: PooledRow) => [r.kernel, r.vcpus, DIRECTIONS.indexOf(r.direction), r.frameBytes, ['full', 'half', 'mixed'].indexOf(r.share)];
  return [...groups.values()]
    .map(({ row, pairs }) => {
      const ratios = pairs.map(([k, t]) => k.received.pps / t.received.pps);
      return {
        ...row,
        pairs: pairs.length,
        kniPps: median(pairs.map(([k]) => k.received.pps)),
        tapPps: median(pairs.map(([, t]) => t.received.pps)),
        ratio: median(ratios),
        min: Math.min(...ratios),
        max: Math.max(...ratios),
      };
    })
    .sort((a, b) => {
      const x = order(a);
      const y = order(b);
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] as number) < (y[i] as number) ? -1 : 1;
      return 0;
    });
}

/** The pooled table; pairs whose two runs got different shares are only counted. */
export function formatPool(rows: PooledRow[]): string {
  const share = { full: '>= 80%', half: '40-60%', mixed: 'mixed' } as const;
  const table = [['kernel', 'vCPUs', 'direction', 'frame', 'host share', 'pairs', 'KNI pps', 'TAP pps', 'KNI/TAP', 'range']];
  const mixed = rows.filter((r) => r.share === 'mixed').reduce((n, r) => n + r.pairs, 0);
  for (const r of rows.filter((x) => x.share !== 'mixed')) {
    table.push([r.kernel, String(r.vcpus), r.direction, `${r.frameBytes} B`, share[r.share], String(r.pairs), fmtPps(r.kniPps), fmtPps(r.tapPps), ratio(r.ratio), `${r.min.toFixed(2)}-${r.max.toFixed(2)}`]);
  }
  const lines = align(table, 5);
  const left = mixed > 0 ? `\n${mixed} pairs whose runs got different shares (or less than 40%) are left out.\n` : '';
  return `KNI/TAP pairs by the share of its vCPUs the host gave the VM during both runs (median of the pairs)\n\n${lines.join('\n')}\n${left}`;
}
