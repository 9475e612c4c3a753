// The C probes of kni.ko (test/fixtures/*.c) and what their tests share:
// building them, running them, reading the kernel log, reloading the module.
import type { TestFn } from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../qemu/paths.js';

export const kniKo = join(projectRoot, 'build', 'module', release(), 'kni.ko');

/** What in the kernel log fails a test: the appliance VM's list, plus lockdep's. */
export const kernelProblem = /BUG:|WARNING:|Oops|general protection fault|refcount_t|list_del corruption|KASAN|lockdep|possible recursive locking|circular locking/;

export const PROBES = ['kni-probe', 'kni-sock-probe', 'kni-sock-ioctl-probe', 'kni-compat-probe', 'kni-uffd-probe', 'kni-priv-probe'] as const;
export type ProbeName = (typeof PROBES)[number];

const fixtures = join(projectRoot, 'test', 'fixtures');
/** Where `kniv test` leaves the probes it compiled on the host, for the VM suites. */
export const prebuiltProbes = join(projectRoot, 'build', 'probes');

/** A probe's sources in test/fixtures/: its own and the shared helpers, except the 32-bit one (libc only). */
const sourcesOf = (name: ProbeName): string[] => (name === 'kni-compat-probe' ? [`${name}.c`] : [`${name}.c`, 'kni-probe-lib.c']);

function gccArgs(name: ProbeName, out: string): string[] {
  const flags = name === 'kni-compat-probe' ? ['-m32'] : [];
  const libs = name === 'kni-compat-probe' ? [] : ['-lpthread'];
  return ['-O2', '-Wall', '-Wextra', '-Werror', ...flags, `-I${join(projectRoot, 'module')}`, '-o', out, ...sourcesOf(name).map((f) => join(fixtures, f)), ...libs];
}

/** A hash of what a probe is built from: its sources, the helpers, the ABI header, the flags. */
function probeKey(name: ProbeName): string {
  const hash = createHash('sha256').update(gccArgs(name, '').join('\0'));
  for (const f of [...sourcesOf(name), 'kni-probe-lib.h']) hash.update(readFileSync(join(fixtures, f)));
  hash.update(readFileSync(join(projectRoot, 'module', 'kni_uapi.h')));
  return hash.digest('hex').slice(0, 16);
}

/**
 * Compiles every probe into build/probes/, named by the hash of its sources,
 * unless it is already there. gcc inside the appliance VM takes 20-30 s a
 * probe under TCG; on the host, about a second. Same root, same libc.
 */
export async function prebuildProbes(): Promise<void> {
  mkdirSync(prebuiltProbes, { recursive: true });
  for (const name of PROBES) {
    const out = join(prebuiltProbes, `${name}-${probeKey(name)}`);
    if (existsSync(out)) continue;
    for (const old of readdirSync(prebuiltProbes)) if (old.startsWith(`${name}-`)) rmSync(join(prebuiltProbes, old), { force: true });
    await execa('gcc', gccArgs(name, `${out}.${process.pid}.tmp`));
    renameSync(`${out}.${process.pid}.tmp`, out);
  }
}

/**
 * The probe test/fixtures/<name>.c: the host-built one if its sources have
 * not changed since, else compiled here into a temporary directory.
 */
export async function buildProbe(name: ProbeName): Promise<string> {
  const prebuilt = join(prebuiltProbes, `${name}-${probeKey(name)}`);
  if (existsSync(prebuilt)) return prebuilt;
  const out = join(mkdtempSync(join(tmpdir(), `${name}-`)), name);
  await execa('gcc', gccArgs(name, out));
  return out;
}

export interface ProbeResult {
  exitCode: number | undefined;
  failed: string[];
  passed: number;
  output: string;
}

export async function runProbe(probe: string, ...args: string[]): Promise<ProbeResult> {
  const r = await execa(probe, args, { cwd: projectRoot, reject: false, all: true, timeout: 240_000 });
  const output = r.all ?? '';
  const lines = output.split('\n');
  return {
    exitCode: r.exitCode,
    failed: lines.filter((l) => l.startsWith('not ok')),
    passed: lines.filter((l) => l.startsWith('ok')).length,
    output,
  };
}

export async function kernelLog(): Promise<string> {
  return (await execa('dmesg', [], { reject: false })).stdout;
}

/** The kernel log from now on: call the returned function to read what was added. */
// By timestamp rather than by line count: the ring buffer drops its oldest
// lines once it is full, which long VM runs reach.
export async function kernelLogSince(): Promise<() => Promise<string>> {
  const stamp = (line: string) => Number(/^\[\s*(\d+\.\d+)\]/.exec(line)?.[1] ?? NaN);
  const last = (await kernelLog()).split('\n').map(stamp).filter((s) => !Number.isNaN(s)).at(-1) ?? -1;
  return async () => {
    const lines = (await kernelLog()).split('\n');
    const first = lines.findIndex((l) => stamp(l) > last);
    return first < 0 ? '' : lines.slice(first).join('\n');
  };
}

export function currentMode(): string {
  return readFileSync('/sys/module/kni/parameters/kthread_mode', 'utf8').trim();
}

/** (Re)loads kni.ko with these parameters. */
export async function loadKni(params: string[]): Promise<void> {
  if (existsSync('/sys/module/kni')) await execa('rmmod', ['kni']);
  await execa('insmod', [kniKo, ...params]);
}

/** KNI_IOCTL_INFO through the probe, as JSON. */
export async function probeInfo(probe: string): Promise<Record<string, number>> {
  return JSON.parse((await execa(probe, ['info'])).stdout) as Record<string, number>;
}

/** A probe subcommand and the number of checks it must at least pass. */
export type ProbeScenario = [title: string, args: string[], minPassed: number];

/**
 * One serial ava test per scenario and kthread mode: the module is loaded in
 * that mode, the probe's checks must all pass, the kernel log must stay clean,
 * and nothing may be left alive afterwards (asked through `infoProbe`, a
 * kni-probe binary).
 */
export function probeScenarioTests(
  test: TestFn,
  probe: () => string,
  infoProbe: () => string,
  scenarios: readonly ProbeScenario[],
): void {
  for (const mode of ['single', 'multiple']) {
    for (const [title, args, minPassed] of scenarios) {
      test.serial(`kthread_mode=${mode}: ${title}`, async (t) => {
        if (!existsSync('/sys/module/kni') || currentMode() !== mode) await loadKni([`kthread_mode=${mode}`]);
        t.is(currentMode(), mode);
        const logSince = await kernelLogSince();
        const r = await runProbe(probe(), ...args);
        const newLog = await logSince();
        if (r.exitCode !== 0 || r.failed.length > 0) t.log(r.output);
        t.deepEqual(r.failed, []);
        t.is(r.exitCode, 0);
        t.true(r.passed >= minPassed, `${r.passed} checks passed, expected at least ${minPassed}`);
        t.notRegex(newLog, kernelProblem);
        t.like(await probeInfo(infoProbe()), { ifaces: 0, shmBytes: 0, threads: 0, sockets: 0 });
      });
    }
  }
}
