import test from 'ava';
import { buildApp } from '../../server/app.js';
import { systemFacts, type SystemFacts } from '../../server/system.js';
import { harness } from '../lib/fakes.js';

const facts: SystemFacts = {
  kernel: '6.1.0-56-amd64',
  kni: { loaded: true, abiVersion: 5, kthreadMode: 'multiple' },
  kvm: false,
  vhostNet: true,
};

test('GET /health answers with the system facts, without auth', async (t) => {
  const h = await harness(t);
  const app = buildApp({ token: h.token }, { system: () => facts, service: h.service });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/health' });
  t.is(res.statusCode, 200);
  t.deepEqual(res.json(), { status: 'ok', ...facts });
});

test('facts that do not fit the schema are a server error, not a wrong answer', async (t) => {
  const h = await harness(t);
  const app = buildApp({ token: h.token }, { system: () => ({ ...facts, kni: { loaded: 'yes' } }) as unknown as SystemFacts, service: h.service });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/health' });
  t.is(res.statusCode, 500);
  t.deepEqual(res.json(), { error: { code: 'internal', message: 'internal error' } });
});

test('on this host kni.ko is not loaded and KNI is reported so', (t) => {
  const f = systemFacts();
  t.false(f.kni.loaded);
  t.is(typeof f.kernel, 'string');
});
