// A KNI socket writer stuck in a page fault that never completes
// (userfaultfd) stalls nobody: TUNGETIFF under RTNL, sock_fd, detach and
// another interface's removal all finish meanwhile — driven by
// test/fixtures/kni-uffd-probe.c, in both kthread modes, no kernel warning.
import test from 'ava';
import { existsSync } from 'node:fs';
import { buildProbe, currentMode, kniKo, loadKni, probeScenarioTests, type ProbeScenario } from '../lib/probe.js';

let probe = '';
let core = '';

test.before(async () => {
  probe = await buildProbe('kni-uffd-probe');
  core = await buildProbe('kni-probe');
});

test.after.always(async () => {
  if (existsSync(kniKo) && (!existsSync('/sys/module/kni') || currentMode() !== 'single')) await loadKni([]);
});

const scenarios: ProbeScenario[] = [['a writer stuck in a userfaultfd fault holds no lock others need', ['stuck'], 15]];

probeScenarioTests(test, () => probe, () => core, scenarios);
