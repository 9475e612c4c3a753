// `kniv bench vhost`: runs the kni-vhost benchmark inside the appliance VM
// (or, with --here, on this system), writes the JSON result and prints the table.
import { loadavg, release } from 'node:os';
import { helpText, intOption, parse, UsageError, type OptionsTable } from '../bin/cli.js';
import { kvmUsable } from '../qemu/accel.js';
import { guestImage } from '../qemu/guest-image.js';
import { kernel as kernelFor } from '../qemu/kernels.js';
import { interruptible } from '../qemu/vm-cli.js';
import { hostLoad, listOf, refuseVmOptions, runHereInAppliance, vmChoice, writeResult } from './cli-common.js';
import { runVhostBench } from './vhost.js';
import {
  DirectionSchema,
  formatTable,
  parsePaths,
  ProtocolSchema,
  VhostBenchConfigSchema,
  VhostBenchResultSchema,
  type VhostBenchConfigInput,
  type VhostBenchResult,
} from './vhost-result.js';

const table: OptionsTable = {
  kernel: { type: 'string', value: '6.1|6.12', help: 'appliance kernel, also the guest\'s (default 6.1)' },
  seconds: { type: 'string', value: 'N', help: 'measured seconds per iperf3 run (default 5)' },
  omit: { type: 'string', value: 'N', help: 'seconds a TCP run goes before iperf3 counts (-O, default 1)' },
  repeat: { type: 'string', value: 'N', help: 'runs of each case; the table shows medians (default 3)' },
  paths: {
    type: 'string',
    multiple: true,
    value: 'LIST',
    help: 'comma-separated: kni-vnethdr-off, kni-vnethdr-on, tap-vnethdr-on, tap-vnethdr-off, kni, tap, all (default all)',
  },
  protocol: { type: 'string', multiple: true, value: 'tcp|udp', help: 'protocols to measure (default both)' },
  direction: { type: 'string', multiple: true, value: 'host-to-guest|guest-to-host', help: 'directions to measure (default both)' },
  'udp-bytes': { type: 'string', value: 'BYTES', help: 'UDP payload per datagram, 16..1472 (default 64)' },
  'udp-rate': { type: 'string', value: 'PPS', help: 'UDP datagrams per second offered; 0: as fast as the sender can (default 0)' },
  'no-vhost': { type: 'boolean', help: 'qemu moves the packets itself (vhost=off on every NIC): the baseline' },
  'guest-cpus': { type: 'string', value: 'N', help: 'vCPUs of the guest (default 1)' },
  'guest-memory': { type: 'string', value: 'MIB', help: 'memory of the guest (default 256)' },
  'vm-cpus': { type: 'string', value: 'N', help: 'vCPUs of the appliance VM (default 2)' },
  json: { type: 'string', value: 'FILE', help: 'where to write the result (default bench/results/vhost-<kernel>-<time>.json); - prints only the JSON, on stdout' },
  here: { type: 'boolean', help: 'run on this system (root, kni.ko loaded) instead of in the appliance VM' },
};

const USAGE = 'kniv bench vhost [options]';
const SUMMARY = `Measures guest<->host iperf3 throughput (TCP both ways, small UDP datagrams
per second) through KNI sockets and TAP devices, vhost-net on, VNET_HDR on and
off, side by side in one guest boot inside the appliance VM. Without KVM the
guest's CPU is emulated and the figures mostly measure emulation; with KVM
usable the guest uses it by itself. docs/bench.md describes the method.`;

/** The benchmark's config from the command line; unset options keep their defaults. */
export function configFrom(values: Record<string, unknown>): VhostBenchConfigInput {
  const c: VhostBenchConfigInput = {};
  const seconds = intOption('seconds', values.seconds, 1, 300);
  const omit = intOption('omit', values.omit, 0, 30);
  const repeat = intOption('repeat', values.repeat, 1, 20);
  const udpBytes = intOption('udp-bytes', values['udp-bytes'], 16, 1472);
  const udpRate = intOption('udp-rate', values['udp-rate'], 0, 10_000_000);
  const guestCpus = intOption('guest-cpus', values['guest-cpus'], 1, 8);
  const guestMemory = intOption('guest-memory', values['guest-memory'], 128, 4096);
  if (seconds !== undefined) c.seconds = seconds;
  if (omit !== undefined) c.omitSeconds = omit;
  if (repeat !== undefined) c.repeat = repeat;
  if (udpBytes !== undefined) c.udpBytes = udpBytes;
  if (udpRate !== undefined) c.udpRate = udpRate;
  if (guestCpus !== undefined) c.guestCpus = guestCpus;
  if (guestMemory !== undefined) c.guestMemoryMiB = guestMemory;
  if (values.paths !== undefined) {
    try {
      c.paths = parsePaths(values.paths as string[]);
    } catch (err) {
      throw new UsageError(`--paths: ${(err as Error).message}`);
    }
    if (c.paths.length === 0) throw new UsageError('--paths: name at least one path');
  }
  const protocols = listOf('protocol', values.protocol, (v) => ProtocolSchema.parse(v));
  const directions = listOf('direction', values.direction, (v) => DirectionSchema.parse(v));
  if (protocols) c.protocols = protocols;
  if (directions) c.directions = directions;
  if (values['no-vhost']) c.vhost = false;
  return c;
}

