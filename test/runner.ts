// `kniv test` (what `npm test` runs): the host suite, then the VM suite inside
// the appliance VM once per kernel, one VM per suite. Reads each suite's TAP,
// prints it readably and ends with one summary.
import { mkdirSync, readdirSync } from 'node:fs';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { helpText, parse, UsageError, type OptionsTable } from '../bin/cli.js';
import { runAppliance, shQuote } from '../qemu/appliance.js';
import { reportFailure } from '../qemu/vm-cli.js';
import { KernelLabelSchema, type KernelLabel } from '../qemu/kernels.js';
import { projectRoot } from '../qemu/paths.js';
import { ensureDriver } from '../bench/proc.js';
import { prebuildProbes } from './lib/probe.js';

/**
 * Where a run keeps its evidence: the whole console of every guest or
 * appliance whose kernel reported a problem or whose test failed
 * (qemu/artifacts.ts). Shared read-write into the appliance VM.
 */
export const ARTIFACTS_DIR = join(projectRoot, 'build', 'test-artifacts');

const table: OptionsTable = {
  host: { type: 'boolean', help: 'run only the host suite' },
  vm: { type: 'boolean', help: 'run only the VM suites' },
  kernel: { type: 'string', multiple: true, value: '6.1|6.12', help: 'VM suites on this kernel only' },
  match: { type: 'string', multiple: true, value: 'PATTERN', help: "only tests whose title matches (ava's --match)" },
};

/** How one ava run of a VM phase ended (the "# kniv-phase" lines below). */
export interface PhaseEnd {
  name: string;
  exitCode: number;
  /** The tests ava planned (its "1..N" line); 0 when --match selected none. */
  planned: number;
  failed: number;
}

/**
 * Counts and pretty-prints the TAP stream of one or more ava runs. Inside the
 * appliance VM each VM phase's run is followed by "# kniv-phase NAME exit N".
 */
export class TapReport extends Writable {
  passed = 0;
  failed = 0;
  skipped = 0;
  readonly phases: PhaseEnd[] = [];
  private partial = '';
  private inFailure = false;
  private planned = 0;
  private failedBefore = 0;

