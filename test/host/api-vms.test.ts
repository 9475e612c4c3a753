// inject() tests of /v1/vms: the state machine, state gating, interface wiring,
// against a fake qemu runner and a fake KNI driver.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { deferred, harness, type Harness } from '../lib/fakes.js';

const veth = { kind: 'packet', ifname: 'veth0' } as const;

async function setup(h: Harness, ifaces = ['vEth0']) {
  const kernel = join(h.stateDir, 'vmlinuz');
  writeFileSync(kernel, 'not really a kernel');
  for (const name of ifaces) {
    const r = await h.app.inject({ method: 'POST', url: '/v1/interfaces', headers: h.auth, payload: { name, port: veth } });
    if (r.statusCode !== 201) throw new Error(r.body);
  }
  return { kind: 'kernel', kernel, cmdline: 'console=ttyS0' } as const;
}

const req = (h: Harness, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  h.app.inject({ method, url, headers: h.auth, ...(payload ? { payload } : {}) });

function vmState(h: Harness, name: string) {
  return h.service.store.getVm(name)?.state;
}

test('create a VM: defaults, Location, and validation with field paths', async (t) => {
  const h = await harness(t);
  const boot = await setup(h);
  const bad = await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [{ interface: 'nope0' }] });
  t.is(bad.statusCode, 400);
  t.is(bad.json().error.details.issues[0].field, 'body.nics.0.interface');
  const noKernel = await req(h, 'POST', '/v1/vms', { name: 'g1', boot: { ...boot, kernel: '/no/such/vmlinuz' } });
  t.is(noKernel.statusCode, 400);
  t.is(noKernel.json().error.details.issues[0].field, 'body.boot.kernel');
  const twice = await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [{ interface: 'vEth0' }, { interface: 'vEth0' }] });
  t.is(twice.statusCode, 400);
  t.is(twice.json().error.details.issues[0].field, 'body.nics');
  const relative = await req(h, 'POST', '/v1/vms', { name: 'g1', boot: { kind: 'kernel', kernel: 'vmlinuz' } });
  t.is(relative.json().error.details.issues[0].field, 'body.boot.kernel');
  const dotdot = await req(h, 'POST', '/v1/vms', { name: 'g1', boot: { kind: 'kernel', kernel: '/boot/../etc/shadow' } });
  t.regex(dotdot.json().error.message, /body\.boot\.kernel: .*\.\./);
  const vcpus = await req(h, 'POST', '/v1/vms', { name: 'g1', boot, vcpus: 0 });
  t.is(vcpus.json().error.details.issues[0].field, 'body.vcpus');
  const disk = await req(h, 'POST', '/v1/vms', { name: 'g1', boot: { kind: 'disk', image: '/x.img', format: 'vmdk' } });
  t.is(disk.json().error.details.issues[0].field, 'body.boot.format');
  const nics = await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: Array.from({ length: 9 }, (_, i) => ({ interface: `k${i}` })) });
  t.is(nics.json().error.details.issues[0].field, 'body.nics');

  const ok = await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [{ interface: 'vEth0' }] });
  t.is(ok.statusCode, 201, ok.body);
  t.is(ok.headers.location, '/v1/vms/g1');
  t.like(ok.json(), { name: 'g1', state: 'defined', pid: null, degraded: [], spec: { vcpus: 1, memoryMiB: 512, nics: [{ interface: 'vEth0', vhost: true }] } });
  t.is((await req(h, 'POST', '/v1/vms', { name: 'g1', boot })).json().error.code, 'name_in_use');
});

