// `kniv start` (what `npm start` runs after set-up): here the host cannot load
// modules, so it runs the service inside the appliance VM with the port
// forwarded and the state directory shared read-write from the host.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { addonAbiVersion } from '../../native/index.js';
import { kernel } from '../../qemu/kernels.js';
import { alive, startKniv, waitFor } from '../lib/util.js';

const start = (t: ExecutionContext, port: number, stateDir: string) => startKniv(t, ['--port', String(port), '--state-dir', stateDir]);

test('kniv start serves the API from the appliance VM; its state lives on the host and survives the VM; Ctrl-C stops it', async (t) => {
  const port = 18000 + (process.pid % 1000);
  const stateDir = mkdtempSync(join(tmpdir(), 'kniv-start-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const first = await start(t, port, stateDir);
  t.is(first.url, `http://127.0.0.1:${port}/`);
  t.regex(first.output(), new RegExp(`bearer token in ${join(stateDir, 'token')}`));

  const res = await fetch(`${first.url}health`);
  t.is(res.status, 200);
  const body = (await res.json()) as { kernel: string; kni: { loaded: boolean; abiVersion: number } };
  t.is(body.kernel, kernel('6.1').release);
  t.true(body.kni.loaded);
  // The module in the VM and the addon here are built from one kni_uapi.h.
  t.is(body.kni.abiVersion, addonAbiVersion);

  // The token was written by the service inside the VM, onto the host.
  const token = readFileSync(join(stateDir, 'token'), 'utf8').trim();
  t.is(statSync(join(stateDir, 'token')).mode & 0o777, 0o600);
  const auth = { authorization: `Bearer ${token}` };
  t.is((await fetch(`${first.url}v1/system`)).status, 401);
  const created = await fetch(`${first.url}v1/interfaces`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'kvstart0', port: { kind: 'tap', ifname: 'kvstap0' }, mtu: 1400 }),
  });
  t.is(created.status, 201, await created.text());

  t.is(first.qemu.length, 1);
  first.child.kill('SIGINT');
  const r = await first.child;
  t.is(r.exitCode, 0, r.all);
  t.regex(r.all ?? '', /kniv: stopped/);
  t.true(await waitFor(() => !alive(first.qemu[0]!), 10_000));
  await t.throwsAsync(fetch(`${first.url}health`, { signal: AbortSignal.timeout(2000) }));

  // A new appliance VM: the service finds its desired state on the host and re-creates the interface.
  const second = await start(t, port, stateDir);
  const sys = (await (await fetch(`${second.url}v1/system`, { headers: auth })).json()) as { reconcile: { interfaces: { recreated: string[] } } };
  t.deepEqual(sys.reconcile.interfaces.recreated, ['kvstart0']);
  const iface = (await (await fetch(`${second.url}v1/interfaces/kvstart0`, { headers: auth })).json()) as { state: string; mtu: number };
  t.like(iface, { state: 'active', mtu: 1400 });
  second.child.kill('SIGINT');
  t.is((await second.child).exitCode, 0);
  t.true(await waitFor(() => !alive(second.qemu[0]!), 10_000));
});
