// `kniv bench vhost-direct`: runs the vhost-direct benchmark inside the
// appliance VM (or, with --here, on this system), writes the JSON result and
// prints the table.
import { loadavg, release } from 'node:os';
import { helpText, intOption, parse, type OptionsTable } from '../bin/cli.js';
import { kvmUsable } from '../qemu/accel.js';
import { interruptible } from '../qemu/vm-cli.js';
import { hostLoad, listOf, refuseVmOptions, runHereInAppliance, vmChoice, writeResult } from './cli-common.js';
import { ensureDriver, plan, runVhostDirect } from './vhost-direct.js';
import {
  DirectionSchema,
  formatTable,
  PathSchema,
  VhostDirectConfigSchema,
  VhostDirectResultSchema,
  WorkloadSchema,
  type VhostDirectConfigInput,
  type VhostDirectResult,
} from './vhost-direct-result.js';
import { z } from 'zod';

const table: OptionsTable = {
  kernel: { type: 'string', value: '6.1|6.12', help: 'appliance kernel (default 6.1)' },
  seconds: { type: 'string', value: 'N', help: 'measured seconds per run (default 3)' },
  repeat: { type: 'string', value: 'N', help: 'runs of each case; the table shows medians (default 3)' },
  path: { type: 'string', multiple: true, value: 'LIST', help: 'comma-separated: kni, tap-relay, tap (default all three)' },
  workload: { type: 'string', multiple: true, value: 'LIST', help: 'comma-separated: frames (60 B UDP), stream (64 KB TSO, or 1514 B frames with VNET_HDR off), ping (default all)' },
  direction: { type: 'string', multiple: true, value: 'LIST', help: 'comma-separated: to-port (the driver sends), from-port (default both)' },
  'vnet-hdr': { type: 'string', multiple: true, value: 'on|off', help: 'virtio-net headers carried by the backend, or added and stripped by vhost (default both)' },
  'idle-us': { type: 'string', value: 'N', help: 'data plane and relay sleep when idle, in µs (default 200)' },
  'vm-cpus': { type: 'string', value: 'N', help: 'vCPUs of the appliance VM (default 2)' },
  json: { type: 'string', value: 'FILE', help: 'where to write the result (default bench/results/vhost-direct-<kernel>-<time>.json); - prints only the JSON, on stdout' },
  here: { type: 'boolean', help: 'run on this system (root, kni.ko loaded, /dev/vhost-net) instead of in the appliance VM' },
};

const USAGE = 'kniv bench vhost-direct [options]';
const SUMMARY = `Drives /dev/vhost-net with vhost-drive, a userspace virtio-net driver, over
three backends against the same veth into a peer namespace: a KNI socket
(through the data plane), a TAP device through the same data plane relay
(tap-relay), and a TAP device in the peer namespace (tap). Reports Gbit/s,
frames/s, bytes per busy CPU-second, CPU seconds per thread on the path and
ICMP round-trip latency, VNET_HDR on and off. No nested guest: this measures
vhost-net and the backends, not a second level of emulation.
docs/bench.md describes the method.`;

const OnOffSchema = z.enum(['on', 'off']).transform((v) => v === 'on');

/** The benchmark's config from the command line; unset options keep their defaults. */
export function configFrom(values: Record<string, unknown>): VhostDirectConfigInput {
  const c: VhostDirectConfigInput = {};
  const seconds = intOption('seconds', values.seconds, 1, 300);
  const repeat = intOption('repeat', values.repeat, 1, 20);
  const idleUs = intOption('idle-us', values['idle-us'], 1, 100_000);
  if (seconds !== undefined) c.seconds = seconds;
  if (repeat !== undefined) c.repeat = repeat;
  if (idleUs !== undefined) c.idleUs = idleUs;
  const paths = listOf('path', values.path, (v) => PathSchema.parse(v));
  const workloads = listOf('workload', values.workload, (v) => WorkloadSchema.parse(v));
  const directions = listOf('direction', values.direction, (v) => DirectionSchema.parse(v));
  const hdr = listOf('vnet-hdr', values['vnet-hdr'], (v) => OnOffSchema.parse(v));
  if (paths) c.paths = paths;
  if (workloads) c.workloads = workloads;
  if (directions) c.directions = directions;
  if (hdr) c.vnetHdr = hdr;
  return c;
}

