// The exception-path benchmark's result document: its zod schema (what the
// JSON file holds), the medians over repeats, and the table printed for people.
import { z } from 'zod';

export const PATHS = ['kni', 'tap'] as const;
export const DIRECTIONS = ['to-linux', 'from-linux'] as const;
export const PathSchema = z.enum(PATHS);
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
  /** Frame bytes (headers included, no FCS) times 8 per second, in Gbit/s. */
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
});

export const RunSchema = z.object({
  path: PathSchema,
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
  /** Deltas over the window of the counters that say where frames went. */
  counters: z.record(z.string(), z.number()),
  cpu: CpuSchema,
  /** With --profile: where the CPUs spent the window (perf cpu-clock samples, self time). */
  profile: z.array(z.object({ percent: z.number(), comm: z.string(), symbol: z.string(), kernel: z.boolean() })).optional(),
});
export type Run = z.infer<typeof RunSchema>;

export const SummarySchema = z.object({
  path: PathSchema,
  direction: DirectionSchema,
  frameBytes: FrameBytesSchema,
  runs: z.number().int().min(1),
  /** Medians over the repeats. */
  sentPps: Rate,
  receivedPps: Rate,
  receivedGbps: Rate,
  lossRatio: z.number(),
});
export type Summary = z.infer<typeof SummarySchema>;

export const ExceptionPathConfigSchema = z.object({
  seconds: z.number().int().min(1).max(600).default(3),
  warmupSeconds: z.number().int().min(0).max(60).default(1),
  repeat: z.number().int().min(1).max(50).default(3),
  frameBytes: z.array(FrameBytesSchema).min(1).default([64, 1500]),
  paths: z.array(PathSchema).min(1).default([...PATHS]),
  directions: z.array(DirectionSchema).min(1).default([...DIRECTIONS]),
  /** The data plane's and the relay's sleep when idle (DataPlane idleUs). */
  idleUs: z.number().int().min(1).max(100_000).default(200),
  /** Sample every CPU with perf during each window (costs CPU: figures drop). */
  profile: z.boolean().default(false),
});
export type ExceptionPathConfig = z.output<typeof ExceptionPathConfigSchema>;

export const ExceptionPathResultSchema = z.object({
  benchmark: z.literal('exception-path'),
  version: z.literal(1),
  startedAt: z.iso.datetime(),
  seconds: z.number().min(0),
  system: z.object({
    kernel: z.string(),
    cpus: z.number().int().min(1),
    cpuModel: z.string(),
    node: z.string(),
    kthreadMode: z.enum(['single', 'multiple']),
    pollIntervalUs: z.number().int().nullable(),
    /** Where it ran: in the appliance VM (and its accelerator), or on this system as it is. */
    where: z.enum(['appliance-vm', 'here']),
    accel: z.enum(['tcg', 'kvm']).nullable(),
  }),
  /** In the appliance VM: the machine running it, whose other load shows up as noise. */
  host: z.object({ cpus: z.number().int().min(1), loadAverageBefore: z.number(), loadAverageAfter: z.number() }).optional(),
  config: ExceptionPathConfigSchema,
  runs: z.array(RunSchema),
  summary: z.array(SummarySchema),
});
export type ExceptionPathResult = z.infer<typeof ExceptionPathResultSchema>;

export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** One summary row per path, direction and frame size that has runs, medians over its repeats. */
export function summarise(runs: Run[]): Summary[] {
  const groups = new Map<string, Run[]>();
  for (const r of runs) {
    const key = `${r.direction}/${r.frameBytes}/${r.path}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((g) => {
    const first = g[0] as Run;
    return {
      path: first.path,
      direction: first.direction,
      frameBytes: first.frameBytes,
      runs: g.length,
      sentPps: median(g.map((r) => r.sent.pps)),
      receivedPps: median(g.map((r) => r.received.pps)),
      receivedGbps: median(g.map((r) => r.received.gbps)),
      lossRatio: median(g.map((r) => r.lossRatio)),
    };
  });
}

const fmtPps = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0));
const fmtGbps = (n: number) => (n >= 1 ? n.toFixed(2) : n >= 0.01 ? n.toFixed(3) : n.toFixed(4));
const fmtLoss = (n: number) => `${(Math.max(0, n) * 100).toFixed(n > 0 && n < 0.01 ? 2 : 0)}%`;

/** The human summary: one row per direction and size, KNI and TAP side by side. */
export function formatTable(result: ExceptionPathResult): string {
  const s = result.system;
  const c = result.config;
  const where = s.where === 'appliance-vm' ? `appliance VM (${s.accel === 'tcg' ? 'TCG: emulated CPU, compare side by side only' : s.accel ?? '?'})` : 'this system';
  const lines = [
    `exception path: data plane <-> Linux UDP socket, KNI vs TAP`,
    `kernel ${s.kernel}, ${s.cpus} CPUs, ${where}, kthread_mode=${s.kthreadMode}, poll_interval_us=${s.pollIntervalUs ?? '?'}, idleUs=${c.idleUs}`,
    `${c.seconds} s per run after ${c.warmupSeconds} s warm-up, median of ${c.repeat}; rates are what arrived (sent / arrived: loss)`,
    ...(c.profile ? ['profiled with perf: the rates are lower than without --profile'] : []),
    '',
  ];
  const header = ['direction', 'frame', ...c.paths.flatMap((p) => [`${p.toUpperCase()} pps`, `${p.toUpperCase()} Gbit/s`, `${p.toUpperCase()} loss`])];
  if (c.paths.length === 2) header.push('KNI/TAP');
  const rows: string[][] = [header];
  for (const d of c.directions) {
    for (const f of c.frameBytes) {
      const row = [d, `${f} B`];
      const byPath = new Map(result.summary.filter((x) => x.direction === d && x.frameBytes === f).map((x) => [x.path, x]));
      for (const p of c.paths) {
        const x = byPath.get(p);
        row.push(x ? fmtPps(x.receivedPps) : '-', x ? fmtGbps(x.receivedGbps) : '-', x ? fmtLoss(x.lossRatio) : '-');
      }
      if (c.paths.length === 2) {
        const k = byPath.get('kni');
        const t = byPath.get('tap');
        row.push(k && t && t.receivedPps > 0 ? `${(k.receivedPps / t.receivedPps).toFixed(2)}x` : '-');
      }
      rows.push(row);
    }
  }
  const widths = (header as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const r of rows) lines.push(r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join('  '));
  const h = result.host;
  lines.push('');
  if (h) lines.push(`host: ${h.cpus} CPUs, load average ${h.loadAverageBefore.toFixed(1)} before, ${h.loadAverageAfter.toFixed(1)} after (other load is noise)`);
  lines.push(`whole run: ${result.seconds.toFixed(0)} s`);
  return `${lines.join('\n')}\n`;
}
