// QmpClient against a real qemu (TCG, no guest: the CPUs never leave -S or
// SeaBIOS), and against a fake server only for what qemu will not do.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { QmpClient, QmpDisconnectedError, QmpError, QmpTimeoutError, type QmpEvent } from '../../qemu/qmp.js';
import { alive, waitFor } from '../lib/util.js';

interface Qemu {
  child: ResultPromise;
  pid: number;
  sock: string;
}

function startQemu(t: import('ava').ExecutionContext): Qemu {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-qmp-'));
  const sock = join(dir, 'qmp.sock');
  const child = execa(
    'setpriv',
    ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', '-nodefaults', '-no-user-config', '-display', 'none', '-accel', 'tcg', '-S',
      '-chardev', `socket,id=qmp,path=${sock},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control'],
    { reject: false, stdin: 'ignore' },
  );
  const pid = child.pid!;
  t.teardown(async () => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    await child;
    rmSync(dir, { recursive: true, force: true });
  });
  return { child, pid, sock };
}

test('greeting, capabilities, query-status, stop/cont with their events, then quit', async (t) => {
  const q = startQemu(t);
  const qmp = await QmpClient.connect(q.sock, { retry: true });
  t.is(qmp.greeting.version.qemu.major, 7);
  t.like(await qmp.execute('query-status'), { status: 'prelaunch', running: false });

  const events: QmpEvent[] = [];
  qmp.on('event', (e) => events.push(e));
  await qmp.execute('cont');
  t.like(await qmp.execute('query-status'), { status: 'running', running: true });
  await qmp.execute('stop');
  t.like(await qmp.execute('query-status'), { status: 'paused', running: false });
  await qmp.execute('cont');
  t.deepEqual(events.map((e) => e.event), ['RESUME', 'STOP', 'RESUME']);
  t.true(events.every((e) => e.timestamp.seconds > 0));

  const shutdown = qmp.waitForEvent('SHUTDOWN');
  t.deepEqual(await qmp.execute('quit'), {});
  t.like((await shutdown).data, { guest: false, reason: 'host-qmp-quit' });
  await qmp.closed;
  const r = await q.child;
  t.is(r.exitCode, 0);
});

test('an error answer rejects with its class and description', async (t) => {
  const q = startQemu(t);
  const qmp = await QmpClient.connect(q.sock, { retry: true });
  const err = await t.throwsAsync(qmp.execute('no-such-command'), { instanceOf: QmpError });
  t.is(err.errorClass, 'CommandNotFound');
  t.is(err.message, 'QMP no-such-command: CommandNotFound: The command no-such-command has not been found');
  const bad = await t.throwsAsync(qmp.execute('query-status', { bogus: 1 }), { instanceOf: QmpError });
  t.is(bad.errorClass, 'GenericError');
  t.like(await qmp.execute('query-status'), { status: 'prelaunch' }, 'the connection is still usable');
  await qmp.close();
});

test('answers are matched by id even when many commands are in flight', async (t) => {
  const q = startQemu(t);
  const qmp = await QmpClient.connect(q.sock, { retry: true });
  const names = ['query-status', 'query-name', 'query-version', 'query-kvm', 'query-status'];
  const answers = await Promise.all(names.map((n) => qmp.execute<Record<string, unknown>>(n)));
  t.like(answers[0], { status: 'prelaunch' });
  t.deepEqual(answers[1], {});
  t.like(answers[2], { qemu: { major: 7 } });
  t.like(answers[3], { enabled: false });
  t.like(answers[4], { status: 'prelaunch' });
  await qmp.close();
});

test('a command that gets no answer times out; the late answer is ignored and the client goes on', async (t) => {
  const q = startQemu(t);
  const qmp = await QmpClient.connect(q.sock, { retry: true });
  process.kill(q.pid, 'SIGSTOP');
  try {
    const err = await t.throwsAsync(qmp.execute('query-status', undefined, { timeoutMs: 300 }), { instanceOf: QmpTimeoutError });
    t.regex(err.message, /^QMP command "query-status" got no answer from .* within 300 ms$/);
  } finally {
    process.kill(q.pid, 'SIGCONT');
  }
  t.deepEqual(await qmp.execute('query-name'), {}, 'the stale query-status answer is not taken for this one');
  await qmp.close();
});

test('when the connection drops, every waiting command is rejected with its name', async (t) => {
  const q = startQemu(t);
  const qmp = await QmpClient.connect(q.sock, { retry: true });
  const closeReasons: unknown[] = [];
  qmp.on('close', (e) => closeReasons.push(e));
  process.kill(q.pid, 'SIGSTOP');
  const a = qmp.execute('query-status');
  const b = qmp.execute('query-version');
  const iter = qmp.events();
  const iterated = (async () => {
    const seen = [];
    for await (const e of iter) seen.push(e);
    return seen;
  })();
  process.kill(q.pid, 'SIGKILL');
  const ea = await t.throwsAsync(a, { instanceOf: QmpDisconnectedError });
  t.regex(ea.message, /closed while "query-status" was waiting for its answer/);
  const eb = await t.throwsAsync(b, { instanceOf: QmpDisconnectedError });
  t.regex(eb.message, /closed while "query-version" was waiting for its answer/);
  t.deepEqual(await iterated, [], 'the event iterator ends with the connection');
  t.false(qmp.isOpen);
  t.is(closeReasons.length, 1);
  const after = await t.throwsAsync(qmp.execute('query-status'), { instanceOf: QmpDisconnectedError });
  t.regex(after.message, /is closed; cannot run "query-status"/);
  t.true(await waitFor(() => !alive(q.pid), 5000));
});

test('closing the client rejects its own waiting commands and leaves qemu running', async (t) => {
  const q = startQemu(t);
  const qmp = await QmpClient.connect(q.sock, { retry: true });
  process.kill(q.pid, 'SIGSTOP');
  const a = qmp.execute('query-status');
  await qmp.close();
  await t.throwsAsync(a, { instanceOf: QmpDisconnectedError });
  process.kill(q.pid, 'SIGCONT');
  t.true(alive(q.pid));
  const again = await QmpClient.connect(q.sock);
  t.like(await again.execute('query-status'), { status: 'prelaunch' }, 'qemu accepts a new client');
  await again.close();
});

test('connecting: a missing socket fails at once without retry, and after the timeout with it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-qmp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const missing = join(dir, 'none.sock');
  const e1 = await t.throwsAsync(QmpClient.connect(missing), { instanceOf: QmpDisconnectedError });
  t.regex(e1.message, /^cannot connect to QMP at .*none\.sock: connect ENOENT/);
  const e2 = await t.throwsAsync(QmpClient.connect(missing, { retry: true, timeoutMs: 300 }), { instanceOf: QmpDisconnectedError });
  t.regex(e2.message, /ENOENT/);
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('qemu exited')), 100);
  const e3 = await t.throwsAsync(QmpClient.connect(missing, { retry: true, timeoutMs: 10_000, signal: ac.signal }));
  t.regex(e3.message, /gave up connecting to QMP at .*: Error: qemu exited/);
});

// qemu never sends garbage or withholds its greeting; a fake server does.
async function fakeServer(t: import('ava').ExecutionContext, onClient: (write: (s: string) => void, lines: string[]) => void): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-qmp-'));
  const path = join(dir, 'fake.sock');
  const server: Server = createServer((sock) => {
    const lines: string[] = [];
    sock.on('data', (d) => lines.push(...d.toString().split('\n').filter(Boolean)));
    onClient((s) => sock.write(s), lines);
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.teardown(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return path;
}

test('garbage from the server is reported, not fatal', async (t) => {
  const path = await fakeServer(t, (write, lines) => {
    write('{"QMP": {"version": {"qemu": {"major": 9, "minor": 0, "micro": 0}, "package": ""}, "capabilities": []}}\r\n');
    const answer = () => {
      for (const l of lines.splice(0)) {
        const { id } = JSON.parse(l) as { id: string };
        write(`%%% noise %%%\r\n{"return": {}, "id": "${id}"}\r\n`);
      }
    };
    setInterval(answer, 10).unref();
  });
  const qmp = await QmpClient.connect(path);
  const invalid: string[] = [];
  qmp.on('invalid', (m) => invalid.push(m.line));
  t.deepEqual(await qmp.execute('anything'), {});
  t.true(invalid.includes('%%% noise %%%'));
  await qmp.close();
});

test('a server that never greets times out with a hint', async (t) => {
  const path = await fakeServer(t, () => undefined);
  const err = await t.throwsAsync(QmpClient.connect(path, { timeoutMs: 300 }), { instanceOf: QmpTimeoutError });
  t.regex(err.message, /no QMP greeting .* \(is another client connected to it\?\)/);
});

test('a server whose first line is not a greeting is refused', async (t) => {
  const path = await fakeServer(t, (write) => write('{"return": {}}\n'));
  const err = await t.throwsAsync(QmpClient.connect(path), { instanceOf: QmpDisconnectedError });
  t.regex(err.message, /does not speak QMP/);
});
