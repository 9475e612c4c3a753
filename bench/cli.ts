// `kniv bench exception-path`: runs the exception-path benchmark inside the
// appliance VM (or, with --here, on this system), writes the JSON result and
// prints the table.
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg, release } from 'node:os';
import { Writable } from 'node:stream';
import { helpText, intOption, parse, UsageError, type OptionsTable } from '../bin/cli.js';
import { kvmUsable } from '../qemu/accel.js';
import { hostLoad, refuseVmOptions, runHereInAppliance, vmChoice, writeResult } from './cli-common.js';
import { ensureHelper, runExceptionPath } from './exception-path.js';
import {
  casesOf,
  DirectionSchema,
  ExceptionPathConfigSchema,
  ExceptionPathResultSchema,
  formatPool,
  formatTable,
  FrameBytesSchema,
  PathSchema,
  poolPairs,
  summarise,
  WorkloadSchema,
  type ExceptionPathConfig,
  type ExceptionPathResult,
} from './result.js';

/** The line the run inside the VM prints as a window starts or ends. */
const MARK = 'kniv-bench-window';
const MARK_LINE = new RegExp(`^${MARK} (start|end) (\\d+)$`);

const table: OptionsTable = {
  kernel: { type: 'string', value: '6.1|6.12', help: 'appliance kernel (default 6.1)' },
  seconds: { type: 'string', value: 'N', help: 'measured seconds per run (default 3)' },
  warmup: { type: 'string', value: 'N', help: 'seconds of traffic before each measurement, not counted (default 1)' },
  repeat: { type: 'string', value: 'N', help: 'runs of each case; the table shows medians (default 3)' },
  size: { type: 'string', multiple: true, value: 'BYTES', help: 'Ethernet frame size without FCS, 60..1514 (default 64 and 1500)' },
  path: { type: 'string', multiple: true, value: 'kni|tap', help: 'paths to measure (default both)' },
  direction: { type: 'string', multiple: true, value: 'to-linux|from-linux', help: 'directions to measure (default both)' },
  workload: { type: 'string', multiple: true, value: 'udp|tcp', help: 'udp: a UDP socket per frame size; tcp: a TCP stream through the port (default both)' },
  'idle-us': { type: 'string', value: 'N', help: 'data plane and relay sleep when idle, in µs (default 200)' },
  'kni-param': { type: 'string', multiple: true, value: 'NAME=VALUE', help: 'kni.ko parameter at VM boot, e.g. kthread_mode=multiple' },
  'vm-cpus': { type: 'string', value: 'N', help: 'vCPUs of the appliance VM (default 2)' },
  profile: { type: 'boolean', help: 'sample every CPU with perf during each run and keep the top symbols (lowers the rates)' },
  json: { type: 'string', value: 'FILE', help: 'where to write the result (default bench/results/exception-path-<kernel>-<time>.json); - prints only the JSON, on stdout' },
  here: { type: 'boolean', help: 'run on this system (root, kni.ko loaded) instead of in the appliance VM' },
  'mark-windows': { type: 'boolean', help: `with --here: a line '${MARK} start|end N' on stderr as run N's window starts and ends (the VM runner reads them)` },
};

const USAGE = 'kniv bench exception-path [options]';
const SUMMARY = `Measures packets per second and Gbit/s between the data plane and a Linux UDP
socket, and a Linux TCP stream to a peer behind the port (offloads on),
through a KNI interface and through a TAP device, in both directions,
side by side in one run inside the appliance VM, and what the host gave the VM
during each run. Under TCG the figures are emulation speed: compare KNI with
TAP, not with real hardware. docs/bench.md describes the method.`;

function many<T>(name: string, values: unknown, parseOne: (v: string) => T): T[] | undefined {
  if (values === undefined) return undefined;
  return (values as string[]).map((v) => {
    try {
      return parseOne(v);
    } catch {
      throw new UsageError(`--${name}: ${JSON.stringify(v)} is not one of the accepted values (see --help)`);
    }
  });
}

