// `kniv vm guest` as a user runs it: a real guest boot under TCG.
import test from 'ava';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parseNet, parseNic } from '../../qemu/guest-cli.js';
import { guestCmdline } from '../../qemu/guest-image.js';
import { isQemuWithPidfile } from '../../qemu/launcher.js';
import { VmSpecSchema } from '../../qemu/vm-spec.js';
import { alive, kniv, runKniv, waitFor } from '../lib/util.js';

test('--nic and --net syntax', (t) => {
  t.deepEqual(parseNic('tap=kvtap0'), { backend: { kind: 'tap', ifname: 'kvtap0' } });
  t.deepEqual(parseNic('fd=3,vhost=off,mac=52:54:00:00:00:01'), { backend: { kind: 'fd', fd: 3 }, vhost: false, mac: '52:54:00:00:00:01' });
  t.throws(() => parseNic('vhost=on'), { message: '--nic starts with tap=IFNAME or fd=N, not "vhost=on"' });
  t.throws(() => parseNic('fd=x'), { message: '--nic fd must be a whole number from 0 to 1048576, not "x"' });
  t.throws(() => parseNic('tap=t0,queues=4'), { message: '--nic takes vhost=on|off and mac=MAC after the backend, not "queues=4"' });
  t.deepEqual(parseNet('eth1:10.2.0.2/24'), { ifname: 'eth1', address: '10.2.0.2/24' });
  t.throws(() => parseNet('10.2.0.2/24'), { message: /--net takes IF:ADDRESS\/PREFIX/ });
});

test('the guest command line: kniv.* words, the script in base64, a length check', (t) => {
  t.is(guestCmdline({}), 'console=ttyS0 loglevel=5 mitigations=off panic=-1 cryptomgr.notests');
  t.is(
    guestCmdline({ net: [{ ifname: 'eth0', address: '10.1.0.2/24' }, { ifname: 'eth1', address: '10.2.0.2/24' }], gateway: '10.1.0.1', iperfServer: true, run: "echo 'a b'", poweroff: true }),
    `console=ttyS0 loglevel=5 mitigations=off panic=-1 cryptomgr.notests kniv.net=eth0:10.1.0.2/24,eth1:10.2.0.2/24 kniv.gw=10.1.0.1 kniv.iperf=1 kniv.run=${Buffer.from("echo 'a b'").toString('base64')} kniv.poweroff=1`,
  );
  t.throws(() => guestCmdline({ run: 'x'.repeat(1600) }), { message: /the guest command line is \d+ bytes; x86 allows 2047/ });
  t.throws(() => guestCmdline({ net: [{ ifname: 'eth0,x', address: '10.1.0.2/24' }] }), { name: 'ZodError' });
});

test.serial("a guest with --run exits with its script's status and leaves nothing behind", async (t) => {
  const before = readdirSync(tmpdir()).filter((f) => f.startsWith('kniv-guest-'));
  const r = await runKniv(['vm', 'guest', '--kernel', '6.1', '--memory', '256', '--run', 'echo "guest says $((6*7))"; exit 5']);
  t.is(r.exitCode, 5, r.all);
  t.regex(r.stdout, /^kniv-guest: ready uptime=/m);
  t.regex(r.stdout, /^guest says 42$/m);
  t.regex(r.stdout, /^kniv-guest: exit 5$/m);
  t.deepEqual(readdirSync(tmpdir()).filter((f) => f.startsWith('kniv-guest-')), before, 'its temporary run directory is gone');
});

test.serial('Ctrl-C stops the guest, exits 130, and no qemu is left', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const child = execa('node', [kniv, 'vm', 'guest', '--run-dir', dir, '--memory', '256'], { reject: false, stdin: 'ignore' });
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      if (/kniv-guest: ready/.test(d.toString())) resolve();
    });
  });
  const qemu = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => isQemuWithPidfile(p, join(dir, 'qemu.pid')));
  t.is(qemu.length, 1);
  child.kill('SIGINT');
  const r = await child;
  t.is(r.exitCode, 130);
  t.true(await waitFor(() => !alive(qemu[0]!), 5000));
  t.deepEqual(readdirSync(dir).sort(), ['console.log', 'qemu.log'], 'only the logs stay in a run directory the user gave');
});

test('usage errors exit 2 with the field named', async (t) => {
  const net = await runKniv(['vm', 'guest', '--net', 'eth0:10.1.0.300/24']);
  t.is(net.exitCode, 2);
  t.regex(net.stderr, /an address looks like 10\.1\.0\.2\/24\n.*at net\[0\]\.address/);
  const dir = mkdtempSync(join(tmpdir(), 'kniv-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const spec = join(dir, 'spec.json');
  writeFileSync(spec, JSON.stringify({ name: 'g', vcpus: 99, boot: { kind: 'kernel', kernel: '/k' } }));
  const bad = await runKniv(['vm', 'guest', '--spec', spec]);
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /at most 16 vCPUs\n.*at vcpus/);
  const clash = await runKniv(['vm', 'guest', '--spec', spec, '--iperf']);
  t.is(clash.exitCode, 2);
  t.regex(clash.stderr, /--spec describes the whole VM; drop --iperf/);
});

test('--print-boot gives the guest image as a boot for a VM spec or the REST API, and boots nothing', async (t) => {
  const r = await runKniv(['vm', 'guest', '--print-boot', '--net', 'eth0:10.1.0.2/24', '--iperf']);
  t.is(r.exitCode, 0, r.stderr);
  const boot = VmSpecSchema.shape.boot.parse(JSON.parse(r.stdout));
  t.like(boot, { kind: 'kernel', cmdline: guestCmdline({ net: [{ ifname: 'eth0', address: '10.1.0.2/24' }], iperfServer: true }) });
  if (boot.kind !== 'kernel') return;
  t.true(statSync(boot.kernel).isFile() && statSync(boot.initrd!).isFile());
});