test('start answers 202 at once, the VM runs once qemu is up, and its NIC holds the interface socket', async (t) => {
  const h = await harness(t);
  const boot = await setup(h);
  await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [{ interface: 'vEth0' }] });
  const gate = deferred<void>();
  h.runner.gate = gate.promise;
  const events: string[] = [];
  h.service.bus.subscribe((e) => e.type === 'vm.state' && events.push(String(e.data.state)));

  const res = await req(h, 'POST', '/v1/vms/g1/start');
  t.is(res.statusCode, 202);
  t.is(res.headers.location, '/v1/vms/g1');
  t.is(res.json().state, 'starting');
  const iface = (await req(h, 'GET', '/v1/interfaces/vEth0')).json();
  t.deepEqual(iface.socket, { attached: true, vm: 'g1' });
  // While it starts, every other action is refused with the state.
  for (const action of ['start', 'stop', 'reboot']) {
    const r = await req(h, 'POST', `/v1/vms/g1/${action}`);
    t.is(r.statusCode, 409, action);
    t.like(r.json().error, { code: 'invalid_state', details: { state: 'starting' } });
  }
  t.is((await req(h, 'DELETE', '/v1/vms/g1')).statusCode, 409);

  gate.resolve();
  await h.service.vms.settled();
  const vm = (await req(h, 'GET', '/v1/vms/g1')).json();
  t.like(vm, { state: 'running', pid: 4000, runStatus: 'running', error: null });
  t.truthy(vm.startedAt);
  t.deepEqual(events, ['starting', 'running']);
  t.is(h.runner.launchedFds.length, 1);
  t.is(h.kni.openFds.size, 0, "the service closed its copy of the socket fd once qemu had it");
});

test('an interface backs one running VM: a second VM on it is refused with 409, and the interface cannot be deleted', async (t) => {
  const h = await harness(t);
  const boot = await setup(h, ['vEth0', 'vEth1']);
  await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [{ interface: 'vEth0' }] });
  await req(h, 'POST', '/v1/vms', { name: 'g2', boot, nics: [{ interface: 'vEth1' }, { interface: 'vEth0' }] });
  t.is((await req(h, 'POST', '/v1/vms/g1/start')).statusCode, 202);
  await h.service.vms.settled();
  const second = await req(h, 'POST', '/v1/vms/g2/start');
  t.is(second.statusCode, 409);
  t.like(second.json().error, { code: 'interface_in_use', details: { interface: 'vEth0', vm: 'g1' } });
  t.is(vmState(h, 'g2'), 'defined');
  const vEth1 = (await req(h, 'GET', '/v1/interfaces/vEth1')).json();
  t.deepEqual(vEth1.socket, { attached: false, vm: null }, 'the NIC wired before the conflict was unwired');
  t.is(h.kni.openFds.size, 0, 'and its fd closed');
  const del = await req(h, 'DELETE', '/v1/interfaces/vEth0');
  t.is(del.statusCode, 409);
  t.like(del.json().error, { code: 'interface_in_use', details: { vm: 'g1' } });
  const vnet = await h.app.inject({ method: 'PATCH', url: '/v1/interfaces/vEth0', headers: h.auth, payload: { vnetHdr: true } });
  t.is(vnet.statusCode, 409);
  t.is(vnet.json().error.code, 'interface_in_use');
  // MTU may change while a VM runs.
  t.is((await h.app.inject({ method: 'PATCH', url: '/v1/interfaces/vEth0', headers: h.auth, payload: { mtu: 1400 } })).statusCode, 200);
});

test('stop: graceful by default, forced on request; the socket is released when qemu is gone', async (t) => {
  const h = await harness(t);
  const boot = await setup(h);
  await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [{ interface: 'vEth0' }] });
  await req(h, 'POST', '/v1/vms/g1/start');
  await h.service.vms.settled();
  const stop = await req(h, 'POST', '/v1/vms/g1/stop');
  t.is(stop.statusCode, 202);
  t.is(stop.json().state, 'stopping');
  await h.service.vms.settled();
  await new Promise((r) => setImmediate(r));
  t.is(vmState(h, 'g1'), 'stopped');
  t.deepEqual(h.runner.procs[0]!.stops, [false]);
  t.deepEqual((await req(h, 'GET', '/v1/interfaces/vEth0')).json().socket, { attached: false, vm: null });
  t.is(h.kni.live.get('vEth0')!.socketFd, undefined, 'sock_en written back to 0');
  const again = await req(h, 'POST', '/v1/vms/g1/stop');
  t.like(again.json().error, { code: 'invalid_state', details: { state: 'stopped', allowed: ['running'] } });

  await req(h, 'POST', '/v1/vms/g1/start');
  await h.service.vms.settled();
  t.is(vmState(h, 'g1'), 'running', 'a stopped VM starts again');
  await req(h, 'POST', '/v1/vms/g1/stop', { force: true });
  await h.service.vms.settled();
  t.deepEqual(h.runner.procs[1]!.stops, [true]);
  const badBody = await req(h, 'POST', '/v1/vms/g1/stop', { force: 'yes' });
  t.is(badBody.statusCode, 400);
  t.is(badBody.json().error.details.issues[0].field, 'body.force');
});

