// A load test of the API over real HTTP on loopback: a bounded number of mixed
// reads and writes at a fixed concurrency, with a time limit. It checks that
// nothing is lost (every write acknowledged once, announced once, stored) and
// reports latencies; it asserts nothing about time.
import test from 'ava';
import { harness } from '../lib/fakes.js';

const TOTAL = 2000;
const CONCURRENCY = 50;
const TIME_LIMIT_MS = 120_000;
const IFACES = Array.from({ length: 8 }, (_, i) => `kl${i}`);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

test('2000 mixed requests at concurrency 50 over loopback: nothing lost, latencies reported', async (t) => {
  const h = await harness(t);
  const base = await h.app.listen({ host: '127.0.0.1', port: 0 });
  const headers = { ...h.auth, 'content-type': 'application/json' };
  for (const name of IFACES) {
    const r = await fetch(`${base}/v1/interfaces`, { method: 'POST', headers, body: JSON.stringify({ name, port: { kind: 'packet', ifname: 'veth0' } }) });
    t.is(r.status, 201);
  }
  const kernel = `${h.stateDir}/vmlinuz`;
  (await import('node:fs')).writeFileSync(kernel, 'k');

  const events = { 'vm.created': 0, 'vm.deleted': 0, 'interface.changed': 0 } as Record<string, number>;
  h.service.bus.subscribe((e) => {
    if (e.type in events) events[e.type]!++;
  });

  const latencies: Record<string, number[]> = { read: [], patch: [], create: [], delete: [] };
  const unexpected: string[] = [];
  const acked = { patch: 0, create: 0, delete: 0 };
  let issued = 0;
  const deadline = Date.now() + TIME_LIMIT_MS;

  async function call(kind: keyof typeof latencies, method: string, path: string, expect: number, body?: unknown) {
    const start = performance.now();
    try {
      const r = await fetch(`${base}${path}`, { method, headers: body === undefined ? h.auth : headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      await r.arrayBuffer();
      latencies[kind]!.push(performance.now() - start);
      if (r.status !== expect) unexpected.push(`${method} ${path} → ${r.status}`);
      return r.status === expect;
    } catch (err) {
      unexpected.push(`${method} ${path} → ${(err as Error).message}`);
      return false;
    }
  }

  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      let n = 0;
      while (issued < TOTAL && Date.now() < deadline) {
        const i = issued++;
        const roll = i % 10;
        const iface = IFACES[i % IFACES.length]!;
        if (roll < 4) {
          await call('read', 'GET', `/v1/interfaces/${iface}`, 200);
        } else if (roll < 5) {
          await call('read', 'GET', '/v1/vms', 200);
        } else if (roll < 7) {
          if (await call('patch', 'PATCH', `/v1/interfaces/${iface}`, 200, { mtu: 1280 + (i % 200) })) acked.patch++;
        } else {
          // A VM defined and deleted again: two writes, counted as two requests.
          const name = `w${worker}-${n++}`;
          issued++;
          if (await call('create', 'POST', '/v1/vms', 201, { name, boot: { kind: 'kernel', kernel } })) acked.create++;
          if (await call('delete', 'DELETE', `/v1/vms/${name}`, 204)) acked.delete++;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;

  t.true(issued >= TOTAL, `stopped at the time limit after ${issued} requests`);
  t.deepEqual(unexpected, []);
  t.is(acked.create, acked.delete);
  t.is(events['vm.created'], acked.create, 'every acknowledged create was announced once');
  t.is(events['vm.deleted'], acked.delete);
  t.is(events['interface.changed'], acked.patch);
  t.is(h.service.store.countVms(), 0, 'every VM created was deleted');
  t.is(h.service.mutex.size, 0, 'no lock left held');

  const all = Object.values(latencies).flat().sort((a, b) => a - b);
  t.log(`${all.length} requests in ${seconds.toFixed(2)} s (${(all.length / seconds).toFixed(0)} req/s), concurrency ${CONCURRENCY}`);
  for (const [kind, list] of Object.entries({ all, ...latencies })) {
    const s = [...list].sort((a, b) => a - b);
    if (s.length === 0) continue;
    t.log(`${kind.padEnd(6)} n=${String(s.length).padStart(4)}  p50 ${percentile(s, 50).toFixed(1)} ms  p99 ${percentile(s, 99).toFixed(1)} ms  max ${s[s.length - 1]!.toFixed(1)} ms`);
  }
});
