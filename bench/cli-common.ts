// What the benchmark commands share: running their --here form inside the
// appliance VM and collecting the JSON it prints, and writing the result.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import type { ApplianceOptions } from '../qemu/appliance.js';
import { projectRoot } from '../qemu/paths.js';
import { reportFailure, runInterruptible } from '../qemu/vm-cli.js';
import { intOption, UsageError } from '../bin/cli.js';
import { KernelLabelSchema, type KernelLabel } from '../qemu/kernels.js';
import type { HostLoad } from './stats.js';

class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString('utf8');
    cb();
  }
}

/**
 * Runs `kniv bench NAME --here --json - ARGS` inside the appliance VM, Ctrl-C
 * stopping it, its stderr to `stderr`. Returns the JSON it printed, or the
 * status to exit with when the run failed. Status 1 inside means a problem
 * with the figures: the result is still there.
 */
export async function runHereInAppliance(
  name: string,
  args: string[],
  options: Omit<ApplianceOptions, 'command' | 'cwd'>,
  stderr: Writable = process.stderr,
): Promise<{ json: unknown } | { status: number }> {
  const stdout = new Collect();
  const vm = await runInterruptible(
    { ...options, command: ['node', join(projectRoot, 'dist', 'bin', 'kniv.js'), 'bench', name, '--here', '--json', '-', ...args], cwd: projectRoot },
    undefined,
    { stdout, stderr },
  );
  if (vm.failure !== undefined || (vm.exitCode !== 0 && vm.exitCode !== 1)) {
    reportFailure(vm);
    process.stderr.write(`kniv bench: the run in the appliance VM failed (status ${vm.exitCode})\n`);
    return { status: vm.exitCode === 0 || vm.exitCode === 1 ? 2 : vm.exitCode };
  }
  return { json: JSON.parse(stdout.text) };
}

/** This machine's CPUs and its load average then and now: measured from the host, other load is noise. */
export const hostLoad = (loadAverageBefore: number): HostLoad => ({ cpus: cpus().length, loadAverageBefore, loadAverageAfter: loadavg()[0] ?? 0 });

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * With --json -: the result as JSON on stdout, nothing else. Otherwise into
 * `json` (default bench/results/NAME-KERNEL-TIME.json), then `table`, `extra`
 * and where the file went on stdout.
 */
export function writeResult(result: { startedAt: string }, json: string | undefined, name: string, kernelLabel: string, table: string, extra: string): void {
  const text = `${JSON.stringify(result, null, 2)}\n`;
  if (json === '-') {
    process.stdout.write(text);
    return;
  }
  const file = resolve(json ?? join(projectRoot, 'bench', 'results', `${name}-${kernelLabel}-${stamp(new Date(result.startedAt))}.json`));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  process.stdout.write(`\n${table}${extra}result: ${file}\n`);
}

/** A repeatable option of comma-separated words, each parsed; duplicates dropped, unknown words a usage error. */
export function listOf<T>(name: string, values: unknown, parseOne: (v: string) => T): T[] | undefined {
  if (values === undefined) return undefined;
  const out = (values as string[])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean)
    .map((v) => {
      try {
        return parseOne(v);
      } catch {
        throw new UsageError(`--${name}: ${JSON.stringify(v)} is not one of the accepted values (see --help)`);
      }
    });
  return [...new Set(out)];
}

/** The options that choose the appliance VM, and what they apply to. */
const VM_OPTIONS = ['kernel', 'vm-cpus', 'kni-param'] as const;

/** With --here: a usage error if an option that chooses the appliance VM was given. */
export function refuseVmOptions(values: Record<string, unknown>): void {
  const given = VM_OPTIONS.filter((o) => values[o] !== undefined).map((o) => `--${o}`);
  if (given.length) throw new UsageError(`options that choose the appliance VM do not apply with --here: ${given.join(', ')}`);
}

/** The appliance VM's kernel (default 6.1) and vCPUs (default 2) from the command line. */
export function vmChoice(values: Record<string, unknown>): { kernel: KernelLabel; vmCpus: number } {
  const kernel = KernelLabelSchema.safeParse(values.kernel ?? '6.1');
  if (!kernel.success) throw new UsageError(`--kernel must be 6.1 or 6.12, not ${JSON.stringify(values.kernel)}`);
  return { kernel: kernel.data, vmCpus: intOption('vm-cpus', values['vm-cpus'], 1, 16) ?? 2 };
}
