// `kniv vm guest`: boot one guest in the foreground, its console on stdout.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { helpText, intOption, parse, UsageError, type OptionsTable } from '../bin/cli.js';
import { formatProblem } from './console.js';
import { GUEST_EXIT, guestBoot } from './guest-image.js';
import { kernel as kernelFor, KernelLabelSchema } from './kernels.js';
import { launchVm, type Vm } from './launcher.js';
import { VmSpecSchema, type VmSpecInput } from './vm-spec.js';

const table: OptionsTable = {
  spec: { type: 'string', value: 'FILE', help: 'a VmSpec as JSON (instead of the options below)' },
  kernel: { type: 'string', value: '6.1|6.12', help: 'boot this appliance kernel with the guest image (default 6.1)' },
  name: { type: 'string', value: 'NAME', help: 'VM name (default guest)' },
  memory: { type: 'string', value: 'MIB', help: 'guest memory in MiB (default 512)' },
  cpus: { type: 'string', value: 'N', help: 'vCPUs (default 1)' },
  nic: { type: 'string', multiple: true, value: 'BACKEND[,..]', help: 'a NIC: tap=IFNAME or fd=N, then ,vhost=on|off ,mac=MAC' },
  net: { type: 'string', multiple: true, value: 'IF:ADDR/LEN', help: 'an address inside the guest, e.g. eth0:10.1.0.2/24' },
  gateway: { type: 'string', value: 'IP', help: 'default route inside the guest' },
  iperf: { type: 'boolean', help: 'start iperf3 -s in the guest' },
  run: { type: 'string', value: 'SCRIPT', help: 'shell script to run in the guest once ready; then it powers off' },
  'run-dir': { type: 'string', value: 'DIR', help: 'keep QMP, console and logs here (default: a temporary directory)' },
  quiet: { type: 'boolean', help: 'do not copy the guest console to stdout' },
  timeout: { type: 'string', value: 'SECONDS', help: 'stop the guest after this long (exit 124)' },
  'print-boot': { type: 'boolean', help: "print the guest image's boot (kernel, initrd, cmdline) as JSON, for a VM spec or POST /v1/vms, and exit" },
};

const USAGE = 'kniv vm guest [options]';
const SUMMARY = `Boots a guest in the foreground and copies its serial console to stdout.
Without --spec it boots the appliance kernel with kniv's guest image (busybox,
virtio-net, iperf3). With --run the guest powers off after the script and this
command exits with the script's status; otherwise the guest runs until Ctrl-C.
Exits 124 on --timeout, 125 when qemu fails or the guest kernel reports a bug.
Under \`kniv sock exec IF -- kniv vm guest --nic fd={fd}\` the NIC is a KNI socket.`;

const VHOST = { on: true, off: false } as const;

/** `tap=IFNAME[,vhost=on|off][,mac=MAC]` or `fd=N[,...]` → a NIC for VmSpec (checked by the schema). */
export function parseNic(text: string): NonNullable<VmSpecInput['nics']>[number] {
  const [backend, ...opts] = text.split(',');
  const m = /^(tap|fd)=(.+)$/.exec(backend ?? '');
  if (!m) throw new UsageError(`--nic starts with tap=IFNAME or fd=N, not ${JSON.stringify(text)}`);
  const nic: NonNullable<VmSpecInput['nics']>[number] = {
    backend: m[1] === 'tap' ? { kind: 'tap', ifname: m[2]! } : { kind: 'fd', fd: intOption('nic fd', m[2], 0, 1 << 20)! },
  };
  for (const o of opts) {
    const [k, v] = o.split('=', 2);
    if (k === 'vhost' && (v === 'on' || v === 'off')) nic.vhost = VHOST[v];
    else if (k === 'mac' && v !== undefined) nic.mac = v;
    else throw new UsageError(`--nic takes vhost=on|off and mac=MAC after the backend, not ${JSON.stringify(o)}`);
  }
  return nic;
}

export function parseNet(text: string): { ifname: string; address: string } {
  const i = text.indexOf(':');
  if (i <= 0) throw new UsageError(`--net takes IF:ADDRESS/PREFIX, e.g. eth0:10.1.0.2/24, not ${JSON.stringify(text)}`);
  return { ifname: text.slice(0, i), address: text.slice(i + 1) };
}