/** The benchmark's config from the command line; unset options keep their defaults. */
function configFrom(values: Record<string, unknown>): Partial<ExceptionPathConfig> {
  const c: Partial<ExceptionPathConfig> = {};
  const seconds = intOption('seconds', values.seconds, 1, 600);
  const warmup = intOption('warmup', values.warmup, 0, 60);
  const repeat = intOption('repeat', values.repeat, 1, 50);
  const idleUs = intOption('idle-us', values['idle-us'], 1, 100_000);
  const sizes = many('size', values.size, (v) => FrameBytesSchema.parse(Number(v)));
  const paths = many('path', values.path, (v) => PathSchema.parse(v));
  const directions = many('direction', values.direction, (v) => DirectionSchema.parse(v));
  const workloads = many('workload', values.workload, (v) => WorkloadSchema.parse(v));
  if (seconds !== undefined) c.seconds = seconds;
  if (warmup !== undefined) c.warmupSeconds = warmup;
  if (repeat !== undefined) c.repeat = repeat;
  if (idleUs !== undefined) c.idleUs = idleUs;
  if (sizes) c.frameBytes = [...new Set(sizes)];
  if (paths) c.paths = [...new Set(paths)];
  if (directions) c.directions = [...new Set(directions)];
  if (workloads) c.workloads = [...new Set(workloads)];
  if (values.profile) c.profile = true;
  return c;
}

/** The same options, as arguments for the run inside the VM. */
function configArgs(c: Partial<ExceptionPathConfig>): string[] {
  const a: string[] = [];
  if (c.seconds !== undefined) a.push('--seconds', String(c.seconds));
  if (c.warmupSeconds !== undefined) a.push('--warmup', String(c.warmupSeconds));
  if (c.repeat !== undefined) a.push('--repeat', String(c.repeat));
  if (c.idleUs !== undefined) a.push('--idle-us', String(c.idleUs));
  for (const s of c.frameBytes ?? []) a.push('--size', String(s));
  for (const p of c.paths ?? []) a.push('--path', p);
  for (const d of c.directions ?? []) a.push('--direction', d);
  for (const w of c.workloads ?? []) a.push('--workload', w);
  if (c.profile) a.push('--profile');
  return a;
}

/**
 * Time all of a process's threads spent on a CPU and waiting on a run queue
 * for one, and the CPU time of its main thread alone, in seconds, from their
 * schedstat. qemu's main thread runs its main loop (timers, devices); under
 * TCG the vCPUs are other threads.
 */
function processCpu(pid: number): { cpu: number; wait: number; main: number } {
  let run = 0;
  let wait = 0;
  let main = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ');
      run += Number(f[0]);
      wait += Number(f[1]);
      if (Number(t) === pid) main = Number(f[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return { cpu: run / 1e9, wait: wait / 1e9, main: main / 1e9 };
}

/** The qemu this process started (setpriv execs it, so it is a direct child). */
function qemuChild(): number | undefined {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && comm.startsWith('qemu-system')) return Number(e);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

interface HostSample {
  at: number;
  cpu: number;
  wait: number;
  main: number;
}

/**
 * The VM's stderr on its way to ours: progress lines pass through, window
 * marks are taken out and answered with a sample of qemu's CPU time, so that
 * each run learns what the host gave the VM while it was measured.
 */
class WindowSampler extends Writable {
  readonly samples = new Map<string, HostSample>();
  private partial = '';
  private pid: number | undefined;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = MARK_LINE.exec(line);
      if (!m) {
        process.stderr.write(`${line}\n`);
        continue;
      }
      this.pid ??= qemuChild();
      if (this.pid !== undefined) this.samples.set(`${m[1]} ${m[2]}`, { at: Number(process.hrtime.bigint()) / 1e9, ...processCpu(this.pid) });
    }
    cb();
  }

  override _final(cb: () => void): void {
    if (this.partial) process.stderr.write(this.partial);
    cb();
  }

  /** Host seconds, and qemu's CPU and run-queue seconds, of run i's window, if both marks arrived. */
  window(i: number): NonNullable<ExceptionPathResult['runs'][number]['vm']> | undefined {
    const a = this.samples.get(`start ${i}`);
    const b = this.samples.get(`end ${i}`);
    if (!a || !b || b.at <= a.at) return undefined;
    return { hostSeconds: b.at - a.at, hostCpuSeconds: b.cpu - a.cpu, hostWaitSeconds: b.wait - a.wait, hostMainThreadSeconds: b.main - a.main };
  }
}

function output(result: ExceptionPathResult, json: string | undefined, kernelLabel: string, extra: string): number {
  writeResult(result, json, 'exception-path', kernelLabel, formatTable(result), extra);
  const empty = result.runs.filter((r) => r.received.packets === 0 || r.sent.packets === 0);
  for (const r of empty) process.stderr.write(`kniv bench: ${r.path} ${r.workload} ${r.direction} ${r.frameBytes} B (run ${r.repeat}) moved no packets\n`);
  return empty.length === 0 ? 0 : 1;
}

