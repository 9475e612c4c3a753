// inject() tests of /v1/interfaces, auth and the error shape, against a fake KNI driver.
import test from 'ava';
import { harness } from '../lib/fakes.js';

const veth = { kind: 'packet', ifname: 'veth0' } as const;

function issues(body: { error: { details?: unknown } }): { field: string; message: string }[] {
  return (body.error.details as { issues: { field: string; message: string }[] }).issues;
}

test('every route but the public ones needs the token: 401 without, 403 with a wrong one', async (t) => {
  const h = await harness(t);
  const none = await h.app.inject({ method: 'GET', url: '/v1/interfaces' });
  t.is(none.statusCode, 401);
  t.is(none.headers['www-authenticate'], 'Bearer realm="kniv"');
  t.is(none.json().error.code, 'unauthorized');
  const wrong = await h.app.inject({ method: 'GET', url: '/v1/interfaces', headers: { authorization: 'Bearer nope' } });
  t.is(wrong.statusCode, 403);
  t.is(wrong.json().error.code, 'forbidden');
  const basic = await h.app.inject({ method: 'GET', url: '/v1/interfaces', headers: { authorization: `Basic ${h.token}` } });
  t.is(basic.statusCode, 401);
  const query = await h.app.inject({ method: 'GET', url: `/v1/interfaces?token=${h.token}` });
  t.is(query.statusCode, 401, 'a token in the URL is accepted only by the event stream');
  t.regex(query.json().error.message, /only on \/v1\/events/);
  for (const url of ['/v1/system', '/metrics', '/v1/vms', '/v1/benchmarks', '/v1/events', '/nope']) {
    t.is((await h.app.inject({ method: 'GET', url })).statusCode, 401, url);
  }
  for (const url of ['/health', '/docs', '/docs/docs.js', '/docs/docs.css', '/v1/openapi.json']) {
    t.is((await h.app.inject({ method: 'GET', url })).statusCode, 200, url);
  }
  t.is((await h.app.inject({ method: 'GET', url: '/v1/interfaces', headers: h.auth })).statusCode, 200);
});

test('unknown routes are 404 in the common error shape', async (t) => {
  const h = await harness(t);
  const res = await h.app.inject({ method: 'GET', url: '/v1/nothing?x=1', headers: h.auth });
  t.is(res.statusCode, 404);
  t.deepEqual(res.json(), { error: { code: 'not_found', message: 'no route GET /v1/nothing' } });
});

test('create, list, get, delete an interface', async (t) => {
  const h = await harness(t);
  const res = await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name: 'vEth0', port: veth } });
  t.is(res.statusCode, 201, res.body);
  t.is(res.headers.location, '/v1/interfaces/vEth0');
  const body = res.json();
  t.like(body, { name: 'vEth0', state: 'active', error: null, port: veth, mtu: 1500, maxMtu: 1500, up: true, carrier: true, socket: { attached: false, vm: null } });
  t.regex(body.mac, /^02:/);
  t.is(body.counters.netdev.rxPackets > 0, true);

  const list = await h.app.inject({ method: 'GET', url: '/v1/interfaces', headers: h.auth });
  t.deepEqual(list.json().items.map((i: { name: string }) => i.name), ['vEth0']);
  const one = await h.app.inject({ method: 'GET', url: '/v1/interfaces/vEth0', headers: h.auth });
  t.is(one.statusCode, 200);
  t.true(one.json().counters.netdev.rxPackets > body.counters.netdev.rxPackets, 'counters are read live');

  t.is((await h.app.inject({ method: 'DELETE', url: '/v1/interfaces/vEth0', headers: h.auth })).statusCode, 204);
  t.false(h.kni.live.has('vEth0'), 'the driver released it');
  const gone = await h.app.inject({ method: 'GET', url: '/v1/interfaces/vEth0', headers: h.auth });
  t.is(gone.statusCode, 404);
  t.is(gone.json().error.code, 'not_found');
  t.is((await h.app.inject({ method: 'DELETE', url: '/v1/interfaces/vEth0', headers: h.auth })).statusCode, 404);
});

