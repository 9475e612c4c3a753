import test from 'ava';
import { buildApp } from '../../server/app.js';
import { systemFacts, type SystemFacts } from '../../server/system.js';

const facts: SystemFacts = {
  kernel: '6.1.0-56-amd64',
  kni: { loaded: true, abiVersion: 3, kthreadMode: 'multiple' },
  kvm: false,
  vhostNet: true,
};

test('GET /health answers with the system facts, without auth', async (t) => {
  const app = buildApp({}, { system: () => facts });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/health' });
  t.is(res.statusCode, 200);
  t.deepEqual(res.json(), { status: 'ok', ...facts });
});

test('facts that do not fit the schema are a server error, not a wrong answer', async (t) => {
  const app = buildApp({}, { system: () => ({ ...facts, kni: { loaded: 'yes' } }) as unknown as SystemFacts });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/health' });
  t.is(res.statusCode, 500);
});

test('on this host kni.ko is not loaded and KNI is reported so', (t) => {
  const f = systemFacts();
  t.false(f.kni.loaded);
  t.is(typeof f.kernel, 'string');
});

test('unknown routes are 404', async (t) => {
  const app = buildApp({}, { system: () => facts });
  t.teardown(() => app.close());
  t.is((await app.inject({ method: 'GET', url: '/nope' })).statusCode, 404);
});