/** The same options, as arguments for the run inside the VM. */
export function configArgs(c: VhostBenchConfigInput): string[] {
  const a: string[] = [];
  if (c.seconds !== undefined) a.push('--seconds', String(c.seconds));
  if (c.omitSeconds !== undefined) a.push('--omit', String(c.omitSeconds));
  if (c.repeat !== undefined) a.push('--repeat', String(c.repeat));
  if (c.udpBytes !== undefined) a.push('--udp-bytes', String(c.udpBytes));
  if (c.udpRate !== undefined) a.push('--udp-rate', String(c.udpRate));
  if (c.guestCpus !== undefined) a.push('--guest-cpus', String(c.guestCpus));
  if (c.guestMemoryMiB !== undefined) a.push('--guest-memory', String(c.guestMemoryMiB));
  if (c.paths) a.push('--paths', c.paths.join(','));
  for (const p of c.protocols ?? []) a.push('--protocol', p);
  for (const d of c.directions ?? []) a.push('--direction', d);
  if (c.vhost === false) a.push('--no-vhost');
  return a;
}

/** Problems that make the result not what was asked for: a run that moved nothing, vhost-net not in charge. */
export function resultProblems(result: VhostBenchResult): string[] {
  const problems = result.runs
    .filter((r) => r.mbps <= 0 || (r.protocol === 'udp' && !(r.pps && r.pps > 0)))
    .map((r) => `${r.path} ${r.protocol} ${r.direction} (repeat ${r.repeat}) moved nothing`);
  if (!result.vhostVerified) problems.push(`vhost-net did not run every NIC that asked for it: ${JSON.stringify(result.vhost)}${result.vhostFallback ? `; qemu: ${result.vhostFallback}` : ''}`);
  return problems;
}

function output(result: VhostBenchResult, json: string | undefined, kernelLabel: string, extra: string): number {
  writeResult(result, json, 'vhost', kernelLabel, formatTable(result), extra);
  const problems = resultProblems(result);
  for (const p of problems) process.stderr.write(`kniv bench vhost: ${p}\n`);
  return problems.length === 0 ? 0 : 1;
}

export async function benchVhost(argv: string[]): Promise<number> {
  const { values } = parse(argv, table, false);
  if (values.help) {
    process.stdout.write(helpText(USAGE, SUMMARY, table));
    return 0;
  }
  const config = configFrom(values);
  const full = VhostBenchConfigSchema.parse(config);
  const json = values.json as string | undefined;

  if (values.here) {
    refuseVmOptions(values);
    const result = await interruptible((signal) => runVhostBench(config, { log: (l) => process.stderr.write(`kniv bench: ${l}\n`), signal }));
    return output(result, json, release(), '');
  }

  const { kernel, vmCpus } = vmChoice(values);
  const cases = full.paths.length * full.protocols.length * full.directions.length * full.repeat;
  // The guest boots in minutes under nested TCG; each run adds iperf3's own start and stop.
  const timeoutMs = (30 * 60 + cases * (full.seconds + full.omitSeconds + 45)) * 1000;
  const accel = kvmUsable() ? 'kvm' : 'tcg';
  process.stderr.write(`kniv bench: ${cases} iperf3 runs through ${full.paths.length} paths in one guest, inside the appliance VM (kernel ${kernel}, ${accel.toUpperCase()})...\n`);
  // Built here, where build/ is writable: the VM sees the host's files read-only.
  guestImage(kernelFor(kernel));
  const started = Date.now();
  const loadBefore = loadavg()[0] ?? 0;
  const vm = await runHereInAppliance('vhost', configArgs(config), { kernel: kernel, cpus: vmCpus, timeoutMs });
  // Status 1 inside means a problem with the figures: the result is still written.
  if ('status' in vm) return vm.status;
  const parsed = VhostBenchResultSchema.parse(vm.json);
  const result: VhostBenchResult = {
    ...parsed,
    system: { ...parsed.system, where: 'appliance-vm', accel },
    host: hostLoad(loadBefore),
  };
  const total = (Date.now() - started) / 1000;
  return output(result, json, kernel, `whole command, appliance VM boot included: ${total.toFixed(0)} s\n`);
}
