// What the benchmarks' result documents share: medians over repeats, grouping
// runs into cases, the host's load, and the aligned tables printed for people.
import { z } from 'zod';

export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Items with the same key together, groups in the order their first item came. */
export function groupBy<T>(items: T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return [...groups.values()];
}

/** When run from the host into the appliance VM: the host running it, whose other load is noise. */
/**
 * The fields every benchmark result starts with: which benchmark, the version
 * of its document, when it started and how long it took.
 */
export const resultHead = <B extends string>(benchmark: B) => ({
  benchmark: z.literal(benchmark),
  version: z.literal(1),
  startedAt: z.iso.datetime(),
  seconds: z.number().min(0),
});

/** What every result says of the system it ran on (each adds its own). */
export const systemFields = {
  kernel: z.string(),
  cpus: z.number().int().min(1),
  cpuModel: z.string(),
  node: z.string(),
};

export const HostLoadSchema = z.object({ cpus: z.number().int().min(1), loadAverageBefore: z.number(), loadAverageAfter: z.number() });
export type HostLoad = z.infer<typeof HostLoadSchema>;

export const formatHostLoad = (h: HostLoad) =>
  `host: ${h.cpus} CPUs, load average ${h.loadAverageBefore.toFixed(1)} before, ${h.loadAverageAfter.toFixed(1)} after (other load is noise)`;

export const fmtPps = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0));

/** Rows as lines of columns two spaces apart: the first `leftColumns` flush left, the others flush right. */
export function align(rows: string[][], leftColumns = 2): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i < leftColumns ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd());
}
