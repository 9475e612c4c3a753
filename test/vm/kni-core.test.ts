// KNI core, kernel side: /dev/kni ioctls, the shared-memory FIFOs, the net
// device, control requests and lifetime, driven by test/fixtures/kni-probe.c
// inside the appliance VM. Every probe run is repeated with kthread_mode=single
// and kthread_mode=multiple (the module is reloaded in between), and each run
// must leave no kernel warning in the log.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { buildProbe, currentMode, kniKo, loadKni, probeInfo, probeScenarioTests, type ProbeScenario } from '../lib/probe.js';

let probe = '';

test.before(async () => {
  probe = await buildProbe('kni-probe');
});

test.after.always(async () => {
  // Leave the module as the VM loaded it (defaults).
  if (existsSync(kniKo) && existsSync('/sys/module/kni') && currentMode() !== 'single') await loadKni([]);
});

test.serial('kni.ko refuses bad parameter values and loads with good ones', async (t) => {
  t.true(existsSync(kniKo), `${kniKo} is built`);
  await execa('rmmod', ['kni'], { reject: false });
  for (const bad of ['kthread_mode=bogus', 'poll_interval_us=0', 'poll_interval_us=2000000', 'poll_interval_us=x']) {
    const r = await execa('insmod', [kniKo, bad], { reject: false });
    t.not(r.exitCode, 0, `insmod ${bad} must fail`);
    t.false(existsSync('/sys/module/kni'), `not loaded after ${bad}`);
  }
  await loadKni(['poll_interval_us=50', 'kthread_mode=multiple']);
  t.is(readFileSync('/sys/module/kni/parameters/poll_interval_us', 'utf8').trim(), '50');
  t.is(readFileSync('/sys/module/kni/parameters/kthread_mode', 'utf8').trim(), 'multiple');
  // Control changes no longer wait for an answer: there is no timeout to set.
  t.false(existsSync('/sys/module/kni/parameters/req_timeout_ms'));
  await loadKni([]);
  const info = await probeInfo(probe);
  t.deepEqual(info, { abiVersion: 5, kthreadMode: 0, ifaces: 0, shmBytes: 0, threads: 0, sockets: 0 });
});

const scenarios: ProbeScenario[] = [
  ['hostile ioctl and mmap arguments are refused with clear errnos', ['hostile'], 40],
  ['corrupted FIFO counters, indices and offsets are counted drops', ['corrupt'], 15],
  ['frames cross rx_q and tx_q, stats and ethtool agree', ['traffic'], 15],
  ['control changes apply at once and are notified; nothing waits for a handler; slots are never overwritten', ['requests'], 20],
  ['a second process attaches as request handler, one at a time', ['attach'], 20],
  ['interfaces and regions follow RELEASE, close, munmap and kill -9', ['lifetime'], 15],
  ['100 create/traffic/release cycles leave nothing behind', ['cycles', '100'], 3],
  // 46 checks in kthread_mode=single, 47 in multiple (one is about a thread of kdb0's own).
  ['with F_DOORBELL the idle thread sleeps, KICK wakes it, no wakeup is lost, NOTIFY signals', ['doorbell'], 46],
  ['rx_q buffer chains and offloads to the stack: valid, hostile, 1000 random (some scribbled on)', ['chains', '1000'], 54],
];

probeScenarioTests(test, () => probe, () => probe, scenarios);
