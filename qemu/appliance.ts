// The appliance VM: Debian's kernel under qemu with the host's root shared
// read-only, kni.ko loaded, and one command run inside it. Its output streams
// back over virtio consoles; the kernel console is watched for bugs.
import { finished } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import { execa } from 'execa';
import { z } from 'zod';
import { APPLIANCE_FDS, applianceArgv, PortForwardSchema } from './appliance-argv.js';
import { kvmUsable, tcgCpuModel } from './accel.js';
import { keepArtifact } from './artifacts.js';
import { ConsoleWatcher, formatProblem } from './console.js';
import { guestKernel } from './guest-image.js';
import { applianceInitramfs } from './initramfs.js';
import { kernel as kernelFor, KernelLabelSchema, kniModulePath } from './kernels.js';

/** Exit statuses of a VM run that are not the command's own. */
export const EXIT_TIMEOUT = 124;
export const EXIT_VM_FAILURE = 125;

const ModuleParamSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_]*=[A-Za-z0-9_.,:-]*$/, 'a module parameter looks like name=value');

export const ApplianceOptionsSchema = z.object({
  kernel: KernelLabelSchema.default('6.1'),
  command: z.array(z.string()).min(1, 'a command to run is required'),
  cwd: z.string().startsWith('/').default(process.cwd()),
  memoryMiB: z.number().int().min(256).max(16384).default(2048),
  cpus: z.number().int().min(1).max(16).default(2),
  forwards: z.array(PortForwardSchema).default([]),
  loadKni: z.boolean().default(true),
  kniModule: z.string().startsWith('/').optional(),
  kniParams: z.array(ModuleParamSchema).default([]),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
  /** A host directory shared read-write into the VM at the same path (the service's state). */
  stateDir: z
    .string()
    .startsWith('/')
    .refine((p) => !p.includes(','), 'a path without commas')
    .optional(),
  /**
   * A host directory shared read-write at the same path, where the run keeps
   * evidence (qemu/artifacts.ts): the command sees it as KNIV_ARTIFACTS, and
   * the appliance's own console is written there when its kernel reports a
   * problem or the run fails.
   */
  artifactsDir: z
    .string()
    .startsWith('/')
    .refine((p) => !p.includes(','), 'a path without commas')
    .optional(),
  timeoutMs: z.number().int().positive().optional(),
});
export type ApplianceOptions = z.input<typeof ApplianceOptionsSchema>;

export interface ApplianceIo {
  stdout: Writable;
  stderr: Writable;
  /** Called with every kernel console line as it arrives. */
  onConsole?: (line: string) => void;
  /** Aborting stops the VM (qemu gets SIGTERM, then SIGKILL). */
  signal?: AbortSignal;
}

export interface ApplianceResult {
  /** The status the command reported from inside the VM, if it got that far. */
  commandStatus: number | undefined;
  /** The first console line in which the kernel reported a bug. */
  kernelProblem: string | undefined;
  /** That line with the console lines around it (console.ts formatProblem). */
  problemReport: string | undefined;
  /** Where the whole console was kept, if it was (options.artifactsDir). */
  consoleArtifact: string | undefined;
  timedOut: boolean;
  aborted: boolean;
  consoleTail: string[];
  qemuStderr: string;
  /** What `kniv vm run` should exit with. */
  exitCode: number;
  /** Why the run failed, when it was not the command's own failure. */
  failure: string | undefined;
}