async function exceptionPath(argv: string[]): Promise<number> {
  const { values } = parse(argv, table, false);
  if (values.help) {
    process.stdout.write(helpText(USAGE, SUMMARY, table));
    return 0;
  }
  const config = configFrom(values);
  const full = ExceptionPathConfigSchema.parse(config);
  const json = values.json as string | undefined;

  if (values.here) {
    refuseVmOptions(values);
    const mark = values['mark-windows'] ? (edge: string, i: number) => process.stderr.write(`${MARK} ${edge} ${i}\n`) : undefined;
    const result = await runExceptionPath(config, (l) => process.stderr.write(`${l}\n`), mark);
    return output(result, json, release(), '');
  }

  if (values['mark-windows']) throw new UsageError('--mark-windows goes with --here');
  const { kernel, vmCpus } = vmChoice(values);
  const cases = full.paths.length * full.directions.length * casesOf(full).length * full.repeat;
  // Only a guard against a hung run: a busy shared host can make a run several
  // times slower, and perf's report alone takes a minute or more under TCG.
  const perCase = full.seconds + full.warmupSeconds + 30 + (full.profile ? 240 : 0);
  const timeoutMs = (cases * perCase + 300) * 1000;
  const accel = kvmUsable() ? 'kvm' : 'tcg';
  process.stderr.write(`kniv bench: ${cases} runs in the appliance VM (kernel ${kernel}, ${accel.toUpperCase()})...\n`);
  await ensureHelper();
  const started = Date.now();
  const loadBefore = loadavg()[0] ?? 0;
  const sampler = new WindowSampler();
  const vm = await runHereInAppliance(
    'exception-path',
    ['--mark-windows', ...configArgs(config)],
    { kernel: kernel, kniParams: (values['kni-param'] as string[] | undefined) ?? [], cpus: vmCpus, timeoutMs },
    sampler,
  );
  // Status 1 inside means a path moved nothing: the result is still written.
  if ('status' in vm) return vm.status;
  const parsed = ExceptionPathResultSchema.parse(vm.json);
  const runs = parsed.runs.map((r, i) => {
    const window = sampler.window(i);
    return window ? { ...r, vm: window } : r;
  });
  const result: ExceptionPathResult = {
    ...parsed,
    runs,
    summary: summarise(runs),
    system: { ...parsed.system, where: 'appliance-vm', accel },
    host: hostLoad(loadBefore),
  };
  const total = (Date.now() - started) / 1000;
  return output(result, json, kernel, `whole command, VM boot included: ${total.toFixed(0)} s\n`);
}

/** `kniv bench pool FILE...`: KNI/TAP pairs from several results, grouped by what the host gave the VM. */
function pool(argv: string[]): number {
  const { values, positionals } = parse(argv, {});
  if (values.help || positionals.length === 0) {
    process.stdout.write(
      helpText(
        'kniv bench pool FILE...',
        `Reads exception-path results and prints the KNI/TAP pairs (the two runs of one
repeat) grouped by kernel, vCPUs, case and the share of its vCPUs the host gave
the VM during both runs: on a shared host, runs that got all their CPUs are
comparable with each other, not with runs that got half.`,
        {},
      ),
    );
    return values.help ? 0 : 2;
  }
  const results = positionals.map((f) => {
    const parsed = ExceptionPathResultSchema.safeParse(JSON.parse(readFileSync(f, 'utf8')));
    if (!parsed.success) throw new UsageError(`${f} is not an exception-path result: ${parsed.error.issues[0]?.message ?? ''}`);
    return parsed.data;
  });
  process.stdout.write(formatPool(poolPairs(results)));
  return 0;
}

export async function bench(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'exception-path') return exceptionPath(rest);
  if (name === 'pool') return pool(rest);
  if (name === 'vhost') return (await import('./vhost-cli.js')).benchVhost(rest);
  if (name === 'vhost-direct') return (await import('./vhost-direct-cli.js')).benchVhostDirect(rest);
  if (name === '--help' || name === '-h') {
    process.stdout.write(
      'usage: kniv bench <benchmark> [options]\n\n' +
        '  exception-path  data plane <-> Linux UDP socket through KNI and through TAP\n' +
        '  pool FILE...    KNI/TAP pairs from several exception-path results, by what the host gave the VM\n' +
        '  vhost           guest <-> host throughput through KNI sockets and TAP devices, vhost-net, VNET_HDR on and off\n' +
        '  vhost-direct    vhost-net driven by a userspace virtio-net driver: KNI socket, TAP through a relay, TAP\n',
    );
    return 0;
  }
  throw new UsageError(name === undefined ? 'kniv bench: a benchmark is required: exception-path, pool, vhost or vhost-direct' : `kniv bench: unknown benchmark ${JSON.stringify(name)}`);
}
