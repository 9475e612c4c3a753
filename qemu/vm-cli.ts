// `kniv vm run`: one command inside the appliance VM.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { helpText, intOption, parse, UsageError, type OptionsTable } from '../bin/cli.js';
import { runAppliance, type ApplianceIo, type ApplianceOptions, type ApplianceResult } from './appliance.js';
import type { PortForward } from './appliance-argv.js';
import { artifactsDir as configuredArtifactsDir } from './artifacts.js';
import { KernelLabelSchema } from './kernels.js';

const table: OptionsTable = {
  kernel: { type: 'string', value: '6.1|6.12', help: 'appliance kernel (default 6.1)' },
  memory: { type: 'string', value: 'MIB', help: 'guest memory in MiB (default 2048)' },
  cpus: { type: 'string', value: 'N', help: 'guest vCPUs (default 2)' },
  forward: { type: 'string', multiple: true, value: 'HOST:GUEST', help: 'forward TCP port 127.0.0.1:HOST to the guest' },
  'no-kni': { type: 'boolean', help: 'do not load kni.ko at boot' },
  'kni-param': { type: 'string', multiple: true, value: 'NAME=VALUE', help: 'kni.ko parameter at boot' },
  'kni-module': { type: 'string', value: 'PATH', help: 'load this kni.ko instead of the built one' },
  env: { type: 'string', multiple: true, value: 'NAME=VALUE', help: 'environment variable for the command' },
  timeout: { type: 'string', value: 'SECONDS', help: 'stop the VM after this long (exit 124)' },
  console: { type: 'boolean', help: 'copy the kernel console to stderr' },
};

const USAGE = 'kniv vm run [options] [--] <command> [args...]';
const SUMMARY = `Runs one command inside the appliance VM (Debian's kernel under qemu, the host's
root shared read-only with a writable tmpfs overlay, kni.ko loaded), in the
current directory. Streams its output and exits with its exit status; 124 on
--timeout; 125 when the VM fails or its kernel reports a BUG, WARNING, Oops or
similar, even if the command succeeded.`;

export function parseForward(spec: string): PortForward {
  const m = /^(\d+):(\d+)$/.exec(spec);
  const host = intOption('forward', m?.[1], 1, 65535);
  const guest = intOption('forward', m?.[2], 1, 65535);
  if (host === undefined || guest === undefined) throw new UsageError(`--forward takes HOST:GUEST, not ${JSON.stringify(spec)}`);
  return { hostAddress: '127.0.0.1', hostPort: host, guestPort: guest };
}

function parseEnv(specs: string[] | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of specs ?? []) {
    const i = s.indexOf('=');
    if (i <= 0) throw new UsageError(`--env takes NAME=VALUE, not ${JSON.stringify(s)}`);
    env[s.slice(0, i)] = s.slice(i + 1);
  }
  return env;
}

function artifactsDirFromEnv(): string | undefined {
  const dir = configuredArtifactsDir();
  if (dir === undefined) return undefined;
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true });
  return abs;
}

/** Report a failed run on stderr: why, then the tail of the kernel console. */
export function reportFailure(result: ApplianceResult, err: NodeJS.WritableStream = process.stderr): void {
  if (result.failure === undefined) return;
  err.write(`kniv vm: ${result.failure}\n`);
  if (result.problemReport !== undefined) err.write(`${result.problemReport}\n`);
  if (result.consoleArtifact !== undefined) err.write(`kniv vm: the whole kernel console is kept in ${result.consoleArtifact}\n`);
  if (result.kernelProblem !== undefined || result.commandStatus === undefined || result.timedOut) {
    err.write(`--- kernel console (last ${result.consoleTail.length} lines) ---\n`);
    err.write(`${result.consoleTail.join('\n')}\n---\n`);
  }
}

/** Runs fn with Ctrl-C, SIGTERM and SIGHUP aborting its signal instead of ending this process. */
export async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, stop);
  try {
    return await fn(ac.signal);
  } finally {
    for (const s of signals) process.off(s, stop);
  }
}

/**
 * Run with Ctrl-C, SIGTERM and SIGHUP stopping the VM before this process
 * exits. The command's output goes to this process's unless `io` redirects it.
 */
export function runInterruptible(
  options: ApplianceOptions,
  onConsole?: (l: string) => void,
  io: Partial<Pick<ApplianceIo, 'stdout' | 'stderr'>> = {},
): Promise<ApplianceResult> {
  return interruptible((signal) =>
    runAppliance(options, {
      stdout: io.stdout ?? process.stdout,
      stderr: io.stderr ?? process.stderr,
      signal,
      ...(onConsole ? { onConsole } : {}),
    }),
  );
}

export async function vmRun(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, table);
  if (values.help) {
    process.stdout.write(helpText(USAGE, SUMMARY, table));
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`a command is required\n\n${helpText(USAGE, SUMMARY, table)}`);
  const kernel = KernelLabelSchema.safeParse(values.kernel ?? '6.1');
  if (!kernel.success) throw new UsageError(`--kernel must be 6.1 or 6.12, not ${JSON.stringify(values.kernel)}`);
  const timeout = intOption('timeout', values.timeout, 1, 86400);
  // KNIV_ARTIFACTS: where consoles of faulted kernels are kept (qemu/artifacts.ts), shared into the VM.
  const artifactsDir = artifactsDirFromEnv();
  const options: ApplianceOptions = {
    kernel: kernel.data,
    command: positionals,
    cwd: process.cwd(),
    forwards: ((values.forward as string[] | undefined) ?? []).map(parseForward),
    loadKni: !values['no-kni'],
    kniParams: (values['kni-param'] as string[] | undefined) ?? [],
    env: parseEnv(values.env as string[] | undefined),
    ...(values['kni-module'] ? { kniModule: values['kni-module'] as string } : {}),
    ...(timeout ? { timeoutMs: timeout * 1000 } : {}),
    ...(artifactsDir ? { artifactsDir } : {}),
  };
  const memory = intOption('memory', values.memory, 256, 16384);
  const cpus = intOption('cpus', values.cpus, 1, 16);
  if (memory !== undefined) options.memoryMiB = memory;
  if (cpus !== undefined) options.cpus = cpus;
  const result = await runInterruptible(
    options,
    values.console ? (line) => process.stderr.write(`[console] ${line}\n`) : undefined,
  );
  reportFailure(result);
  return result.exitCode;
}
