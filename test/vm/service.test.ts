// The service end to end inside the appliance VM: `kniv serve` as a real
// process over HTTP, the real kni.ko and data plane, real traffic.
//
//   init ns (the service)                                                netns B
//   kvs0 (KNI) 10.99.1.1 ═ FIFOs ═ data plane ═ AF_PACKET on kvsp0 ─ veth ─ kvsp1 10.99.1.2
// service-guest.test.ts wires nested guests to interfaces through the service.
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { kniModulePath } from '../../qemu/kernels.js';
import { netdev, nsExec, peer, serve, sh, stateDir } from '../lib/service.js';
import { waitFor } from '../lib/util.js';

let port = 18300;

async function pingThrough(t: ExecutionContext) {
  await sh('ip addr add 10.99.1.1/24 dev kvs0');
  const r = await nsExec('B', 'ping -c 3 -i 0.2 -W 5 10.99.1.1');
  t.is(r.exitCode, 0, r.all);
  t.regex(r.stdout, /3 packets transmitted, 3 received/);
}

test.serial('interfaces over HTTP: 503 without kni.ko, real traffic moves the counters, restarts reconcile, delete leaves no netdev', async (t) => {
  const dir = stateDir(t);
  const t0 = Date.now();
  const lap = (what: string) => t.log(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await peer(t);
  // Without kni.ko: 503 with the reason. The service opens /dev/kni only when
  // it needs it, so loading the module later is enough.
  await execa('rmmod', ['kni']);
  t.teardown(async () => {
    if (!existsSync('/sys/module/kni')) await execa('insmod', [kniModulePath(release())]);
  });
  let s = await serve(t, dir, port++);
  lap('service started');
  t.regex(s.output, new RegExp(`bearer token in ${join(dir, 'token')}, new`));
  const unloaded = await s.call('POST', '/v1/interfaces', { name: 'kvs0', port: { kind: 'packet', ifname: 'kvsp0' } });
  t.is(unloaded.status, 503);
  t.like(unloaded.json.error, { code: 'module_unavailable', message: 'kni.ko is not loaded (/dev/kni does not exist)' });
  t.like((await s.call('GET', '/v1/system')).json, { kni: { loaded: false, parameters: {} } });
  await execa('insmod', [kniModulePath(release())]);
  t.true(await waitFor(() => existsSync('/dev/kni'), 5000));

  // A TAP port: kniv creates the TAP device and removes it with the interface.
  const tap = await s.call('POST', '/v1/interfaces', { name: 'kvst0', port: { kind: 'tap', ifname: 'kvstap0' } });
  t.is(tap.status, 201, tap.text);
  t.true(netdev('kvstap0'));
  t.is((await s.call('DELETE', '/v1/interfaces/kvst0')).status, 204);
  t.false(netdev('kvst0'));
  t.false(netdev('kvstap0'));
  const health = await fetch(`${s.url}health`);
  t.is(health.status, 200);
  t.like(await health.json(), { status: 'ok', kernel: release(), kni: { loaded: true, abiVersion: 5 }, vhostNet: true, kvm: false });
  const sys = await s.call('GET', '/v1/system');
  t.is(sys.status, 200);
  t.like(sys.json, { kernel: release(), kni: { loaded: true, parameters: { kthread_mode: 'single' } }, vhostNet: true });

  // Errors that come from the real kernel.
  const hostName = await s.call('POST', '/v1/interfaces', { name: 'kvsp0', port: { kind: 'packet', ifname: 'kvsp0' } });
  t.is(hostName.status, 409, hostName.text);
  t.is(hostName.json.error.code, 'name_in_use');
  const noPort = await s.call('POST', '/v1/interfaces', { name: 'kvs0', port: { kind: 'packet', ifname: 'nosuch0' } });
  t.is(noPort.status, 400);
  t.is(noPort.json.error.details.issues[0].field, 'body.port.ifname');
  t.false(netdev('kvs0'));

  const created = await s.call('POST', '/v1/interfaces', { name: 'kvs0', port: { kind: 'packet', ifname: 'kvsp0' }, mtu: 1500, maxMtu: 4000 });
  t.is(created.status, 201, created.text);
  t.like(created.json, { name: 'kvs0', state: 'active', up: true, carrier: true, mtu: 1500 });
  t.true(netdev('kvs0'));
  const mac = created.json.mac as string;
  t.is(readFileSync('/sys/class/net/kvs0/address', 'utf8').trim(), mac);

  await pingThrough(t);
  lap('ping');
  const after = (await s.call('GET', '/v1/interfaces/kvs0')).json;
  t.true(after.counters.dataPlane.toKernelPackets >= 3, JSON.stringify(after.counters));
  t.true(after.counters.dataPlane.toPortPackets >= 3);
  t.true(after.counters.netdev.rxPackets >= 3);
  const metrics = await s.call('GET', '/metrics');
  const rx = Number(/^kniv_interface_rx_packets_total\{interface="kvs0"\} (\d+)$/m.exec(metrics.text)?.[1]);
  t.true(rx >= 3, metrics.text.slice(0, 500));

  // Runtime changes go through kni.ko's requests to the data plane.
  const mtu = await s.call('PATCH', '/v1/interfaces/kvs0', { mtu: 3000 });
  t.is(mtu.status, 200, mtu.text);
  t.is(readFileSync('/sys/class/net/kvs0/mtu', 'utf8').trim(), '3000');
  const down = await s.call('PATCH', '/v1/interfaces/kvs0', { up: false });
  t.like(down.json, { up: false, carrier: false });
  const carrier = await s.call('PATCH', '/v1/interfaces/kvs0', { carrier: true });
  t.is(carrier.status, 409);
  t.like((await s.call('PATCH', '/v1/interfaces/kvs0', { up: true })).json, { up: true, carrier: true });

  // A graceful restart: the netdev goes with the service, comes back with its desired state.
  t.is(await s.stop('SIGTERM'), 0, s.output);
  t.false(netdev('kvs0'), 'KNI interfaces die with the process that owns /dev/kni');
  lap('stopped');
  s = await serve(t, dir, port++);
  lap('restarted');
  t.notRegex(s.output, /, new\)/, 'the token is reused');
  const sys2 = (await s.call('GET', '/v1/system')).json;
  t.deepEqual(sys2.reconcile.interfaces, { recreated: ['kvs0'], failed: [] });
  t.true(netdev('kvs0'));
  t.is(readFileSync('/sys/class/net/kvs0/address', 'utf8').trim(), mac, 'same MAC');
  t.is(readFileSync('/sys/class/net/kvs0/mtu', 'utf8').trim(), '3000', 'same MTU');
  await pingThrough(t);

  const del = await s.call('DELETE', '/v1/interfaces/kvs0');
  t.is(del.status, 204);
  t.false(netdev('kvs0'));
  t.is((await s.call('GET', '/v1/interfaces')).json.items.length, 0);
  t.false(s.output.includes(s.token), 'the token never reaches the log');
  t.regex(s.output, /"url":"\/v1\/interfaces\/kvs0","status":204,.*"msg":"request"/);
  lap('delete');

  // kill -9: nothing the service made survives it.
  t.is((await s.call('POST', '/v1/interfaces', { name: 'kvs1', port: { kind: 'tap', ifname: 'kvstap1' } })).status, 201);
  await s.stop('SIGKILL');
  t.true(await waitFor(() => !netdev('kvs1') && !netdev('kvstap1'), 5000));
  const dmesg = (await execa('dmesg')).stdout;
  t.notRegex(dmesg, /WARNING:|BUG:|Oops|refcount_t|corruption/);
});
