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
import { harness } from '../lib/fakes.js';

declare const document: { querySelectorAll(selector: string): { length: number } };

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

  // A benchmark: progress from its events, then its result in the history and the chart.
  await nav('Benchmarks');
  await page.getByLabel('Interface').selectOption('vEth0');
  await page.getByRole('button', { name: 'Start benchmark' }).click();
  await page.locator('.running').filter({ hasText: 'booting guest' }).waitFor();
  t.is(await page.locator('.running progress').getAttribute('value'), '10');
  h.bench.gate.resolve();
  await page.getByRole('table').filter({ hasText: 'succeeded' }).waitFor();
  await page.locator('.running').waitFor({ state: 'detached' });
  const chart = page.locator('svg.chart');
  t.regex((await chart.getAttribute('aria-label')) ?? '', /via vEth0 · vhost-net on · TCG: guest → host 1\.23\u00a0Gbit\/s, host → guest 1\.23\u00a0Gbit\/s/);
  t.is(await page.evaluate(() => document.querySelectorAll('svg.chart rect.bar').length), 2);
  // An artifact only (its numbers are the fake runner's): docs/screenshots/ holds real runs.
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'benchmarks-fake-results.png'), fullPage: true });

  // The traffic page draws the fake interface's rates.
  await nav('Traffic');
  await page.locator('.chart-card[data-name="vEth0"] path.line.rx').first().waitFor();

  t.deepEqual(pageErrors, []);
});
