// `kniv serve` as a process on this host, with the real drivers: here there is
// no kni.ko, so interfaces are 503 with the reason; on a unix socket.
import { request } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { kniv } from '../lib/util.js';

function call(socketPath: string, method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

test('kniv serve --socket: mode 0600, token file 0600, the real KNI driver answers 503 without kni.ko, SIGTERM exits 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-serve-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'api.sock');
  const child = execa('node', [kniv, 'serve', '--socket', socket, '--state-dir', join(dir, 'state')], { reject: false, all: true, stdin: 'ignore' });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.all.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('kniv: serving')) resolve();
    });
    void child.then(() => reject(new Error(output)));
  });
  t.regex(output, new RegExp(`kniv: serving unix:${socket} .*bearer token in ${join(dir, 'state', 'token')}, new`));
  t.is(statSync(socket).mode & 0o777, 0o600);
  t.is(statSync(join(dir, 'state', 'token')).mode & 0o777, 0o600);
  const token = readFileSync(join(dir, 'state', 'token'), 'utf8').trim();
  const auth = { authorization: `Bearer ${token}` };

  t.is((await call(socket, 'GET', '/health')).status, 200);
  t.is((await call(socket, 'GET', '/v1/interfaces')).status, 401);
  const res = await call(socket, 'POST', '/v1/interfaces', auth, { name: 'vEth0', port: { kind: 'tap', ifname: 'kvtap0' } });
  t.is(res.status, 503);
  t.deepEqual(JSON.parse(res.body), { error: { code: 'module_unavailable', message: 'kni.ko is not loaded (/dev/kni does not exist)' } });
  const sys = JSON.parse((await call(socket, 'GET', '/v1/system', auth)).body);
  t.like(sys, { kni: { loaded: false }, stateDir: join(dir, 'state'), versions: { database: 1 } });

  child.kill('SIGTERM');
  const r = await child;
  t.is(r.exitCode, 0, r.all);
  t.false(r.all!.includes(token), 'the token never reaches the log');
  t.regex(r.all!, /"method":"POST","url":"\/v1\/interfaces","status":503/);
});
