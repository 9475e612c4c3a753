// What outlives the service: the token file, the database, and what a restart
// does with them (reconciliation), with fake drivers.
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import Database from 'better-sqlite3';
import { Store } from '../../server/db.js';
import { loadOrCreateToken, prepareStateDir } from '../../server/state-dir.js';
import { closeHarness, FakeKni, FakeRunner, harness, type Harness } from '../lib/fakes.js';

const veth = { kind: 'packet', ifname: 'veth0' } as const;

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the token is generated once with mode 0600, reused, narrowed if loosened, and never replaced silently', (t) => {
  const dir = tmp(t);
  const p = prepareStateDir(join(dir, 'state'));
  t.is(statSync(p.dir).mode & 0o777, 0o700);
  const a = loadOrCreateToken(p.token);
  t.true(a.created);
  t.regex(a.token, /^[A-Za-z0-9_-]{43}$/);
  t.is(statSync(p.token).mode & 0o777, 0o600);
  const b = loadOrCreateToken(p.token);
  t.false(b.created);
  t.is(b.token, a.token);
  chmodSync(p.token, 0o644);
  t.is(loadOrCreateToken(p.token).token, a.token);
  t.is(statSync(p.token).mode & 0o777, 0o600);
  writeFileSync(p.token, 'short\n');
  t.throws(() => loadOrCreateToken(p.token), { message: /does not hold a kniv token/ });
});

test('the database: versioned schema, one service at a time, a newer schema refused', (t) => {
  const dir = tmp(t);
  const db = join(dir, 'kniv.db');
  const s = new Store(db);
  t.is(s.schemaVersion, 1);
  t.is(statSync(db).mode & 0o777, 0o600);
  t.throws(() => new Store(db), { message: /in use by another kniv service/ });
  s.insertInterface({ name: 'vEth0', port: veth, mtu: 1500, up: true });
  const id = '11111111-2222-3333-4444-555555555555';
  s.insertBenchmark(id, { protocols: ['tcp'], direction: 'both', durationS: 1, repeat: 1, udpPayloadBytes: 64, vhost: true }, 10);
  s.close();
  const again = new Store(db);
  t.is(again.getInterface('vEth0')?.spec.mtu, 1500, 'committed rows survive a reopen');
  // A run the previous service left behind (it crashed) is failed on start.
  t.deepEqual(again.failOrphanedBenchmarks('the service stopped while it ran'), [id]);
  t.like(again.getBenchmark(id), { state: 'failed', error: 'the service stopped while it ran' });
  again.close();
  const raw = new Database(db);
  raw.pragma('user_version = 7');
  raw.close();
  t.throws(() => new Store(db), { message: /schema version 7, newer than this kniv \(1\)/ });
});

async function running(h: Harness, name: string, nics: string[]) {
  const kernel = join(h.stateDir, 'vmlinuz');
  writeFileSync(kernel, 'k');
  const c = await h.app.inject({
    method: 'POST',
    url: '/v1/vms',
    headers: h.auth,
    payload: { name, boot: { kind: 'kernel', kernel }, nics: nics.map((i) => ({ interface: i })) },
  });
  if (c.statusCode !== 201) throw new Error(c.body);
  await h.app.inject({ method: 'POST', url: `/v1/vms/${name}/start`, headers: h.auth });
  await h.service.vms.settled();
}

test('a restart re-creates interfaces, re-adopts live VMs (degraded), marks dead ones, and reports it', async (t) => {
  const stateDir = tmp(t);
  const kni = new FakeKni();
  const runner = new FakeRunner(kni);
  const h1 = await harness(t, { stateDir, kni, runner });
  for (const name of ['vEth0', 'vEth1']) {
    await h1.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h1.auth, payload: { name, port: veth, mtu: 1400 } });
  }
  await h1.app.inject({ method: 'PATCH', url: '/v1/interfaces/vEth1', headers: h1.auth, payload: { mac: '02:12:34:56:78:9a' } });
  await running(h1, 'alive', ['vEth0']);
  await running(h1, 'doomed', ['vEth1']);
  await running(h1, 'plain', []);
  const [alive, doomed] = runner.procs;
  // The service goes away; VMs are let go, not stopped.
  await closeHarness(h1);
  t.true(alive!.detached);
  t.deepEqual(alive!.stops, []);
  t.is(kni.live.size, 0, 'interfaces go with /dev/kni');
  // One qemu dies while no service watches.
  doomed!.die({ code: null, signal: 'SIGKILL' });

  const h2 = await harness(t, { stateDir, kni, runner });
  const report = h2.service.reconcileReport!;
  t.deepEqual(report.interfaces, { recreated: ['vEth0', 'vEth1'], failed: [] });
  t.deepEqual(report.vms, { adopted: ['alive', 'plain'], died: ['doomed'], degraded: ['alive'] });
  t.deepEqual(report.benchmarks.failed, []);
  const v1 = (await h2.app.inject({ method: 'GET', url: '/v1/interfaces/vEth1', headers: h2.auth })).json();
  t.like(v1, { state: 'active', mtu: 1400, mac: '02:12:34:56:78:9a' }, 'desired state, changes included');
  const a = (await h2.app.inject({ method: 'GET', url: '/v1/vms/alive', headers: h2.auth })).json();
  t.like(a, { state: 'running', pid: alive!.pid });
  t.is(a.degraded.length, 1);
  t.regex(a.degraded[0], /nic 0 \(vEth0\).*stop and start the VM/);
  t.like((await h2.app.inject({ method: 'GET', url: '/v1/vms/plain', headers: h2.auth })).json(), { state: 'running', degraded: [] });
  t.like((await h2.app.inject({ method: 'GET', url: '/v1/vms/doomed', headers: h2.auth })).json(), {
    state: 'failed',
    error: 'qemu was no longer running when the service started',
  });
  // The degraded VM still holds its interface; the dead one released its own.
  t.deepEqual((await h2.app.inject({ method: 'GET', url: '/v1/interfaces/vEth0', headers: h2.auth })).json().socket, { attached: false, vm: 'alive' });
  t.deepEqual((await h2.app.inject({ method: 'GET', url: '/v1/interfaces/vEth1', headers: h2.auth })).json().socket, { attached: false, vm: null });
  const sys = (await h2.app.inject({ method: 'GET', url: '/v1/system', headers: h2.auth })).json();
  t.deepEqual(sys.reconcile.vms, report.vms);
  t.true(h2.logs.some((l) => l.includes('"msg":"reconciled"')));

  // Stop and start re-wires the degraded VM to the re-created interface.
  await h2.app.inject({ method: 'POST', url: '/v1/vms/alive/stop', headers: h2.auth });
  await h2.service.vms.settled();
  await new Promise((r) => setImmediate(r));
  t.is(h2.service.store.getVm('alive')!.state, 'stopped');
  await h2.app.inject({ method: 'POST', url: '/v1/vms/alive/start', headers: h2.auth });
  await h2.service.vms.settled();
  const rewired = (await h2.app.inject({ method: 'GET', url: '/v1/vms/alive', headers: h2.auth })).json();
  t.like(rewired, { state: 'running', degraded: [] });
  t.deepEqual((await h2.app.inject({ method: 'GET', url: '/v1/interfaces/vEth0', headers: h2.auth })).json().socket, { attached: true, vm: 'alive' });
});
