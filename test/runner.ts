// `kniv test` (what `npm test` runs): the host suite, then the VM suite inside
// the appliance VM once per kernel, one VM per suite. Reads each suite's TAP,
// prints it readably and ends with one summary.
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { helpText, parse, UsageError, type OptionsTable } from '../bin/cli.js';
import { runAppliance } from '../qemu/appliance.js';
import { reportFailure } from '../qemu/vm-cli.js';
import { KernelLabelSchema, type KernelLabel } from '../qemu/kernels.js';
import { projectRoot } from '../qemu/paths.js';
import { prebuildProbes } from './lib/probe.js';

const table: OptionsTable = {
  host: { type: 'boolean', help: 'run only the host suite' },
  vm: { type: 'boolean', help: 'run only the VM suites' },
  kernel: { type: 'string', multiple: true, value: '6.1|6.12', help: 'VM suites on this kernel only' },
  match: { type: 'string', multiple: true, value: 'PATTERN', help: "only tests whose title matches (ava's --match)" },
};

/** Counts and pretty-prints the TAP stream of one ava run. */
export class TapReport extends Writable {
  passed = 0;
  failed = 0;
  skipped = 0;
  private partial = '';
  private inFailure = false;

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
    } else if (/^(TAP version|1\.\.\d+|# )/.test(line)) {
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

// VM test files load and unload kni.ko, so they run one file at a time.
function avaArgs(dir: 'host' | 'vm', match: string[]): string[] {
  return [
    join(projectRoot, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'),
    '--tap',
    ...(dir === 'vm' ? ['--concurrency=1'] : []),
    ...match.flatMap((m) => ['--match', m]),
    `dist/test/${dir}/`,
  ];
}

async function hostGroup(match: string[]): Promise<GroupResult> {
  const started = Date.now();
  process.stdout.write('\n== host\n');
  const report = new TapReport(process.stdout);
  const child = execa('node', avaArgs('host', match), {
    cwd: projectRoot,
    reject: false,
    buffer: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'inherit',
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
  const result = await runAppliance(
    { kernel, command: ['node', ...avaArgs('vm', match)], cwd: projectRoot, timeoutMs: 40 * 60 * 1000, env: { FORCE_COLOR: '0' } },
    { stdout: report, stderr: process.stderr },
  );
  report.end();
  await finished(report);
  let problem: string | undefined;
  if (result.failure !== undefined) {
    reportFailure(result, process.stdout);
    problem = result.failure;
  } else if (result.exitCode !== 0 && report.failed === 0) {
    problem = `ava exited with ${result.exitCode}`;
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
  const groups: GroupResult[] = [];
  if (!values.vm) groups.push(await hostGroup(match));
  if (!values.host) {
    // The VM suites' C probes, compiled here in a second rather than under TCG.
    await prebuildProbes();
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
  process.stdout.write(`  total time ${((Date.now() - started) / 1000).toFixed(0)} s\n\n`);
  process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  return failed === 0 && passed > 0 ? 0 : 1;
}