test('qemu killed behind the service: the VM is failed, an event says why, the interface is free again', async (t) => {
  const h = await harness(t);
  const boot = await setup(h);
  await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [{ interface: 'vEth0' }] });
  await req(h, 'POST', '/v1/vms/g1/start');
  await h.service.vms.settled();
  const seen = new Promise<Record<string, unknown>>((resolve) => {
    h.service.bus.subscribe((e) => {
      if (e.type === 'vm.state' && e.data.state === 'failed') resolve(e.data);
    });
  });
  h.runner.procs[0]!.die({ code: null, signal: 'SIGKILL' });
  const data = await seen;
  t.like(data, { name: 'g1', state: 'failed', error: 'qemu exited unexpectedly (signal SIGKILL)' });
  const vm = (await req(h, 'GET', '/v1/vms/g1')).json();
  t.like(vm, { state: 'failed', pid: null, error: 'qemu exited unexpectedly (signal SIGKILL)' });
  t.deepEqual((await req(h, 'GET', '/v1/interfaces/vEth0')).json().socket, { attached: false, vm: null });
  t.is((await req(h, 'POST', '/v1/vms/g1/start')).statusCode, 202, 'a failed VM can be started again');
});

test('a launch failure leaves the VM failed with the reason, nothing wired and no fd open', async (t) => {
  const h = await harness(t);
  const boot = await setup(h);
  await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [{ interface: 'vEth0' }] });
  h.runner.failLaunch = 'qemu-system-x86_64: -netdev tap,fd=3: bad fd';
  await req(h, 'POST', '/v1/vms/g1/start');
  await h.service.vms.settled();
  const vm = (await req(h, 'GET', '/v1/vms/g1')).json();
  t.like(vm, { state: 'failed', error: 'qemu did not start: qemu-system-x86_64: -netdev tap,fd=3: bad fd' });
  t.deepEqual((await req(h, 'GET', '/v1/interfaces/vEth0')).json().socket, { attached: false, vm: null });
  t.is(h.kni.openFds.size, 0);
});

test('qemu unavailable is 503 and changes nothing', async (t) => {
  const h = await harness(t);
  const boot = await setup(h);
  await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [{ interface: 'vEth0' }] });
  h.runner.availability = { ok: false, reason: 'qemu-system-x86_64 is not installed or does not run' };
  const res = await req(h, 'POST', '/v1/vms/g1/start');
  t.is(res.statusCode, 503);
  t.deepEqual(res.json(), { error: { code: 'qemu_unavailable', message: 'qemu-system-x86_64 is not installed or does not run' } });
  t.is(vmState(h, 'g1'), 'defined');
  t.deepEqual((await req(h, 'GET', '/v1/interfaces/vEth0')).json().socket, { attached: false, vm: null });
});

test('an interface that failed to re-create cannot back a VM start (409)', async (t) => {
  const h = await harness(t);
  const boot = await setup(h);
  await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [{ interface: 'vEth0' }] });
  h.kni.live.get('vEth0')!.release();
  await h.app.close();
  await h.service.close();
  h.kni.failCreate = 'ENODEV in the test';
  const h2 = await harness(t, { stateDir: h.stateDir, kni: h.kni, runner: h.runner });
  const r = await req(h2, 'POST', '/v1/vms/g1/start');
  t.is(r.statusCode, 409);
  t.like(r.json().error, { code: 'invalid_state', details: { state: 'failed' } });
  t.like((await req(h2, 'GET', '/v1/interfaces/vEth0')).json(), { state: 'failed', error: 're-creating it failed: ENODEV in the test' });
});