export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Host variables a command in the VM sees, besides those given explicitly. */
function inheritedEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && (k === 'PATH' || k === 'CI' || k === 'TERM' || k.startsWith('KNIV_'))) out[k] = v;
  }
  return out;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export async function runAppliance(options: ApplianceOptions, io: ApplianceIo): Promise<ApplianceResult> {
  const opts = ApplianceOptionsSchema.parse(options);
  const k = kernelFor(opts.kernel);
  const kniModule = opts.kniModule ?? kniModulePath(k.release);
  const initrd = applianceInitramfs({ kernel: k, kniModule: opts.loadKni ? kniModule : undefined });

  const config = [
    `KNIV_RELEASE=${shQuote(k.release)}`,
    `KNIV_MODULES=${shQuote(k.modules)}`,
    `KNIV_LOAD_KNI=${opts.loadKni ? 1 : 0}`,
    `KNIV_KNI_PARAMS=${shQuote(opts.kniParams.join(' '))}`,
    `KNIV_NET=${opts.forwards.length > 0 ? 1 : ''}`,
    `KNIV_STATE_DIR=${shQuote(opts.stateDir ?? '')}`,
    `KNIV_ARTIFACTS_DIR=${shQuote(opts.artifactsDir ?? '')}`,
  ].join('\n');
  const env = { HOME: '/root', ...inheritedEnv(), ...(opts.artifactsDir ? { KNIV_ARTIFACTS: opts.artifactsDir } : {}), ...opts.env };
  const command = [
    ...Object.entries(env).map(([name, value]) => `export ${name}=${shQuote(value)}`),
    `cd ${shQuote(opts.cwd)} || exit ${EXIT_VM_FAILURE}`,
    `exec ${opts.command.map(shQuote).join(' ')}`,
  ].join('\n');

  const argv = applianceArgv({
    // Unpacked once: xz-decompressing the bzImage was half of every TCG boot.
    kernel: guestKernel(k),
    initrd,
    memoryMiB: opts.memoryMiB,
    cpus: opts.cpus,
    kvm: kvmUsable(),
    tcgCpu: tcgCpuModel(),
    kernelArgs: ['console=ttyS0', 'loglevel=5', 'panic=-1', 'mitigations=off'],
    fwcfg: { config: b64(`${config}\n`), command: b64(`${command}\n`) },
    forwards: opts.forwards,
    shares: [
      ...(opts.stateDir ? [{ tag: 'state', path: opts.stateDir }] : []),
      ...(opts.artifactsDir ? [{ tag: 'artifacts', path: opts.artifactsDir }] : []),
    ],
  });

  // The whole console, kept in memory (the kernel's own lines: kilobytes) for the artifact.
  const wholeConsole: string[] = [];
  const watcher = new ConsoleWatcher(60, (line) => {
    if (wholeConsole.length < 200_000) wholeConsole.push(line);
    io.onConsole?.(line);
  });
  const abort = new AbortController();
  const onAbort = () => abort.abort();
  io.signal?.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  const timer =
    opts.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          abort.abort();
        }, opts.timeoutMs);

  // setpriv --pdeathsig: if this process dies without cleaning up (SIGKILL,
  // a crashed test worker), the kernel kills qemu too.
  const child = execa('setpriv', ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...argv], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
    reject: false,
    buffer: false,
    cancelSignal: abort.signal,
    forceKillAfterDelay: 3000,
  });

  const stream = (n: number) => child.stdio[n] as Readable;
  let qemuStderr = '';
  let status = '';
  stream(2).on('data', (d: Buffer) => {
    qemuStderr += d.toString('utf8');
  });
  stream(1).on('data', (d: Buffer) => {
    qemuStderr += d.toString('utf8');
  });
  stream(APPLIANCE_FDS.console).on('data', (d: Buffer) => watcher.feed(d));
  stream(APPLIANCE_FDS.stdout).pipe(io.stdout, { end: false });
  stream(APPLIANCE_FDS.stderr).pipe(io.stderr, { end: false });
  stream(APPLIANCE_FDS.status).on('data', (d: Buffer) => {
    status += d.toString('utf8');
  });

  try {
    await child;
    await Promise.all([1, 2, 3, 4, 5, 6].map((n) => finished(stream(n)).catch(() => undefined)));
  } finally {
    if (timer) clearTimeout(timer);
    io.signal?.removeEventListener('abort', onAbort);
  }
  watcher.end();

  const parsed = /^\s*(\d+)\s*$/.exec(status);
  const commandStatus = parsed?.[1] !== undefined ? Number(parsed[1]) : undefined;
  const aborted = abort.signal.aborted && !timedOut;
  let failure: string | undefined;
  let exitCode: number;
  if (watcher.problem !== undefined) {
    failure = `the appliance kernel reported a problem: ${watcher.problem}`;
    exitCode = EXIT_VM_FAILURE;
  } else if (timedOut) {
    failure = `the command did not finish within ${opts.timeoutMs} ms; the VM was stopped`;
    exitCode = EXIT_TIMEOUT;
  } else if (aborted) {
    failure = 'interrupted; the VM was stopped';
    exitCode = 130;
  } else if (commandStatus === undefined) {
    failure = `the VM stopped without reporting the command's exit status${qemuStderr ? `; qemu said: ${qemuStderr.trim()}` : ''}`;
    exitCode = EXIT_VM_FAILURE;
  } else {
    exitCode = commandStatus;
  }
  const firstProblem = watcher.problems[0];
  const consoleArtifact =
    opts.artifactsDir !== undefined && (firstProblem !== undefined || exitCode !== 0)
      ? keepArtifact(`appliance-${k.release}.console.log`, `${wholeConsole.join('\n')}\n`, opts.artifactsDir)
      : undefined;
  return {
    commandStatus,
    kernelProblem: watcher.problem,
    problemReport: firstProblem !== undefined ? formatProblem(firstProblem) : undefined,
    consoleArtifact,
    timedOut,
    aborted,
    consoleTail: watcher.lastLines(),
    qemuStderr,
    exitCode,
    failure,
  };
}
