// inject() tests of /v1/benchmarks with a fake runner: the request's
// validation, the result's shape (path, VNET_HDR, vhost, protocol, Mbit/s,
// packets/s), lending an existing interface to a run, and aborting. The real
// runner is tested by test/host/bench-vhost.test.ts.
import test from 'ava';
import { BenchResultSchema } from '../../server/schemas.js';
import { harness, type Harness } from '../lib/fakes.js';

const tap = (ifname: string) => ({ kind: 'tap', ifname }) as const;

const req = (h: Harness, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  h.app.inject({ method, url, headers: h.auth, ...(payload ? { payload } : {}) });

async function finish(h: Harness, id: string) {
  const finished = new Promise((resolve) => h.service.bus.subscribe((e) => e.type === 'benchmark.finished' && resolve(e.data)));
  h.bench.gate.resolve();
  await finished;
  return (await req(h, 'GET', `/v1/benchmarks/${id}`)).json();
}

test('a request names every wrong field precisely', async (t) => {
  const h = await harness(t);
  const cases: [object, string, RegExp][] = [
    [{ paths: ['kni'] }, 'body.paths.0', /kni-vnethdr-off/],
    [{ paths: [] }, 'body.paths', /1/],
    [{ paths: ['tap-vnethdr-on', 'tap-vnethdr-on'] }, 'body.paths', /each path at most once/],
    [{ protocols: ['sctp'] }, 'body.protocols.0', /tcp/],
    [{ protocols: ['udp', 'udp'] }, 'body.protocols', /each protocol at most once/],
    [{ direction: 'sideways' }, 'body.direction', /both/],
    [{ durationS: 301 }, 'body.durationS', /300/],
    [{ repeat: 0 }, 'body.repeat', /1/],
    [{ repeat: 6 }, 'body.repeat', /5/],
    [{ udpPayloadBytes: 8 }, 'body.udpPayloadBytes', /16/],
    [{ udpPayloadBytes: 1473 }, 'body.udpPayloadBytes', /1472/],
    [{ vhost: 'yes' }, 'body.vhost', /boolean/],
    [{ interface: 'vEth0', paths: ['kni-vnethdr-on', 'kni-vnethdr-off'] }, 'body.paths', /exactly one kni path.*not 2/],
    [{ interface: 'vEth0', paths: ['tap-vnethdr-on'] }, 'body.paths', /exactly one kni path.*not 0/],
    [{ interface: 'bad name' }, 'body.interface', /interface name/],
    [{ seconds: 5 }, 'body', /unknown field: seconds/],
  ];
  for (const [body, field, message] of cases) {
    const res = await req(h, 'POST', '/v1/benchmarks', body);
    t.is(res.statusCode, 400, JSON.stringify(body));
    const issue = res.json().error.details.issues[0];
    t.is(issue.field, field, JSON.stringify(body));
    t.regex(issue.message, message, JSON.stringify(body));
  }
  t.is((await req(h, 'GET', '/v1/benchmarks')).json().items.length, 0, 'nothing was recorded');
});

test('defaults: all four paths, TCP and UDP both ways; every result says its path, VNET_HDR, vhost, protocol, Mbit/s and packets/s', async (t) => {
  const h = await harness(t);
  const started = await req(h, 'POST', '/v1/benchmarks');
  t.is(started.statusCode, 202, started.body);
  t.deepEqual(started.json().spec, { protocols: ['tcp', 'udp'], direction: 'both', durationS: 10, repeat: 1, udpPayloadBytes: 64, vhost: true });
  const done = await finish(h, started.json().id);
  t.is(done.state, 'succeeded');
  const result = BenchResultSchema.parse(done.result);
  t.is(result.results.length, 16);
  const paths = [...new Set(result.results.map((r) => r.path))];
  t.deepEqual(paths, ['kni-vnethdr-off', 'kni-vnethdr-on', 'tap-vnethdr-on', 'tap-vnethdr-off']);
  t.like(
    result.results.find((r) => r.path === 'kni-vnethdr-on' && r.protocol === 'udp' && r.direction === 'guest-to-host'),
    { backend: 'kni', vnetHdr: true, vhost: true, packetsPerSecond: 5000, lossPercent: 1.5, retransmits: null },
  );
  t.like(
    result.results.find((r) => r.path === 'tap-vnethdr-off' && r.protocol === 'tcp' && r.direction === 'host-to-guest'),
    { backend: 'tap', vnetHdr: false, vhost: true, packetsPerSecond: null, lossPercent: null, retransmits: 0, mbps: 1234.5 },
  );
  t.like(result, { accel: 'tcg', vhostVerified: true, interface: null, durationS: 10, repeat: 1, udpPayloadBytes: 64 });
});

test('a chosen subset: paths, one protocol, one direction, vhost off', async (t) => {
  const h = await harness(t);
  const started = await req(h, 'POST', '/v1/benchmarks', {
    paths: ['tap-vnethdr-off', 'kni-vnethdr-off'],
    protocols: ['udp'],
    direction: 'guest-to-host',
    vhost: false,
    udpPayloadBytes: 128,
  });
  t.is(started.statusCode, 202, started.body);
  const done = await finish(h, started.json().id);
  t.deepEqual(
    done.result.results.map((r: { path: string; protocol: string; direction: string; vhost: boolean }) => [r.path, r.protocol, r.direction, r.vhost]),
    [
      ['kni-vnethdr-off', 'udp', 'guest-to-host', false],
      ['tap-vnethdr-off', 'udp', 'guest-to-host', false],
    ],
  );
  t.is(done.result.udpPayloadBytes, 128);
});

test('an interface is lent to the run: reserved, its socket on with the VNET_HDR the path asks for, then given back as it was', async (t) => {
  const h = await harness(t);
  t.is((await req(h, 'POST', '/v1/interfaces', { name: 'vEth0', port: tap('kvtap0'), vnetHdr: false })).statusCode, 201);
  const started = await req(h, 'POST', '/v1/benchmarks', { interface: 'vEth0', paths: ['kni-vnethdr-on', 'tap-vnethdr-on'] });
  t.is(started.statusCode, 202, started.body);
  const id = started.json().id;
  t.deepEqual(h.bench.lent, { name: 'vEth0', fd: h.bench.lent!.fd, vnetHdr: true, peerDevice: 'kvtap0' });
  t.true(h.kni.openFds.has(h.bench.lent!.fd));
  const during = (await req(h, 'GET', '/v1/interfaces/vEth0')).json();
  t.like(during, { vnetHdr: true, socket: { attached: true, vm: `benchmark ${id}` } });

  // Nothing else may take it meanwhile.
  const del = await req(h, 'DELETE', '/v1/interfaces/vEth0');
  t.is(del.statusCode, 409);
  t.is(del.json().error.code, 'interface_in_use');
  const patch = await h.app.inject({ method: 'PATCH', url: '/v1/interfaces/vEth0', headers: h.auth, payload: { vnetHdr: false } });
  t.is(patch.json().error.code, 'interface_in_use');

  const done = await finish(h, id);
  t.is(done.result.interface, 'vEth0');
  t.deepEqual(
    [...new Set(done.result.results.map((r: { path: string }) => r.path))],
    ['kni-vnethdr-on', 'tap-vnethdr-on'],
  );
  const after = (await req(h, 'GET', '/v1/interfaces/vEth0')).json();
  t.like(after, { vnetHdr: false, socket: { attached: false, vm: null } });
  t.is(h.kni.openFds.size, 0, 'the socket descriptor was closed');
  t.is(h.kni.live.get('vEth0')?.socketFd, undefined, 'the socket was disabled');
});

test("without paths, an interface runs its own KNI path at its current VNET_HDR; the interface must be free and have a TAP port", async (t) => {
  const h = await harness(t);
  await req(h, 'POST', '/v1/interfaces', { name: 'vEth0', port: tap('kvtap0'), vnetHdr: true });
  await req(h, 'POST', '/v1/interfaces', { name: 'vEth1', port: { kind: 'packet', ifname: 'veth0' } });

  const packet = await req(h, 'POST', '/v1/benchmarks', { interface: 'vEth1' });
  t.is(packet.statusCode, 409);
  t.like(packet.json().error, { code: 'invalid_state', details: { port: 'packet', allowed: ['tap'] } });
  t.is((await req(h, 'GET', '/v1/benchmarks')).json().items.length, 0);

  const started = await req(h, 'POST', '/v1/benchmarks', { interface: 'vEth0', protocols: ['tcp'] });
  t.is(started.statusCode, 202, started.body);
  t.like(h.bench.lent, { name: 'vEth0', vnetHdr: true });
  const done = await finish(h, started.json().id);
  t.deepEqual([...new Set(done.result.results.map((r: { path: string }) => r.path))], ['kni-vnethdr-on']);
  t.like((await req(h, 'GET', '/v1/interfaces/vEth0')).json(), { vnetHdr: true, socket: { attached: false } });
});

test('a failed run gives the interface back too', async (t) => {
  const h = await harness(t);
  await req(h, 'POST', '/v1/interfaces', { name: 'vEth0', port: tap('kvtap0') });
  h.bench.fail = 'the guest did not boot';
  const started = await req(h, 'POST', '/v1/benchmarks', { interface: 'vEth0' });
  const done = await finish(h, started.json().id);
  t.like(done, { state: 'failed', error: 'the guest did not boot', result: null });
  t.like((await req(h, 'GET', '/v1/interfaces/vEth0')).json(), { socket: { attached: false, vm: null } });
  t.is(h.kni.openFds.size, 0);
});

test('closing the service aborts the running benchmark, which is recorded as failed', async (t) => {
  const h = await harness(t);
  const started = await req(h, 'POST', '/v1/benchmarks', { paths: ['tap-vnethdr-on'] });
  await h.service.benchmarks.close();
  t.true(h.bench.aborted);
  t.like((await req(h, 'GET', `/v1/benchmarks/${started.json().id}`)).json(), { state: 'failed', error: 'the benchmark was aborted' });
  const again = await req(h, 'POST', '/v1/benchmarks');
  t.is(again.statusCode, 202, 'a new run may start once the aborted one settled');
});
