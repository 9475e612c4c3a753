// `kniv vm run` as users and CI see it: real qemu, real Debian kernels.
import test from 'ava';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { kernel } from '../../qemu/kernels.js';
import { projectRoot } from '../../qemu/paths.js';
import { alive, childrenNamed, kniv, runKniv, waitFor } from '../lib/util.js';

// Each test boots VMs; on two cores they run one at a time.
test.serial('--kernel 6.1 and --kernel 6.12 run the command on those kernels', async (t) => {
  for (const [label, prefix] of [['6.1', 'Linux version 6.1.'], ['6.12', 'Linux version 6.12.']] as const) {
    const r = await runKniv(['vm', 'run', '--kernel', label, '--', 'cat', '/proc/version']);
    t.is(r.exitCode, 0, r.all);
    t.true(r.stdout.startsWith(prefix), r.stdout);
    t.true(r.stdout.includes(kernel(label).release));
  }
});

test.serial("the command's exit status, stdout and stderr come back separately", async (t) => {
  const r = await runKniv(['vm', 'run', '--', 'sh', '-c', 'pwd; echo to-stderr >&2; exit 7']);
  t.is(r.exitCode, 7);
  t.is(r.stdout, projectRoot);
  t.is(r.stderr, 'to-stderr');
});

test.serial("the host's /tmp is visible and writable inside, writes stay inside", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-vm-cwd-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'from-host'), 'hello from the host');
  const r = await runKniv(['vm', 'run', '--no-kni', '--', 'sh', '-c', 'cat from-host && echo x > from-guest && pwd'], { cwd: dir });
  t.is(r.exitCode, 0, r.all);
  t.is(r.stdout, `hello from the host${dir}`);
  t.false(existsSync(join(dir, 'from-guest')), 'the guest writes into its overlay, not the host');
});

test.serial('arguments reach the command verbatim, quotes and all', async (t) => {
  const weird = ["it's", 'a b', '$HOME', '"q"', '`x`', ';', ''];
  const r = await runKniv(['vm', 'run', '--no-kni', '--', 'node', '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', ...weird]);
  t.is(r.exitCode, 0, r.all);
  t.deepEqual(JSON.parse(r.stdout), weird);
});

test.serial('a module that WARNs on load fails the run even though insmod succeeded', async (t) => {
  const k = kernel('6.1');
  const dir = join(projectRoot, 'build', 'fixtures', 'warn-module', k.release);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(projectRoot, 'test', 'fixtures', 'warn-module'), dir, { recursive: true });
  await execa('make', ['-C', k.kdir, `M=${dir}`, 'modules']);

  const r = await runKniv(['vm', 'run', '--kernel', '6.1', '--', 'sh', '-c', `insmod ${dir}/kni_test_warn.ko && echo insmod-succeeded`]);
  t.is(r.exitCode, 125, r.all);
  t.is(r.stdout, 'insmod-succeeded');
  t.regex(r.stderr, /the appliance kernel reported a problem: .*WARNING: /);
  t.regex(r.stderr, /--- kernel console \(last \d+ lines\) ---/);
  t.regex(r.stderr, /deliberate warning for the kniv console detector/);
});

test.serial('--timeout stops a command that runs too long, with status 124', async (t) => {
  const r = await runKniv(['vm', 'run', '--timeout', '15', '--', 'sleep', '600']);
  t.is(r.exitCode, 124, r.all);
  t.regex(r.stderr, /did not finish within 15000 ms/);
});

async function interrupted(t: import('ava').ExecutionContext, signal: NodeJS.Signals) {
  const child = execa('node', [kniv, 'vm', 'run', '--', 'sh', '-c', 'echo ready; exec sleep 600'], { reject: false, stdin: 'ignore' });
  const pid = child.pid!;
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
  });
  const qemu = childrenNamed(pid, 'qemu-system');
  t.is(qemu.length, 1, 'one qemu runs under kniv');
  process.kill(pid, signal);
  const r = await child;
  t.true(await waitFor(() => !alive(qemu[0]!), 10_000), `qemu ${qemu[0]} is gone after ${signal}`);
  return r;
}

test.serial('Ctrl-C (SIGINT) stops the VM and exits 130', async (t) => {
  const r = await interrupted(t, 'SIGINT');
  t.is(r.exitCode, 130);
  t.regex(r.stderr, /interrupted; the VM was stopped/);
});

test.serial('SIGTERM stops the VM too', async (t) => {
  const r = await interrupted(t, 'SIGTERM');
  t.is(r.exitCode, 130);
});

test.serial('if kniv itself is killed with SIGKILL, qemu dies with it', async (t) => {
  const r = await interrupted(t, 'SIGKILL');
  t.is(r.signal, 'SIGKILL');
});

test.serial('interrupted runs leave no temporary files behind', (t) => {
  const leftovers = readdirSync(join(projectRoot, 'build', 'vm')).filter((f) => !/^initramfs-.*\.cpio$/.test(f));
  t.deepEqual(leftovers, []);
});

test('usage errors exit 2 with a message', async (t) => {
  const none = await runKniv(['vm', 'run']);
  t.is(none.exitCode, 2);
  t.regex(none.stderr, /a command is required/);
  const bad = await runKniv(['vm', 'run', '--kernel', '5.10', '--', 'true']);
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /--kernel must be 6.1 or 6.12, not "5.10"/);
  const param = await runKniv(['vm', 'run', '--kni-param', 'kthread_mode=x;reboot', '--', 'true']);
  t.is(param.exitCode, 2);
  t.regex(param.stderr, /name=value/);
});

test.serial('output comes back byte for byte', async (t) => {
  const r = await execa('node', [kniv, 'vm', 'run', '--no-kni', '--', 'printf', 'a\\nb\\r\\n\\001\\377'], { encoding: 'buffer', reject: false });
  t.is(r.exitCode, 0);
  t.deepEqual([...r.stdout], [...Buffer.from('a\nb\r\n\x01\xff', 'latin1')]);
});