test('validation errors name the exact field and reason', async (t) => {
  const h = await harness(t);
  const post = (payload: unknown) => h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: payload as object });
  const cases: [unknown, string, RegExp][] = [
    [{ port: veth }, 'body.name', /expected string/i],
    [{ name: 'way-too-long-name-x', port: veth }, 'body.name', /1 to 15/],
    [{ name: 'a b', port: veth }, 'body.name', /interface name/],
    [{ name: 'vEth0' }, 'body.port', /./],
    [{ name: 'vEth0', port: { kind: 'wire' } }, 'body.port.kind', /./],
    [{ name: 'vEth0', port: { kind: 'packet' } }, 'body.port.ifname', /./],
    [{ name: 'vEth0', port: veth, mtu: 10 }, 'body.mtu', />=68|68/],
    [{ name: 'vEth0', port: veth, mtu: 1500.5 }, 'body.mtu', /int/i],
    [{ name: 'vEth0', port: veth, mtu: 3000, maxMtu: 2000 }, 'body.mtu', /at most maxMtu/],
    [{ name: 'vEth0', port: veth, mac: '01:00:00:00:00:01' }, 'body.mac', /unicast/],
    [{ name: 'vEth0', port: veth, mac: 'zz' }, 'body.mac', /MAC address/],
    [{ name: 'vEth0', port: veth, colour: 'red' }, 'body', /unknown field: colour/],
    [{ name: 'vEth0', port: { ...veth, extra: 1 } }, 'body.port', /unknown field: extra/],
  ];
  for (const [payload, field, reason] of cases) {
    const res = await post(payload);
    t.is(res.statusCode, 400, JSON.stringify(payload));
    const body = res.json();
    t.is(body.error.code, 'invalid_request');
    t.is(issues(body)[0]!.field, field, JSON.stringify(payload));
    t.regex(issues(body)[0]!.message, reason, JSON.stringify(payload));
    t.is(body.error.message, `${field}: ${issues(body)[0]!.message}`);
  }
  t.is(h.kni.created.length, 0, 'nothing reached the driver');
});

test('request bodies: malformed JSON is 400, another media type 415, too large 413', async (t) => {
  const h = await harness(t, { bodyLimit: 1024 });
  const bad = await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: { ...h.auth, 'content-type': 'application/json' }, payload: '{"name":' });
  t.is(bad.statusCode, 400);
  t.is(bad.json().error.code, 'invalid_request');
  const text = await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: { ...h.auth, 'content-type': 'text/plain' }, payload: 'name=x' });
  t.is(text.statusCode, 415);
  t.is(text.json().error.code, 'unsupported_media_type');
  const big = await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name: 'vEth0', port: veth, pad: 'x'.repeat(2000) } });
  t.is(big.statusCode, 413);
  t.is(big.json().error.code, 'payload_too_large');
});

test('conflicts: a name in use in the service or on the host is 409', async (t) => {
  const h = await harness(t);
  const post = (name: string) => h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name, port: veth } });
  t.is((await post('vEth0')).statusCode, 201);
  const again = await post('vEth0');
  t.is(again.statusCode, 409);
  t.is(again.json().error.code, 'name_in_use');
  const host = await post('eth0');
  t.is(host.statusCode, 409);
  t.is(host.json().error.code, 'name_in_use');
  t.regex(host.json().error.message, /already exists on this host/);
});

test('a packet port on a host interface that does not exist is a 400 on body.port.ifname', async (t) => {
  const h = await harness(t);
  const res = await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name: 'vEth0', port: { kind: 'packet', ifname: 'nosuch0' } } });
  t.is(res.statusCode, 400);
  t.is(issues(res.json())[0]!.field, 'body.port.ifname');
  t.is((await h.app.inject({ method: 'GET', url: '/v1/interfaces/vEth0', headers: h.auth })).statusCode, 404, 'nothing was stored');
});

test('module unavailable is 503 with the reason', async (t) => {
  const h = await harness(t);
  h.kni.availability = { ok: false, reason: 'kni.ko is not loaded (/dev/kni does not exist)' };
  const res = await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name: 'vEth0', port: veth } });
  t.is(res.statusCode, 503);
  t.deepEqual(res.json(), { error: { code: 'module_unavailable', message: 'kni.ko is not loaded (/dev/kni does not exist)' } });
});