export async function vmGuest(argv: string[]): Promise<number> {
  const { values } = parse(argv, table, false);
  if (values.help) {
    process.stdout.write(helpText(USAGE, SUMMARY, table));
    return 0;
  }
  const guestFlags = ['kernel', 'net', 'gateway', 'iperf', 'run'] as const;
  let spec: VmSpecInput;
  if (values.spec !== undefined) {
    const clash = [...guestFlags, 'name', 'memory', 'cpus', 'nic', 'print-boot'].filter((f) => values[f] !== undefined);
    if (clash.length > 0) throw new UsageError(`--spec describes the whole VM; drop --${clash.join(', --')}`);
    try {
      spec = JSON.parse(readFileSync(values.spec as string, 'utf8')) as VmSpecInput;
    } catch (err) {
      throw new UsageError(`cannot read the spec ${values.spec as string}: ${(err as Error).message}`);
    }
  } else {
    const label = KernelLabelSchema.safeParse(values.kernel ?? '6.1');
    if (!label.success) throw new UsageError(`--kernel must be 6.1 or 6.12, not ${JSON.stringify(values.kernel)}`);
    const run = values.run as string | undefined;
    spec = {
      name: (values.name as string | undefined) ?? 'guest',
      boot: guestBoot(kernelFor(label.data), {
        net: ((values.net as string[] | undefined) ?? []).map(parseNet),
        ...(values.gateway !== undefined ? { gateway: values.gateway as string } : {}),
        iperfServer: values.iperf === true,
        ...(run !== undefined ? { run, poweroff: true } : {}),
      }),
      nics: ((values.nic as string[] | undefined) ?? []).map(parseNic),
    };
    if (values['print-boot']) {
      process.stdout.write(`${JSON.stringify(spec.boot)}\n`);
      return 0;
    }
    const memory = intOption('memory', values.memory, 64, 65536);
    const cpus = intOption('cpus', values.cpus, 1, 16);
    if (memory !== undefined) spec.memoryMiB = memory;
    if (cpus !== undefined) spec.vcpus = cpus;
  }
  const timeout = intOption('timeout', values.timeout, 1, 86400);

  const ownDir = values['run-dir'] === undefined;
  const runDir = (values['run-dir'] as string | undefined) ?? mkdtempSync(join(tmpdir(), 'kniv-guest-'));
  let scriptStatus: number | undefined;
  let vm: Vm | undefined;
  let why: 'timeout' | 'interrupted' | undefined;
  const stopFor = (reason: 'timeout' | 'interrupted') => {
    why ??= reason;
    vm?.stop().catch((err: Error) => process.stderr.write(`kniv vm guest: ${err.message}\n`));
  };
  const onSignal = () => stopFor('interrupted');
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  const timer = timeout === undefined ? undefined : setTimeout(() => stopFor('timeout'), timeout * 1000);
  try {
    const parsed = VmSpecSchema.parse(spec); // bad input is a usage error (2), not a VM failure
    try {
      vm = await launchVm({
        spec: parsed,
        runDir,
        onConsole: (line) => {
          const m = GUEST_EXIT.exec(line);
          if (m) scriptStatus = Number(m[1]);
          if (!values.quiet) process.stdout.write(`${line}\n`);
        },
      });
    } catch (err) {
      process.stderr.write(`kniv vm guest: ${(err as Error).message}\n`);
      return 125;
    }
    vm.on('stderr', (line) => process.stderr.write(`qemu: ${line}\n`));
    vm.on('vhost-fallback', () => process.stderr.write('kniv vm guest: vhost-net is not carrying a NIC (qemu fell back to userspace virtio)\n'));
    if (why !== undefined) stopFor(why);
    const exit = await vm.exited;
    if (why === 'timeout') {
      process.stderr.write(`kniv vm guest: stopped after ${timeout} s\n`);
      return 124;
    }
    if (why === 'interrupted') return 130;
    const problem = vm.kernelProblems[0];
    if (problem !== undefined) {
      process.stderr.write(`kniv vm guest: the guest kernel reported a problem: ${formatProblem(problem)}\n`);
      return 125;
    }
    if (exit.code !== 0) {
      process.stderr.write(`kniv vm guest: qemu ended with ${exit.signal ?? `status ${exit.code}`}\n`);
      return 125;
    }
    return scriptStatus ?? 0;
  } finally {
    if (timer) clearTimeout(timer);
    for (const s of signals) process.off(s, onSignal);
    if (ownDir) rmSync(runDir, { recursive: true, force: true });
  }
}
