// Who may create and attach KNI interfaces (CAP_NET_ADMIN over the
// network namespace, or the creator's uid, as with tun; root of a user
// namespace in its own), mappings that are never executable, and regions
// charged to their creator's memory cgroup — driven by
// test/fixtures/kni-priv-probe.c, in both kthread modes, no kernel warning.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { buildProbe, currentMode, kniKo, loadKni, probeScenarioTests, type ProbeScenario } from '../lib/probe.js';

let probe = '';
let core = '';

/** A cgroup v2 hierarchy with the memory controller, mounted if the VM has none. */
const CGROUP_ROOT = '/sys/fs/cgroup';
const CGROUP = `${CGROUP_ROOT}/kniv-priv-probe`;

test.before(async () => {
  probe = await buildProbe('kni-priv-probe');
  core = await buildProbe('kni-probe');
  if (!existsSync(`${CGROUP_ROOT}/cgroup.controllers`)) await execa('mount', ['-t', 'cgroup2', 'none', CGROUP_ROOT]);
  if (!readFileSync(`${CGROUP_ROOT}/cgroup.subtree_control`, 'utf8').includes('memory')) writeFileSync(`${CGROUP_ROOT}/cgroup.subtree_control`, '+memory');
  if (!existsSync(CGROUP)) mkdirSync(CGROUP);
});

test.after.always(async () => {
  if (existsSync(CGROUP)) rmdirSync(CGROUP);
  if (existsSync(kniKo) && (!existsSync('/sys/module/kni') || currentMode() !== 'single')) await loadKni([]);
});

const scenarios: ProbeScenario[] = [
  ['CREATE needs CAP_NET_ADMIN over the namespace, ATTACH the same uid or it; user namespaces; no executable mapping', ['privileges'], 24],
  ['a region is charged to its creator\'s memory cgroup, and over memory.max CREATE is ENOMEM', ['memcg', CGROUP], 8],
];

probeScenarioTests(test, () => probe, () => core, scenarios);
