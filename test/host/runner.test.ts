// `kniv test`'s VM suite plan and its reading of the TAP that comes back.
import test from 'ava';
import { execa } from 'execa';
import { finished } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import { phaseProblems, TapReport, vmPhases, vmSuiteScript } from '../runner.js';

const FILES = ['sock.test.js', 'guest.test.js', 'leftovers.test.js', 'dataplane.test.js', 'service-guest.test.js', 'module.test.js'];

test('the VM phases: every other file one at a time, the guest files side by side, leftovers last', (t) => {
  t.deepEqual(vmPhases(FILES), [
    { name: 'serial', concurrency: 1, files: ['dist/test/vm/dataplane.test.js', 'dist/test/vm/module.test.js', 'dist/test/vm/sock.test.js'] },
    { name: 'guests', concurrency: 2, files: ['dist/test/vm/guest.test.js', 'dist/test/vm/service-guest.test.js'] },
    { name: 'leftovers', concurrency: 1, files: ['dist/test/vm/leftovers.test.js'] },
  ]);
  t.throws(() => vmPhases(FILES.filter((f) => f !== 'leftovers.test.js')), { message: /no leftovers\.test\.js/ });
});

async function report(tap: string): Promise<TapReport> {
  const out = new PassThrough();
  out.resume();
  const r = new TapReport(out);
  r.end(tap);
  await finished(r);
  return r;
}

test('each phase\'s end is read with its plan and its failures', async (t) => {
  const r = await report(
    [
      'TAP version 13',
      'ok 1 - a › one',
      'not ok 2 - a › two',
      '1..2',
      '# kniv-phase serial exit 1',
      'TAP version 13',
      'ok 1 - b › three # SKIP',
      '1..1',
      '# kniv-phase guests exit 0',
      'TAP version 13',
      '1..0',
      '# kniv-phase leftovers exit 1',
      '',
    ].join('\n'),
  );
  t.like(r, { passed: 1, failed: 1, skipped: 1 });
  t.deepEqual(r.phases, [
    { name: 'serial', exitCode: 1, planned: 2, failed: 1 },
    { name: 'guests', exitCode: 0, planned: 1, failed: 0 },
    { name: 'leftovers', exitCode: 1, planned: 0, failed: 0 },
  ]);
  const phases = vmPhases(FILES);
  // With --match a phase may select nothing; without, that is a problem.
  t.deepEqual(phaseProblems(phases, r.phases, ['*three*']), []);
  t.deepEqual(phaseProblems(phases, r.phases, []), ['the leftovers phase ran no test']);
  // ava failing without a failed test (a hook threw, a worker crashed), or a phase that never ended.
  t.deepEqual(phaseProblems(phases, [{ name: 'serial', exitCode: 1, planned: 3, failed: 0 }], []), [
    'ava exited with 1 in the serial phase',
    'the guests phase did not finish',
    'the leftovers phase did not finish',
  ]);
});

test('the script runs every phase even after one fails, reports each, and exits 1 if any did', async (t) => {
  const script = vmSuiteScript(vmPhases(FILES), ["it's *"]);
  t.regex(script, /--concurrency=2' '--match' 'it'\\''s \*' 'dist\/test\/vm\/guest\.test\.js'/);
  // Run it with a `node` that fails the serial phase: the other two still run.
  const fake = `node() { case "$*" in *dataplane*) echo "not ok 1 - x"; return 1;; *) echo "ok 1 - y"; return 0;; esac; }\n`;
  const r = await execa('sh', ['-c', fake + script], { reject: false });
  t.is(r.exitCode, 1);
  t.deepEqual(
    r.stdout.split('\n').filter((l) => l.startsWith('# kniv-phase')),
    ['# kniv-phase serial exit 1', '# kniv-phase guests exit 0', '# kniv-phase leftovers exit 0'],
  );
});

test("a test's t.log() lines are shown under it; ava's own comments are not", async (t) => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const r = new TapReport(out);
  r.end(['TAP version 13', 'ok 1 - guest › boots', '#   the guest kernel faulted while booting (boot 1); resetting it', '1..1', '# tests 1', '# pass 1', ''].join('\n'));
  await finished(r);
  t.is(text, '  ✔ guest › boots\n      the guest kernel faulted while booting (boot 1); resetting it\n');
});