test('PATCH changes MTU, MAC, up and carrier, and the changes are the desired state', async (t) => {
  const h = await harness(t);
  await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name: 'vEth0', port: veth, maxMtu: 9000 } });
  const patch = (payload: object) => h.app.inject({ method: 'PATCH', url: '/v1/interfaces/vEth0', headers: h.auth, payload });
  const r1 = await patch({ mtu: 9000, mac: '02:AA:BB:CC:DD:EE' });
  t.is(r1.statusCode, 200, r1.body);
  t.like(r1.json(), { mtu: 9000, mac: '02:aa:bb:cc:dd:ee' });
  t.like((await patch({ carrier: false })).json(), { carrier: false, up: true });
  t.like((await patch({ up: false })).json(), { up: false, carrier: false });
  const carrierDown = await patch({ carrier: true });
  t.is(carrierDown.statusCode, 409);
  t.like(carrierDown.json().error, { code: 'invalid_state', details: { state: 'down' } });
  t.like((await patch({ up: true, carrier: true })).json(), { up: true, carrier: true });
  t.like((await patch({ vnetHdr: true })).json(), { vnetHdr: true });
  const row = h.service.store.getInterface('vEth0')!;
  t.like(row.spec, { mtu: 9000, mac: '02:aa:bb:cc:dd:ee', up: true, vnetHdr: true, maxMtu: 9000 });

  const over = await patch({ mtu: 9001 });
  t.is(over.statusCode, 400);
  t.is(issues(over.json())[0]!.field, 'body.mtu');
  const tooBig = await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name: 'vEth1', port: veth } });
  t.is(tooBig.statusCode, 201);
  const beyondMax = await h.app.inject({ method: 'PATCH', url: '/v1/interfaces/vEth1', headers: h.auth, payload: { mtu: 1501 } });
  t.is(beyondMax.statusCode, 400);
  t.regex(beyondMax.json().error.message, /at most 1500, the maxMtu/);
  const empty = await patch({});
  t.is(empty.statusCode, 400);
  t.regex(empty.json().error.message, /at least one of/);
  t.is((await h.app.inject({ method: 'PATCH', url: '/v1/interfaces/nope', headers: h.auth, payload: { mtu: 1400 } })).statusCode, 404);
});

test('parallel creates of one name: exactly one wins, the others get 409', async (t) => {
  const h = await harness(t);
  const results = await Promise.all(
    Array.from({ length: 20 }, () => h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name: 'vEth0', port: veth } })),
  );
  t.is(results.filter((r) => r.statusCode === 201).length, 1);
  t.is(results.filter((r) => r.statusCode === 409).length, 19);
  t.deepEqual(h.kni.created, ['vEth0']);
  t.is(h.service.mutex.size, 0, 'no lock is left held');
});

test('parallel PATCHes of one interface are serialised: the stored state is one of the requests, whole', async (t) => {
  const h = await harness(t);
  await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name: 'vEth0', port: veth, maxMtu: 9000 } });
  const macs = Array.from({ length: 30 }, (_, i) => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`);
  const results = await Promise.all(
    macs.map((mac, i) => h.app.inject({ method: 'PATCH', url: '/v1/interfaces/vEth0', headers: h.auth, payload: { mac, mtu: 1500 + i } })),
  );
  t.true(results.every((r) => r.statusCode === 200));
  const final = (await h.app.inject({ method: 'GET', url: '/v1/interfaces/vEth0', headers: h.auth })).json();
  const i = macs.indexOf(final.mac);
  t.true(i >= 0);
  t.is(final.mtu, 1500 + i, 'MAC and MTU come from the same request');
  t.like(h.service.store.getInterface('vEth0')!.spec, { mac: final.mac, mtu: final.mtu });
});

test('the number of interfaces is limited', async (t) => {
  const h = await harness(t);
  for (let i = 0; i < 64; i++) {
    const r = await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name: `k${i}`, port: veth } });
    t.is(r.statusCode, 201);
  }
  const r = await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name: 'k64', port: veth } });
  t.is(r.statusCode, 409);
  t.is(r.json().error.code, 'limit_reached');
});

test('a driver failure on create is a 500 with the reason and leaves nothing behind', async (t) => {
  const h = await harness(t);
  h.kni.failCreate = 'ENOMEM in the test';
  const r = await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name: 'vEth0', port: veth } });
  t.is(r.statusCode, 500);
  t.is(r.json().error.code, 'operation_failed');
  t.regex(r.json().error.message, /ENOMEM in the test/);
  t.is(h.service.store.countInterfaces(), 0);
});
