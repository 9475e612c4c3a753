// The dashboard's own logic in chromium, over the service with fake drivers
// (test/lib/fakes.ts): the paths the real appliance cannot reach in this build
// or in a short test — a VM that runs and stops, its console tail, a benchmark's
// progress and results chart, the edit dialog, a 409, deleting with a
// confirmation. The real service, kni.ko and traffic are in dashboard.test.ts.
import { appendFileSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { ARTIFACTS, go, openPage } from '../lib/browser.js';
import { deferred, harness, pathFigures } from '../lib/fakes.js';

declare const document: {
  querySelectorAll(selector: string): { length: number };
  activeElement: { id: string } | null;
  documentElement: { scrollWidth: number };
};

test('VM lifecycle with its console, a benchmark from progress to chart, the edit dialog, a 409 and a confirmed delete', async (t) => {
  t.timeout(3 * 60_000);
  const h = await harness(t, { countersIntervalMs: 1000 });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}/`;
  const { page, pageErrors } = await openPage(t, { timeoutMs: 20_000 });
  const nav = (name: string) => go(page, name);

  await page.goto(url);
  await page.getByLabel('Bearer token').fill(h.token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();

  // An interface, then the same name again: the 409 is shown with its code.
  await nav('Interfaces');
  await page.getByLabel('Name', { exact: true }).fill('vEth0');
  await page.getByLabel('Port interface').fill('kvtap0');
  await page.getByRole('button', { name: 'Create interface' }).click();
  await page.locator('tr[data-name="vEth0"]').waitFor();
  await page.getByLabel('Name', { exact: true }).fill('vEth0');
  await page.getByLabel('Port interface').fill('kvtap9');
  await page.getByRole('button', { name: 'Create interface' }).click();
  const summary = page.locator('.form-errors').first();
  await summary.filter({ hasText: 'name_in_use' }).waitFor();
  t.regex(await summary.innerText(), /Conflict/);

  // The edit dialog sends only what changed; an MTU above the interface's max MTU comes back at its field.
  await page.getByRole('button', { name: 'Edit vEth0' }).click();
  const dialog = page.getByRole('dialog', { name: 'Change vEth0' });
  await dialog.getByLabel('MTU', { exact: true }).fill('1400');
  await dialog.getByRole('button', { name: 'Apply' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.locator('tr[data-name="vEth0"]').filter({ hasText: '1400' }).waitFor();
  t.is(h.kni.live.get('vEth0')?.link().mtu, 1400);
  await page.getByRole('button', { name: 'Edit vEth0' }).click();
  await dialog.getByLabel('MTU', { exact: true }).fill('9000');
  await dialog.getByRole('button', { name: 'Apply' }).click();
  await dialog.locator('.field-error').filter({ hasText: /1500|max/i }).first().waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();

  // A VM wired to it: start → running, its console tail follows the log file, stop → stopped.
  await nav('VMs');
  await page.getByLabel('Name', { exact: true }).fill('g1');
  await page.getByLabel('Kernel', { exact: true }).fill(process.execPath);
  await page.getByLabel('Wire vEth0').check();
  await page.getByLabel('vhost-net for vEth0').uncheck();
  await page.getByRole('button', { name: 'Define VM' }).click();
  const vmRow = page.locator('tr[data-name="g1"]');
  await vmRow.waitFor();
  t.deepEqual((await h.service.vms.get('g1')).spec.nics, [{ interface: 'vEth0', vhost: false }]);
  await page.getByRole('button', { name: 'Start g1' }).click();
  await vmRow.locator('[data-state="running"]').waitFor();
  const runDir = join(h.stateDir, 'vms', 'g1');
  mkdirSync(runDir, { recursive: true });
  appendFileSync(h.runner.consoleLogPath(runDir), 'Linux version 6.1\nguest says hello\n');
  await page.locator('pre.console').filter({ hasText: 'guest says hello' }).waitFor();
  t.true(await page.getByRole('button', { name: 'Delete g1' }).isDisabled());
  await page.getByRole('button', { name: 'Stop g1' }).click();
  await vmRow.locator('[data-state="stopped"]').waitFor();

  // Deleting asks first; Cancel keeps it, Delete removes it.
  await page.getByRole('button', { name: 'Delete g1' }).click();
  await page.getByRole('dialog', { name: 'Delete g1?' }).getByRole('button', { name: 'Cancel' }).click();
  t.is(await vmRow.count(), 1);
  await page.getByRole('button', { name: 'Delete g1' }).click();
  await page.getByRole('dialog', { name: 'Delete g1?' }).getByRole('button', { name: 'Delete' }).click();
  await vmRow.waitFor({ state: 'detached' });

  // Benchmarks. The API's 400 lands at the field it names: with an interface, exactly one KNI path.
  await nav('Benchmarks');
  await page.getByLabel('Interface', { exact: true }).selectOption('vEth0');
  await page.getByRole('button', { name: 'Start benchmark' }).click();
  const pathsGroup = page.getByRole('group', { name: 'Paths' });
  await pathsGroup.locator('.field-error').filter({ hasText: 'exactly one kni path' }).waitFor();
  t.is(await pathsGroup.getAttribute('aria-invalid'), 'true');
  t.regex(await summary.innerText(), /invalid_request[\s\S]*body\.paths/);
  t.is(h.service.benchmarks.list().length, 0, 'nothing was started');

  // A run of all four paths with the default protocols and directions, repeated twice:
  // its phases follow the progress events, then its paths are compared in two charts and a table.
  h.bench.figures = pathFigures;
  await page.getByLabel('Interface', { exact: true }).selectOption('');
  await page.getByLabel('Repeat').fill('2');
  await page.getByRole('button', { name: 'Start benchmark' }).click();
  t.is(await pathsGroup.getAttribute('aria-invalid'), null, 'the error went with the retry');
  const running = page.locator('.running');
  await running.filter({ hasText: 'booting guest' }).waitFor();
  t.is(await running.locator('progress').getAttribute('value'), '10');
  t.regex(await running.innerText(), /all four paths · TCP \+ UDP · both directions · 10 s × 2 · UDP 64 B · vhost-net on · temporary interfaces/);
  // The runner reports its next phases; each reaches the page as an event and is listed.
  h.bench.progress!({ phase: 'guest ready', fraction: 0.25, message: 'booted in 100 s' });
  h.bench.progress!({ phase: 'measuring kni-vnethdr-off TCP host-to-guest', fraction: 0.25, message: 'run 1 of 32 (repeat 1 of 2)' });
  await running.filter({ hasText: 'measuring kni-vnethdr-off TCP host-to-guest: run 1 of 32 (repeat 1 of 2)' }).waitFor();
  t.is(await running.locator('progress').getAttribute('value'), '25');
  t.deepEqual(await running.getByRole('list', { name: 'Phases so far' }).locator('li').allInnerTexts(), [
    'booting guest',
    'guest ready',
    'measuring kni-vnethdr-off TCP host-to-guest',
  ]);
  t.is(await running.locator('li[aria-current="step"]').innerText(), 'measuring kni-vnethdr-off TCP host-to-guest');
  const first = h.service.benchmarks.list()[0]!;
  t.like(first.spec, { paths: ['kni-vnethdr-off', 'kni-vnethdr-on', 'tap-vnethdr-on', 'tap-vnethdr-off'], protocols: ['tcp', 'udp'], direction: 'both', repeat: 2, vhost: true });
  h.bench.gate.resolve();
  await page.getByRole('table').filter({ hasText: 'succeeded' }).waitFor();
  await running.waitFor({ state: 'detached' });
  const tcpChart = page.locator('figure[data-protocol="tcp"] svg.chart');
  const udpChart = page.locator('figure[data-protocol="udp"] svg.chart');
  t.regex(
    (await tcpChart.getAttribute('aria-label')) ?? '',
    /^TCP throughput \(Mbit\/s\) \(TCG: emulation-dominated\)\. host → guest: KNI socket, VNET_HDR on 948\u00a0Mbit\/s, TAP device, VNET_HDR on 1\.1\u00a0Gbit\/s, KNI socket, VNET_HDR off 182\u00a0Mbit\/s, TAP device, VNET_HDR off 214\u00a0Mbit\/s; guest → host: KNI socket, VNET_HDR on 806\u00a0Mbit\/s/,
  );
  t.regex((await udpChart.getAttribute('aria-label')) ?? '', /UDP packets\/s \(64-byte payload\).*host → guest: KNI socket, VNET_HDR on 22\.1\u00a0kpkt\/s/);
  t.is(await tcpChart.locator('rect.bar').count(), 8);
  t.is(await udpChart.locator('rect.bar').count(), 8);
  t.is(await tcpChart.locator('rect.bar.kni.hdr-off').count(), 2);
  await page.locator('.note.warn').filter({ hasText: 'TCG, emulation-dominated' }).waitFor();
  const kniOn = page.locator('table.bench-numbers tr[data-path="kni-vnethdr-on"]');
  t.regex(await kniOn.innerText(), /948\u00a0Mbit\/s[\s\S]*3 retransmits[\s\S]*806\u00a0Mbit\/s[\s\S]*22\.1\u00a0kpkt\/s[\s\S]*0\.4% lost/);
  t.regex(await page.locator('table.bench-numbers caption').innerText(), /medians of 2 runs/);
  // An artifact only (its numbers are the fake runner's): docs/screenshots/ holds real runs.
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'benchmarks-fake-results.png'), fullPage: true });

  // A second run, under KVM: only the KNI paths, TCP, host → guest. The charts show the newest run;
  // the history's Show brings the first one back.
  h.bench.gate = deferred();
  h.bench.accel = 'kvm';
  await pathsGroup.getByRole('checkbox', { name: 'TAP device, VNET_HDR on' }).uncheck();
  await pathsGroup.getByRole('checkbox', { name: 'TAP device, VNET_HDR off' }).uncheck();
  await page.getByRole('group', { name: 'Protocols' }).getByRole('checkbox', { name: 'UDP' }).uncheck();
  await page.getByLabel('Direction').selectOption('host-to-guest');
  await page.getByRole('button', { name: 'Start benchmark' }).click();
  await running.filter({ hasText: 'booting guest' }).waitFor();
  h.bench.gate.resolve();
  await page.locator('table[role="table"] tr').filter({ hasText: 'succeeded' }).nth(1).waitFor();
  await running.waitFor({ state: 'detached' });
  await page.waitForFunction(() => document.querySelectorAll('svg.chart rect.bar').length === 2);
  t.is(await udpChart.count(), 0);
  t.is(await page.locator('.note.warn').count(), 0, 'no TCG warning for a KVM run');
  t.regex((await tcpChart.getAttribute('aria-label')) ?? '', /^TCP throughput \(Mbit\/s\)\. host → guest: KNI socket, VNET_HDR on 948\u00a0Mbit\/s, KNI socket, VNET_HDR off 182\u00a0Mbit\/s$/);
  t.regex(await page.getByLabel('Run shown').innerText(), /TCG/);
  const showFirst = page.locator(`tr[data-id="${first.id}"]`).getByRole('button', { name: /^Show the run of/ });
  await showFirst.focus();
  await page.keyboard.press('Enter');
  await page.locator('.note.warn').waitFor();
  t.is(await page.evaluate(() => document.querySelectorAll('svg.chart rect.bar').length), 16);
  t.is(await page.evaluate(() => document.activeElement?.id), 'bench-compare-h', 'focus moves to the charts');

  // Every control labelled; a 360 px screen with both runs does not scroll sideways.
  const unlabelled = await page.$$eval('main input, main select', (els) =>
    els.filter((e) => (e as unknown as { labels: ArrayLike<unknown> }).labels.length === 0).map((e) => e.outerHTML),
  );
  t.deepEqual(unlabelled, []);
  await page.setViewportSize({ width: 360, height: 740 });
  await page.waitForFunction(() => document.documentElement.scrollWidth <= 360);
  await page.screenshot({ path: join(ARTIFACTS, 'benchmarks-fake-narrow.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });

  // The traffic page draws the fake interface's rates.
  await nav('Traffic');
  await page.locator('.chart-card[data-name="vEth0"] path.line.rx').first().waitFor();

  t.deepEqual(pageErrors, []);
});
