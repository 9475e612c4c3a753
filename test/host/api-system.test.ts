// inject() and loopback tests of benchmarks, /v1/system, /metrics, the event
// stream, the OpenAPI document and the logs.
import test from 'ava';
import { harness, type Harness } from '../lib/fakes.js';

const veth = { kind: 'packet', ifname: 'veth0' } as const;

const req = (h: Harness, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  h.app.inject({ method, url, headers: h.auth, ...(payload ? { payload } : {}) });

test('benchmarks: 202 with a resource to poll, one at a time, progress, result, history', async (t) => {
  const h = await harness(t);
  const started = await req(h, 'POST', '/v1/benchmarks', { durationS: 5 });
  t.is(started.statusCode, 202, started.body);
  const b = started.json();
  t.like(b, { state: 'running', spec: { durationS: 5, direction: 'both', vhost: true }, result: null });
  t.is(started.headers.location, `/v1/benchmarks/${b.id}`);
  const second = await req(h, 'POST', '/v1/benchmarks');
  t.is(second.statusCode, 409);
  t.like(second.json().error, { code: 'benchmark_running', details: { id: b.id } });
  t.like((await req(h, 'GET', `/v1/benchmarks/${b.id}`)).json(), { state: 'running', progress: { phase: 'booting guest', fraction: 0.1 } });
  const finished = new Promise((resolve) => h.service.bus.subscribe((e) => e.type === 'benchmark.finished' && resolve(e.data)));
  h.bench.gate.resolve();
  t.like(await finished, { id: b.id, state: 'succeeded' });
  const done = (await req(h, 'GET', `/v1/benchmarks/${b.id}`)).json();
  t.like(done, { state: 'succeeded', error: null, progress: { phase: 'done', fraction: 1 } });
  t.deepEqual([...new Set(done.result.results.map((r: { direction: string }) => r.direction))], ['host-to-guest', 'guest-to-host']);
  t.truthy(done.finishedAt);
  t.deepEqual((await req(h, 'GET', '/v1/benchmarks')).json().items.map((x: { id: string }) => x.id), [b.id]);
  t.is((await req(h, 'GET', '/v1/benchmarks/00000000-0000-0000-0000-000000000000')).statusCode, 404);
  const badId = await req(h, 'GET', '/v1/benchmarks/xyz');
  t.is(badId.statusCode, 400);
  t.is(badId.json().error.details.issues[0].field, 'params.id');
  const badBody = await req(h, 'POST', '/v1/benchmarks', { durationS: 0 });
  t.is(badBody.json().error.details.issues[0].field, 'body.durationS');
});

test('benchmarks: unavailable is 503; an interface must exist and be free', async (t) => {
  const h = await harness(t);
  const nope = await req(h, 'POST', '/v1/benchmarks', { interface: 'vEth9' });
  t.is(nope.statusCode, 404);
  h.bench.availability = { ok: false, reason: 'the kni-vhost benchmark is not part of this build yet' };
  const res = await req(h, 'POST', '/v1/benchmarks');
  t.is(res.statusCode, 503);
  t.is(res.json().error.code, 'benchmark_unavailable');
  t.is((await req(h, 'GET', '/v1/benchmarks')).json().items.length, 0);
});

test('/v1/system: kernel, module parameters, qemu, versions, state directory and the last reconciliation', async (t) => {
  const h = await harness(t);
  const res = await req(h, 'GET', '/v1/system');
  t.is(res.statusCode, 200);
  const s = res.json();
  t.like(s, {
    kernel: '6.1.0-99-amd64',
    kni: { loaded: true, abiVersion: 5, parameters: { kthread_mode: 'single' } },
    vhostNet: true,
    qemu: { available: true, version: '7.2.0' },
    versions: { kniv: '0.1.0-test', node: process.version, database: 1 },
    stateDir: h.stateDir,
    tokenFile: `${h.stateDir}/token`,
    reconcile: { interfaces: { recreated: [], failed: [] }, vms: { adopted: [], died: [], degraded: [] } },
  });
  t.false(JSON.stringify(s).includes(h.token), 'the token itself is never answered');
});

test('/metrics: Prometheus text with interface counters, VM states and request latencies; it needs the token', async (t) => {
  const h = await harness(t);
  await req(h, 'POST', '/v1/interfaces', { name: 'vEth0', port: veth });
  t.is((await h.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401);
  const res = await req(h, 'GET', '/metrics');
  t.is(res.statusCode, 200);
  t.regex(res.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  t.regex(text, /^# TYPE kniv_interface_rx_packets_total counter$/m);
  t.regex(text, /^kniv_interface_rx_packets_total\{interface="vEth0"\} \d+$/m);
  t.regex(text, /^kniv_dataplane_to_kernel_packets_total\{interface="vEth0"\} \d+$/m);
  t.regex(text, /^kniv_interface_up\{interface="vEth0"\} 1$/m);
  t.regex(text, /^kniv_vms\{state="running"\} 0$/m);
  t.regex(text, /^kniv_http_request_duration_seconds_count\{method="POST",route="\/v1\/interfaces",status="201"\} 1$/m);
  t.regex(text, /^kniv_http_request_duration_seconds_bucket\{method="POST",route="\/v1\/interfaces",status="201",le="\+Inf"\} 1$/m);
  // Every line is a comment or `name{labels} number`.
  for (const line of text.trim().split('\n')) t.regex(line, /^(# (HELP|TYPE) .+|[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+)$/);
});

test('the OpenAPI document lists every route with its schemas and error codes', async (t) => {
  const h = await harness(t);
  const doc = (await h.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
  t.is(doc.openapi, '3.1.0');
  const ops = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, m]) => Object.keys(m).map((k) => `${k.toUpperCase()} ${p}`));
  t.deepEqual(ops.sort(), [
    'DELETE /v1/interfaces/{name}',
    'DELETE /v1/vms/{name}',
    'GET /metrics',
    'GET /v1/benchmarks',
    'GET /v1/benchmarks/{id}',
    'GET /v1/events',
    'GET /v1/interfaces',
    'GET /v1/interfaces/{name}',
    'GET /v1/system',
    'GET /v1/vms',
    'GET /v1/vms/{name}',
    'GET /v1/vms/{name}/console',
    'PATCH /v1/interfaces/{name}',
    'POST /v1/benchmarks',
    'POST /v1/interfaces',
    'POST /v1/vms',
    'POST /v1/vms/{name}/reboot',
    'POST /v1/vms/{name}/start',
    'POST /v1/vms/{name}/stop',
  ]);
  const create = doc.paths['/v1/interfaces'].post;
  t.deepEqual(create.requestBody.content['application/json'].schema.required.sort(), ['name', 'port']);
  t.truthy(create.responses['201']);
  t.regex(create.responses['409'].description, /name_in_use/);
  t.regex(create.responses['503'].description, /module_unavailable/);
  t.regex(create.responses['401'].description, /unauthorized/);
  t.is(doc.paths['/v1/vms/{name}/start'].post.responses['202'].description.startsWith('Accepted'), true);
  t.deepEqual(doc.paths['/v1/vms/{name}'].get.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`), ['path:name']);
  const page = await h.app.inject({ method: 'GET', url: '/docs' });
  t.regex(page.headers['content-type'] as string, /^text\/html/);
  t.regex(page.headers['content-security-policy'] as string, /default-src 'none'/);
  t.regex(page.body, /<script src="\/docs\/docs.js">/);
});

test('events over real HTTP: state changes as SSE, ?token= for browsers, a type filter, Last-Event-ID replay, heartbeats', async (t) => {
  const h = await harness(t, { heartbeatMs: 100, countersIntervalMs: 100 });
  const base = await h.app.listen({ host: '127.0.0.1', port: 0 });
  const ac = new AbortController();
  t.teardown(() => ac.abort());

  /** Reads SSE frames from a response until `until` says stop. */
  async function read(res: Response, until: (frames: string[]) => boolean): Promise<string[]> {
    const frames: string[] = [];
    let buf = '';
    const reader = res.body!.getReader();
    while (!until(frames)) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += Buffer.from(value).toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        frames.push(buf.slice(0, i));
        buf = buf.slice(i + 2);
      }
    }
    await reader.cancel();
    return frames;
  }
  const data = (f: string) => JSON.parse(/^data: (.*)$/m.exec(f)![1]!) as { id: number; type: string; data: Record<string, unknown> };

  const res = await fetch(`${base}/v1/events?types=interface.created,interface.deleted,counters`, { headers: h.auth, signal: ac.signal });
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type')!, /^text\/event-stream/);
  const created = await req(h, 'POST', '/v1/interfaces', { name: 'vEth0', port: veth });
  t.is(created.statusCode, 201);
  await req(h, 'DELETE', '/v1/interfaces/vEth0');
  const frames = await read(res, (f) => f.some((x) => x.includes('event: interface.deleted')) && f.some((x) => x.includes('event: counters')) && f.some((x) => x === ': heartbeat'));
  const typed = frames.filter((f) => f.startsWith('id: ')).map(data);
  const changes = typed.filter((e) => e.type !== 'counters');
  t.deepEqual(changes.map((e) => e.type), ['interface.created', 'interface.deleted']);
  t.like(changes[0]!.data, { interface: { name: 'vEth0', state: 'active' } });
  t.true(typed.every((e) => ['interface.created', 'interface.deleted', 'counters'].includes(e.type)), 'the filter holds');

  // A browser's EventSource sends the token in the query; resuming replays what it missed.
  const firstId = changes[0]!.id;
  const resumed = await fetch(`${base}/v1/events?token=${h.token}&types=interface.deleted,interface.created`, {
    headers: { 'last-event-id': String(firstId) },
    signal: ac.signal,
  });
  t.is(resumed.status, 200);
  const replay = (await read(resumed, (f) => f.some((x) => x.includes('event: interface.deleted')))).filter((f) => f.startsWith('id: ')).map(data);
  t.deepEqual(replay.map((e) => e.type), ['interface.deleted'], 'only what came after Last-Event-ID');
  const bad = await fetch(`${base}/v1/events?types=nonsense`, { headers: h.auth });
  t.is(bad.status, 400);
  t.regex(((await bad.json()) as { error: { message: string } }).error.message, /^query\.types/);
  const wrong = await fetch(`${base}/v1/events?token=wrong`);
  t.is(wrong.status, 403);
  await wrong.body?.cancel();
  t.false(h.logs.join('').includes(h.token), 'the token never reaches the log');
  t.true(h.logs.some((l) => l.includes('token=[redacted]')), 'the query token is logged scrubbed');
});

test('one log line per request and per state change, never the token', async (t) => {
  const h = await harness(t);
  await req(h, 'POST', '/v1/interfaces', { name: 'vEth0', port: veth });
  await req(h, 'GET', '/v1/interfaces/vEth0');
  await h.app.inject({ method: 'GET', url: '/v1/interfaces', headers: { authorization: 'Bearer not-the-token-123' } });
  const lines = h.logs.map((l) => JSON.parse(l) as { msg: string; url?: string; status?: number });
  const requests = lines.filter((l) => l.msg === 'request');
  t.deepEqual(requests.map((l) => `${l.url} ${l.status}`), ['/v1/interfaces 201', '/v1/interfaces/vEth0 200', '/v1/interfaces 403']);
  t.is(lines.filter((l) => l.msg === 'interface created').length, 1);
  const all = h.logs.join('');
  t.false(all.includes(h.token));
  t.false(all.includes('not-the-token-123'));
});
