// What the benchmarks read of the system they run on: CPU time of tasks and of
// the whole machine, context switches, device and driver counters, and the
// small C helpers they build for themselves.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { projectRoot } from '../qemu/paths.js';

/** CPU time of a task in seconds: /proc/<pid>/schedstat (ns on a CPU), or 0 if it is gone. */
export function taskCpu(path: string): number {
  try {
    return Number(readFileSync(join(path, 'schedstat'), 'utf8').split(' ')[0]) / 1e9;
  } catch {
    return 0;
  }
}

export interface Switches {
  voluntary: number;
  involuntary: number;
}

/** Context switches of a task so far, from /proc/<pid>/status; zero if it is gone. */
export function taskSwitches(path: string): Switches {
  try {
    const status = readFileSync(join(path, 'status'), 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(status)?.[1] ?? 0);
    return { voluntary: field('voluntary_ctxt_switches'), involuntary: field('nonvoluntary_ctxt_switches') };
  } catch {
    return { voluntary: 0, involuntary: 0 };
  }
}

export const addSwitches = (a: Switches, b: Switches): Switches => ({ voluntary: a.voluntary + b.voluntary, involuntary: a.involuntary + b.involuntary });

/** Tasks by name: kernel threads and processes under /proc, threads of this process under /proc/self/task. */
export function tasksNamed(root: string, match: (comm: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(root)) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (match(readFileSync(join(root, e, 'comm'), 'utf8').trim())) out.push(join(root, e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Summed CPU seconds of the tasks named so, now. */
export const cpuOfTasks = (root: string, match: (comm: string) => boolean): number => tasksNamed(root, match).reduce((a, p) => a + taskCpu(p), 0);

export interface MachineCpu {
  user: number;
  system: number;
  softirq: number;
  idle: number;
  total: number;
}

/** The machine's CPU time so far by kind, in clock ticks, from /proc/stat. */
export function procStatCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string;
  // user nice system idle iowait irq softirq steal (guest time is within user)
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const at = (i: number) => v[i] ?? 0;
  const total = v.reduce((a, b) => a + b, 0);
  return { user: at(0) + at(1), system: at(2) + at(5), softirq: at(6), idle: at(3) + at(4), total };
}

/** Clock ticks per second of /proc/stat (USER_HZ, 100 on every Linux that kniv supports). */
export const USER_HZ = 100;

/** Backlog drops and time squeezes summed over CPUs (/proc/net/softnet_stat, hex columns). */
export function softnet(): Record<string, number> {
  let dropped = 0;
  let squeezed = 0;
  for (const l of readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n')) {
    const cols = l.trim().split(/\s+/).map((h) => parseInt(h, 16));
    dropped += cols[1] ?? 0;
    squeezed += cols[2] ?? 0;
  }
  return { 'softnet.dropped': dropped, 'softnet.time_squeeze': squeezed };
}

/** A device's packet counters from sysfs (this namespace), keyed IFNAME.COUNTER. */
export function netdev(ifname: string, names = ['rx_packets', 'rx_dropped', 'tx_packets', 'tx_dropped']): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[`${ifname}.${n}`] = Number(readFileSync(`/sys/class/net/${ifname}/statistics/${n}`, 'utf8'));
  return out;
}

/** A device's counters in network namespace `netns` (`ip -s -j link show`), keyed IFNAME.rx_packets and so on. */
export async function netdevIn(netns: string, ifname: string): Promise<Record<string, number>> {
  const { stdout } = await execa('ip', ['-n', netns, '-s', '-j', 'link', 'show', 'dev', ifname]);
  const [dev] = JSON.parse(stdout) as { stats64?: { rx?: Record<string, number>; tx?: Record<string, number> } }[];
  const s = dev?.stats64;
  if (!s?.rx || !s.tx) throw new Error(`ip -s link show ${ifname} in ${netns} gave no stats64`);
  return {
    [`${ifname}.rx_packets`]: s.rx.packets ?? 0,
    [`${ifname}.rx_bytes`]: s.rx.bytes ?? 0,
    [`${ifname}.rx_dropped`]: s.rx.dropped ?? 0,
    [`${ifname}.tx_packets`]: s.tx.packets ?? 0,
    [`${ifname}.tx_bytes`]: s.tx.bytes ?? 0,
    [`${ifname}.tx_dropped`]: s.tx.dropped ?? 0,
  };
}

/** The KNI driver's own drop counters (ethtool -S) that say why a frame was lost. */
export async function kniEthtool(ifname: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const { stdout } = await execa('ethtool', ['-S', ifname]);
  for (const m of stdout.matchAll(/^\s*((?:rx|tx)_(?:drop_\w+|fifo_corrupt|sock_full|gso_frames|gso_cut|csum_partial)): (\d+)$/gm)) out[`kni.${m[1]}`] = Number(m[2]);
  return out;
}

/** b − a for every counter of b. */
export function counterDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) out[k] = v - (a[k] ?? 0);
  return out;
}

/**
 * build/bench/NAME, compiled with gcc from `sources` (files or folders under
 * bench/; a folder means every file in it) when missing or older than one of
 * them. The host compiles it before booting the appliance VM, which then
 * finds it ready (gcc under TCG takes seconds).
 */
export async function ensureCTool(name: string, sources: string[]): Promise<string> {
  const files = sources
    .map((s) => join(projectRoot, 'bench', s))
    .flatMap((p) => (statSync(p).isDirectory() ? readdirSync(p).sort().map((f) => join(p, f)) : [p]));
  const out = join(projectRoot, 'build', 'bench', name);
  if (existsSync(out) && files.every((f) => statSync(out).mtimeMs >= statSync(f).mtimeMs)) return out;
  mkdirSync(dirname(out), { recursive: true });
  await execa('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, ...files.filter((f) => f.endsWith('.c'))]);
  return out;
}

/** build/bench/vhost-drive, the userspace virtio-net driver, from bench/vhost-drive/. */
export const ensureDriver = (): Promise<string> => ensureCTool('vhost-drive', ['vhost-drive']);