/** The same options, as arguments for the run inside the VM. */
export function configArgs(c: VhostDirectConfigInput): string[] {
  const a: string[] = [];
  if (c.seconds !== undefined) a.push('--seconds', String(c.seconds));
  if (c.repeat !== undefined) a.push('--repeat', String(c.repeat));
  if (c.idleUs !== undefined) a.push('--idle-us', String(c.idleUs));
  if (c.paths) a.push('--path', c.paths.join(','));
  if (c.workloads) a.push('--workload', c.workloads.join(','));
  if (c.directions) a.push('--direction', c.directions.join(','));
  if (c.vnetHdr) a.push('--vnet-hdr', c.vnetHdr.map((v) => (v ? 'on' : 'off')).join(','));
  return a;
}

/** Runs that moved nothing, or pings that got no answer: the result is not what was asked for. */
export function resultProblems(result: VhostDirectResult): string[] {
  return result.runs
    .filter((r) => (r.workload === 'ping' ? !r.latency || r.latency.count === 0 : r.received.frames === 0))
    .map((r) => `${r.path} ${r.workload} ${r.direction} VNET_HDR ${r.vnetHdr ? 'on' : 'off'} (repeat ${r.repeat}) ${r.workload === 'ping' ? 'got no echo reply' : 'moved nothing'}`);
}

function output(result: VhostDirectResult, json: string | undefined, kernelLabel: string, extra: string): number {
  writeResult(result, json, 'vhost-direct', kernelLabel, formatTable(result), extra);
  const problems = resultProblems(result);
  for (const p of problems) process.stderr.write(`kniv bench vhost-direct: ${p}\n`);
  return problems.length === 0 ? 0 : 1;
}

export async function benchVhostDirect(argv: string[]): Promise<number> {
  const { values } = parse(argv, table, false);
  if (values.help) {
    process.stdout.write(helpText(USAGE, SUMMARY, table));
    return 0;
  }
  const config = configFrom(values);
  const full = VhostDirectConfigSchema.parse(config);
  const json = values.json as string | undefined;

  if (values.here) {
    refuseVmOptions(values);
    const result = await interruptible((signal) => runVhostDirect(config, (l) => process.stderr.write(`${l}\n`), signal));
    return output(result, json, release(), '');
  }

  const { kernel, vmCpus } = vmChoice(values);
  const runs = plan(full).length;
  // A guard against a hung run only: setup, the far end's start and the drain add seconds to each.
  const timeoutMs = (300 + runs * (full.seconds + 30)) * 1000;
  const accel = kvmUsable() ? 'kvm' : 'tcg';
  process.stderr.write(`kniv bench: ${runs} runs in the appliance VM (kernel ${kernel}, ${accel.toUpperCase()})...\n`);
  // Built here, where build/ is writable: the VM sees the host's files read-only.
  await ensureDriver();
  const started = Date.now();
  const loadBefore = loadavg()[0] ?? 0;
  const vm = await runHereInAppliance('vhost-direct', configArgs(config), { kernel: kernel, cpus: vmCpus, timeoutMs });
  if ('status' in vm) return vm.status;
  const parsed = VhostDirectResultSchema.parse(vm.json);
  const result: VhostDirectResult = { ...parsed, system: { ...parsed.system, where: 'appliance-vm', accel }, host: hostLoad(loadBefore) };
  const total = (Date.now() - started) / 1000;
  return output(result, json, kernel, `whole command, appliance VM boot included: ${total.toFixed(0)} s\n`);
}