test('reboot is for running VMs; delete is for VMs that are not', async (t) => {
  const h = await harness(t);
  const boot = await setup(h);
  await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [] });
  const early = await req(h, 'POST', '/v1/vms/g1/reboot');
  t.like(early.json().error, { code: 'invalid_state', details: { state: 'defined' } });
  await req(h, 'POST', '/v1/vms/g1/start');
  await h.service.vms.settled();
  const r = await req(h, 'POST', '/v1/vms/g1/reboot');
  t.is(r.statusCode, 200);
  t.is(h.runner.procs[0]!.reboots, 1);
  const del = await req(h, 'DELETE', '/v1/vms/g1');
  t.is(del.statusCode, 409);
  t.like(del.json().error.details, { state: 'running', allowed: ['defined', 'stopped', 'failed'] });
  await req(h, 'POST', '/v1/vms/g1/stop');
  await h.service.vms.settled();
  t.is((await req(h, 'DELETE', '/v1/vms/g1')).statusCode, 204);
  t.is((await req(h, 'GET', '/v1/vms/g1')).statusCode, 404);
  for (const [m, u] of [
    ['GET', '/v1/vms/g1'],
    ['POST', '/v1/vms/g1/start'],
    ['POST', '/v1/vms/g1/stop'],
    ['POST', '/v1/vms/g1/reboot'],
    ['GET', '/v1/vms/g1/console'],
    ['DELETE', '/v1/vms/g1'],
  ] as const) {
    const res = await req(h, m, u);
    t.is(res.statusCode, 404, `${m} ${u}`);
    t.is(res.json().error.code, 'not_found');
  }
});

test('console tail: the end of the log, bounded by ?bytes', async (t) => {
  const h = await harness(t);
  const boot = await setup(h);
  await req(h, 'POST', '/v1/vms', { name: 'g1', boot });
  t.is((await req(h, 'GET', '/v1/vms/g1/console')).body, '', 'no log yet');
  mkdirSync(h.service.vms.runDir('g1'), { recursive: true });
  writeFileSync(join(h.service.vms.runDir('g1'), 'console.log'), 'line 1\nline 2\nlogin: ');
  const all = await req(h, 'GET', '/v1/vms/g1/console');
  t.is(all.statusCode, 200);
  t.regex(all.headers['content-type'] as string, /^text\/plain/);
  t.is(all.body, 'line 1\nline 2\nlogin: ');
  t.is((await req(h, 'GET', '/v1/vms/g1/console?bytes=7')).body, 'login: ');
  const bad = await req(h, 'GET', '/v1/vms/g1/console?bytes=0');
  t.is(bad.statusCode, 400);
  t.is(bad.json().error.details.issues[0].field, 'query.bytes');
  const unknown = await req(h, 'GET', '/v1/vms/g1/console?lines=3');
  t.is(unknown.json().error.details.issues[0].message, 'unknown field: lines');
});

test('parallel starts of one VM: one is accepted, the others see it starting', async (t) => {
  const h = await harness(t);
  const boot = await setup(h);
  await req(h, 'POST', '/v1/vms', { name: 'g1', boot, nics: [{ interface: 'vEth0' }] });
  const results = await Promise.all(Array.from({ length: 10 }, () => req(h, 'POST', '/v1/vms/g1/start')));
  t.is(results.filter((r) => r.statusCode === 202).length, 1);
  t.true(results.filter((r) => r.statusCode === 409).every((r) => ['starting', 'running'].includes(r.json().error.details.state)));
  await h.service.vms.settled();
  t.is(h.runner.procs.length, 1, 'one qemu');
});
