// The KNI socket, kernel side: sock_en/sock_fd/vnet_hdr, what vhost-net and
// qemu demand of the socket, VNET_HDR honoured (offloads carried through the
// FIFOs as buffer chains, or finished for a reader that cannot take them), hostile use,
// and teardown races — driven by test/fixtures/kni-sock-probe.c inside the
// appliance VM, in both kthread modes, with no kernel warning allowed.
import test from 'ava';
import { existsSync } from 'node:fs';
import { Kni } from '../../native/index.js';
import { buildProbe, currentMode, kernelLogSince, kernelProblem, kniKo, loadKni, probeScenarioTests, runProbe, type ProbeScenario } from '../lib/probe.js';

let probe = '';
let core = '';

test.before(async () => {
  probe = await buildProbe('kni-sock-probe');
  core = await buildProbe('kni-probe');
});

test.after.always(async () => {
  if (existsSync(kniKo) && (!existsSync('/sys/module/kni') || currentMode() !== 'single')) await loadKni([]);
});

const scenarios: ProbeScenario[] = [
  ['sysfs, socket identity, TUN ioctls, hostile calls, frames both ways, detach', ['basic'], 89],
  ['VNET_HDR: offloads carried whole both ways, cut or completed for a reader without them, hostile chains', ['vnet'], 112],
  ['20000 random virtio headers and frames, and random rx_q chains', ['fuzz', '20000'], 9],
  ['teardown races: release, close, detach and kill -9 under traffic', ['races', '20'], 5],
];

probeScenarioTests(test, () => probe, () => core, scenarios);

test.serial('rmmod is refused while a socket exists and succeeds after', async (t) => {
  if (!existsSync('/sys/module/kni')) await loadKni([]);
  const logSince = await kernelLogSince();
  const r = await runProbe(probe, 'rmmod', kniKo);
  if (r.exitCode !== 0) t.log(r.output);
  t.deepEqual(r.failed, []);
  t.is(r.passed, 6);
  t.notRegex(await logSince(), kernelProblem);
  t.true(existsSync('/dev/kni'));
});

test.serial('KNI_IOCTL_SOCKET: the creator or an attached handler gets the socket without sysfs, close-on-exec as asked', async (t) => {
  if (!existsSync('/sys/module/kni')) await loadKni([]);
  const ioctlProbe = await buildProbe('kni-sock-ioctl-probe');
  const logSince = await kernelLogSince();
  const r = await runProbe(ioctlProbe);
  if (r.exitCode !== 0) t.log(r.output);
  t.deepEqual(r.failed, []);
  t.is(r.exitCode, 0);
  t.is(r.passed, 21);
  t.notRegex(await logSince(), kernelProblem);
});

test.serial('TUNGETIFF and TUNSETIFF from a 32-bit process copy its 32-byte struct ifreq, not the 40 of ours', async (t) => {
  if (!existsSync('/sys/module/kni')) await loadKni([]);
  const compat = await buildProbe('kni-compat-probe');
  const logSince = await kernelLogSince();
  const kni = new Kni();
  t.teardown(() => kni.close());
  kni.create({ name: 'kvc0' });
  const r = await runProbe(compat, 'kvc0');
  if (r.exitCode !== 0) t.log(r.output);
  t.deepEqual(r.failed, []);
  t.is(r.passed, 6);
  t.notRegex(await logSince(), kernelProblem);
});

test.serial('the vnet_hdr module parameter sets the default of new interfaces', async (t) => {
  await loadKni(['vnet_hdr=1']);
  t.teardown(() => loadKni([]));
  const r = await runProbe(probe, 'default-vnet');
  if (r.exitCode !== 0) t.log(r.output);
  t.deepEqual(r.failed, []);
  t.true(r.passed >= 2);
});