  constructor(private readonly out: NodeJS.WritableStream) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
    cb();
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.partial) this.line(this.partial);
    cb();
  }

  private line(line: string): void {
    let m: RegExpExecArray | null;
    if ((m = /^ok \d+ - (.*?)(\s+#\s+SKIP.*)?$/i.exec(line))) {
      this.inFailure = false;
      if (m[2]) {
        this.skipped++;
        this.out.write(`  - ${m[1]} (skipped)\n`);
      } else {
        this.passed++;
        this.out.write(`  ✔ ${m[1]}\n`);
      }
    } else if ((m = /^not ok \d+ - (.*)$/.exec(line))) {
      this.inFailure = true;
      this.failed++;
      this.out.write(`  ✘ ${m[1]}\n`);
    } else if ((m = /^# kniv-phase (\S+) exit (\d+)$/.exec(line))) {
      this.inFailure = false;
      this.phases.push({ name: m[1]!, exitCode: Number(m[2]), planned: this.planned, failed: this.failed - this.failedBefore });
      this.planned = 0;
      this.failedBefore = this.failed;
    } else if ((m = /^1\.\.(\d+)$/.exec(line))) {
      this.inFailure = false;
      this.planned = Number(m[1]);
    } else if ((m = /^# {3}(.*)$/.exec(line))) {
      // A test's t.log() lines: what a run says about itself (a faulted boot
      // that was reset, the boot time), shown under the test they belong to.
      this.out.write(`      ${m[1]}\n`);
    } else if (/^(TAP version|# )/.test(line)) {
      this.inFailure = false;
    } else if (this.inFailure || line.trim() !== '') {
      this.out.write(`    ${line}\n`);
    }
  }
}

interface GroupResult {
  name: string;
  passed: number;
  failed: number;
  skipped: number;
  seconds: number;
  problem: string | undefined;
}

const AVA = join(projectRoot, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');

function avaArgs(match: string[], files: string[], concurrency?: number): string[] {
  return [AVA, '--tap', ...(concurrency ? [`--concurrency=${concurrency}`] : []), ...match.flatMap((m) => ['--match', m]), ...files];
}

export interface VmPhase {
  name: string;
  concurrency: number;
  /** Paths of compiled test files, relative to the project. */
  files: string[];
}

/** Files of the guest phase: each boots one nested guest and leaves kni.ko loaded. */
const GUEST_PHASE = ['guest', 'service-guest'];
/** Run after every other file: kni.ko holds nothing and unloads. */
const LAST = 'leftovers';

/**
 * The VM suite's phases, run in this order in one appliance VM. Most files
 * load and unload kni.ko, so they run one at a time. Under nested TCG a
 * guest's qemu keeps one of the appliance's two vCPUs busy for a minute or
 * more while the other waits, so the guest phase's files run side by side;
 * they check only what they own, and leftovers counts the whole module after
 * them. A new file runs in the serial phase unless it is listed above.
 */
export function vmPhases(testFiles: readonly string[]): VmPhase[] {
  const names = testFiles.map((f) => f.replace(/\.test\.js$/, '')).sort();
  for (const wanted of [...GUEST_PHASE, LAST]) {
    if (!names.includes(wanted)) throw new Error(`the VM suite has no ${wanted}.test.js (is dist/ built?)`);
  }
  const path = (n: string) => `dist/test/vm/${n}.test.js`;
  return [
    { name: 'serial', concurrency: 1, files: names.filter((n) => !GUEST_PHASE.includes(n) && n !== LAST).map(path) },
    { name: 'guests', concurrency: GUEST_PHASE.length, files: GUEST_PHASE.map(path) },
    { name: LAST, concurrency: 1, files: [path(LAST)] },
  ];
}

/**
 * The shell script the appliance VM runs: each phase's ava run, each followed
 * by its "# kniv-phase" line; it exits non-zero if any run did.
 */
export function vmSuiteScript(phases: readonly VmPhase[], match: string[]): string {
  const lines = ['status=0'];
  for (const p of phases) {
    lines.push(`node ${avaArgs(match, p.files, p.concurrency).map(shQuote).join(' ')}`);
    lines.push(`rc=$?; echo "# kniv-phase ${p.name} exit $rc"; [ $rc -eq 0 ] || status=1`);
  }
  lines.push('exit $status');
  return lines.join('\n');
}

/**
 * What went wrong with a VM suite's ava runs besides failed tests: a run that
 * exited non-zero without a failing test (a crashed worker, a hook that threw),
 * a phase that never reported, or one that selected no test when every test
 * was asked for.
 */
export function phaseProblems(phases: readonly VmPhase[], ends: readonly PhaseEnd[], match: string[]): string[] {
  const problems: string[] = [];
  for (const p of phases) {
    const end = ends.find((e) => e.name === p.name);
    if (!end) {
      problems.push(`the ${p.name} phase did not finish`);
    } else if (end.planned === 0 && match.length === 0) {
      problems.push(`the ${p.name} phase ran no test`);
    } else if (end.exitCode !== 0 && end.failed === 0 && end.planned > 0) {
      problems.push(`ava exited with ${end.exitCode} in the ${p.name} phase`);
    }
  }
  return problems;
}

async function hostGroup(match: string[]): Promise<GroupResult> {
  const started = Date.now();
  process.stdout.write('\n== host\n');
  const report = new TapReport(process.stdout);
  const child = execa('node', avaArgs(match, ['dist/test/host/']), {
    cwd: projectRoot,
    reject: false,
    buffer: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'inherit',
    // No KNIV_ARTIFACTS here: host tests make appliance runs fail on purpose
    // (a WARNING, a timeout), and their consoles are no evidence of anything.
    env: { FORCE_COLOR: '0' },
  });
  child.stdout.pipe(report);
  const run = await child;
  await finished(report);
  const problem = run.exitCode !== 0 && report.failed === 0 ? `ava exited with ${run.exitCode ?? run.signal}` : undefined;
  return finish('host', report, started, problem);
}

function finish(name: string, report: TapReport, started: number, problem: string | undefined): GroupResult {
  return { name, passed: report.passed, failed: report.failed, skipped: report.skipped, seconds: (Date.now() - started) / 1000, problem };
}

async function vmGroup(kernel: KernelLabel, match: string[]): Promise<GroupResult> {
  const started = Date.now();
  process.stdout.write(`\n== vm ${kernel} (appliance VM)\n`);
  const report = new TapReport(process.stdout);
  const phases = vmPhases(readdirSync(join(projectRoot, 'dist', 'test', 'vm')).filter((f) => f.endsWith('.test.js')));
  const result = await runAppliance(
    { kernel, command: ['sh', '-c', vmSuiteScript(phases, match)], cwd: projectRoot, timeoutMs: 40 * 60 * 1000, env: { FORCE_COLOR: '0' }, artifactsDir: ARTIFACTS_DIR },
    { stdout: report, stderr: process.stderr },
  );
  report.end();
  await finished(report);
  let problem: string | undefined;
  if (result.failure !== undefined) {
    reportFailure(result, process.stdout);
    problem = result.failure;
  } else {
    const problems = phaseProblems(phases, report.phases, match);
    if (problems.length > 0) problem = problems.join('; ');
  }
  return finish(`vm ${kernel}`, report, started, problem);
}

export async function runTests(argv: string[]): Promise<number> {
  const { values } = parse(argv, table, false);
  if (values.help) {
    process.stdout.write(helpText('kniv test [options]', 'Runs the host suite and, in the appliance VM, the VM suite on each kernel.', table));
    return 0;
  }
  const match = (values.match as string[] | undefined) ?? [];
  const kernels = ((values.kernel as string[] | undefined) ?? ['6.1', '6.12']).map((k) => {
    const r = KernelLabelSchema.safeParse(k);
    if (!r.success) throw new UsageError(`--kernel must be 6.1 or 6.12, not ${JSON.stringify(k)}`);
    return r.data;
  });
  const started = Date.now();
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const artifactsBefore = new Set(readdirSync(ARTIFACTS_DIR));
  const groups: GroupResult[] = [];
  if (!values.vm) groups.push(await hostGroup(match));
  if (!values.host) {
    // The VM suites' C probes and vhost-drive, compiled here in a second
    // rather than under TCG (and the VM sees build/ read-only).
    await prebuildProbes();
    await ensureDriver();
    for (const k of kernels) groups.push(await vmGroup(k, match));
  }

  process.stdout.write('\n== summary\n');
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const g of groups) {
    // A suite whose VM or runner failed counts as one more failure.
    const extra = g.problem !== undefined ? 1 : 0;
    passed += g.passed;
    failed += g.failed + extra;
    skipped += g.skipped;
    process.stdout.write(
      `  ${g.name.padEnd(10)} ${String(g.passed).padStart(4)} passed ${String(g.failed).padStart(3)} failed ${String(g.skipped).padStart(3)} skipped  ${g.seconds.toFixed(0).padStart(5)} s${g.problem ? `  (${g.problem})` : ''}\n`,
    );
  }
  process.stdout.write(`  total time ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  // Consoles only: the dashboard test keeps its screenshots in a folder here too.
  const kept = readdirSync(ARTIFACTS_DIR).filter((f) => f.endsWith('.console.log') && !artifactsBefore.has(f));
  if (kept.length > 0) process.stdout.write(`  consoles kept in ${ARTIFACTS_DIR}: ${kept.join(', ')}\n`);
  process.stdout.write('\n');
  process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  return failed === 0 && passed > 0 ? 0 : 1;
}
