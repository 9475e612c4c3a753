// The dashboard in a real browser (Debian's chromium, driven by playwright-core)
// against the real service: kniv serve inside the appliance VM with kni.ko
// loaded, its port forwarded to this host and its state directory shared, as
// `kniv start` runs it — plus a traffic source in the VM
// (test/fixtures/dashboard-appliance.sh) so that the interface created in the
// browser has counters that move.
//
//   chromium ── http://127.0.0.1:PORT ── qemu hostfwd ── kniv serve (appliance VM)
//                                                          └─ KNI kvdash ── packet port kvdash0 ══ veth ══ netns: ping
//
// Screenshots of each screen go to build/test-artifacts/dashboard/; with
// KNIV_UPDATE_SCREENSHOTS=1 they are also copied to docs/screenshots/ (the
// README links those).
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import test from 'ava';
import type { Page } from 'playwright-core';
import { addonAbiVersion } from '../../native/index.js';
import { runAppliance, type ApplianceResult } from '../../qemu/appliance.js';
import { guestImage } from '../../qemu/guest-image.js';
import { kernel } from '../../qemu/kernels.js';
import { projectRoot } from '../../qemu/paths.js';
import { applianceServeCommand } from '../../server/start.js';
import { ARTIFACTS, CHROMIUM, go, openPage } from '../lib/browser.js';

// The little of the DOM that the functions run in the page use (this project's
// TypeScript has no DOM library); module-scoped, it types nothing else.
declare const document: {
  querySelector(selector: string): { textContent: string | null; getAttribute(name: string): string | null } | null;
  documentElement: { scrollWidth: number };
};
declare const sessionStorage: { getItem(key: string): string | null };

const DOCS_SHOTS = join(projectRoot, 'docs', 'screenshots');
const IFACE = 'kvdash';

let started = Date.now();
let progress: (m: string) => void = () => undefined;
const since = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage });
  progress(`${name} at ${since()}`);
  if (process.env.KNIV_UPDATE_SCREENSHOTS === '1') copyFileSync(path, join(DOCS_SHOTS, `${name}.png`));
}

async function waitForHealth(url: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if ((await fetch(`${url}health`, { signal: AbortSignal.timeout(2000) })).ok) return true;
    } catch {
      // the VM is still booting
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

test('the dashboard in chromium against the service in the appliance VM: log in, an interface with moving counters, a VM, API errors in forms, service down', async (t) => {
  t.timeout(8 * 60_000);
  progress = (m) => t.log(m);
  started = Date.now();
  t.true(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  if (process.env.KNIV_UPDATE_SCREENSHOTS === '1') mkdirSync(DOCS_SHOTS, { recursive: true });

  // The appliance: kniv serve with the traffic source, port forwarded, state shared.
  const port = 19000 + (process.pid % 1000);
  const url = `http://127.0.0.1:${port}/`;
  const stateDir = mkdtempSync(join(tmpdir(), 'kniv-dash-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const vmOutput: string[] = [];
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => vmOutput.push(d.toString()));
  const stopVm = new AbortController();
  const appliance: Promise<ApplianceResult> = runAppliance(
    {
      kernel: '6.1',
      command: ['sh', join(projectRoot, 'test', 'fixtures', 'dashboard-appliance.sh'), IFACE, ...applianceServeCommand(port, stateDir)],
      cwd: projectRoot,
      stateDir,
      forwards: [{ hostAddress: '127.0.0.1', hostPort: port, guestPort: port }],
      timeoutMs: 10 * 60_000,
    },
    { stdout: sink, stderr: sink, signal: stopVm.signal },
  );
  t.teardown(async () => {
    stopVm.abort();
    await appliance;
  });
  t.true(await waitForHealth(url, 120_000), `the service did not come up:\n${vmOutput.join('')}`);
  progress(`service up at ${since()}`);
  const token = readFileSync(join(stateDir, 'token'), 'utf8').trim();

  const { page, pageErrors } = await openPage(t, { timeoutMs: 30_000, viewport: { width: 1280, height: 800 } });

  // --- Log in: a wrong token is refused with a clear message, the right one (typed, Enter) gets in.
  await page.goto(url);
  const tokenInput = page.getByLabel('Bearer token');
  await tokenInput.fill('not-the-token');
  await tokenInput.press('Enter');
  await page.getByRole('alert').filter({ hasText: 'Wrong token' }).waitFor();
  t.is(await tokenInput.getAttribute('aria-invalid'), 'true');
  await shot(page, 'login-wrong-token', false);
  await tokenInput.fill('');
  await tokenInput.focus();
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  // The token stays out of the URL and in this tab's sessionStorage.
  t.false(page.url().includes(token));
  t.is(await page.evaluate(() => sessionStorage.getItem('kniv.token')), token);

  // --- Overview: the appliance's kernel and kni.ko as the service reports them.
  await page.getByText(kernel('6.1').release).waitFor();
  await page.locator('.conn.live').waitFor();
  const overviewText = await page.locator('main').innerText();
  t.regex(overviewText, new RegExp(`ABI version\\s+${addonAbiVersion}\\b`));
  t.regex(overviewText, /kthread_mode/);
  await shot(page, 'overview');

  // --- Interfaces: the API's 400 for a port that does not exist, rendered at its field.
  await go(page, 'Interfaces');
  await page.getByRole('heading', { name: 'Interfaces', level: 1 }).waitFor();
  t.truthy(await page.getByText('No KNI interfaces yet').textContent());
  await page.getByLabel('Name', { exact: true }).fill(IFACE);
  await page.getByLabel('Port kind').selectOption('packet');
  const portIf = page.getByLabel('Port interface');
  await portIf.fill('nosuch0');
  await page.getByRole('button', { name: 'Create interface' }).click();
  const portErr = page.locator(`#${await portIf.getAttribute('id')}-err`);
  await portErr.waitFor();
  t.regex(await portErr.innerText(), /nosuch0/);
  t.is(await portIf.getAttribute('aria-invalid'), 'true');
  t.regex(await page.locator('.form-errors').innerText(), /invalid_request[\s\S]*body\.port\.ifname/);
  await shot(page, 'form-error');

  // Corrected, it is created; the ping in the VM moves its counters, which the table shows as rates.
  await portIf.fill('kvdash0');
  await page.getByRole('button', { name: 'Create interface' }).click();
  const row = page.locator(`tr[data-name="${IFACE}"]`);
  await row.waitFor();
  t.regex(await row.innerText(), /active/);
  t.is(await page.locator('.form-errors').isHidden(), true);
  const rx = row.locator('td[data-col="rx"]');
  const tx = row.locator('td[data-col="tx"]');
  const total = async (cell: typeof rx) => Number(/([\d,]+) total/.exec(await cell.innerText())?.[1]?.replace(/,/g, '') ?? NaN);
  // A rate needs two counters events (5 s apart) after the pings start.
  await page.waitForFunction(
    (name) => /[1-9][\d.]*\s[k]?pkt\/s/.test(document.querySelector(`tr[data-name="${name}"] td[data-col="rx"]`)?.textContent ?? ''),
    IFACE,
    { timeout: 60_000 },
  );
  t.regex(await tx.innerText(), /[1-9][\d.]*\s[k]?pkt\/s/);
  const rx1 = await total(rx);
  await page.waitForFunction(
    ([name, before]) => {
      const m = /([\d,]+) total/.exec(document.querySelector(`tr[data-name="${name}"] td[data-col="rx"]`)?.textContent ?? '');
      return m !== null && Number(m[1]!.replace(/,/g, '')) > Number(before);
    },
    [IFACE, String(rx1)] as const,
    { timeout: 30_000 },
  );
  t.true((await total(rx)) > rx1);
  await shot(page, 'interfaces');

  // --- Traffic: the charts fill from the event stream without a reload.
  await go(page, 'Traffic');
  const card = page.locator(`.chart-card[data-name="${IFACE}"]`);
  await card.locator('path.line.rx').first().waitFor();
  const pathBefore = await card.locator('path.line.rx').first().getAttribute('d');
  await page.waitForFunction(
    ([name, d]) => document.querySelector(`.chart-card[data-name="${name}"] path.line.rx`)?.getAttribute('d') !== d,
    [IFACE, pathBefore] as const,
    { timeout: 30_000 },
  );
  await shot(page, 'traffic');

  // --- VMs: an invalid definition is refused at its field; a valid one is defined, started and stopped.
  await go(page, 'VMs');
  await page.getByRole('heading', { name: 'VMs', level: 1 }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('dash-guest');
  const kernelInput = page.getByLabel('Kernel', { exact: true });
  await kernelInput.fill('relative/vmlinuz');
  await page.getByLabel(`Wire ${IFACE}`).check();
  await page.getByRole('button', { name: 'Define VM' }).click();
  await page.locator(`#${await kernelInput.getAttribute('id')}-err`).filter({ hasText: 'absolute path' }).waitFor();
  // The test guest's image: the appliance kernel unpacked for a direct (PVH) boot, which
  // starts printing within seconds even under nested TCG, and a small initramfs.
  const guest = guestImage(kernel('6.1'));
  await kernelInput.fill(guest.kernel);
  await page.getByLabel('Initrd').fill(guest.initrd);
  await page.getByLabel('Kernel command line').fill('console=ttyS0 mitigations=off');
  await page.getByRole('button', { name: 'Define VM' }).click();
  const vmRow = page.locator('tr[data-name="dash-guest"]');
  await vmRow.waitFor();
  t.regex(await vmRow.innerText(), /defined/);
  await page.getByRole('button', { name: 'Start dash-guest' }).click();
  if (existsSync(join(projectRoot, 'dist', 'qemu', 'launcher.js'))) {
    // qemu answers QMP within seconds even under nested TCG (the guest boots for minutes; it need not).
    await vmRow.locator('[data-state="running"], [data-state="failed"]').waitFor({ timeout: 120_000 });
    t.is(await vmRow.locator('[data-state]').getAttribute('data-state'), 'running', await vmRow.innerText());
    // The console tail follows the guest's serial console as its kernel starts.
    await page.getByRole('heading', { name: 'Console of dash-guest' }).waitFor();
    progress(`VM running at ${since()}`);
    await page.locator('pre.console').filter({ hasText: 'Linux version' }).waitFor({ timeout: 120_000 });
    await shot(page, 'vms');
    // The interface backs the VM now: qemu holds its socket.
    await go(page, 'Interfaces');
    t.regex(await page.locator(`tr[data-name="${IFACE}"]`).innerText(), /attached\s+to\s+dash-guest/);
    await go(page, 'VMs');
    await page.getByRole('button', { name: 'Stop dash-guest' }).click();
    await vmRow.locator('[data-state="stopped"]').waitFor({ timeout: 120_000 });
    progress(`VM stopped at ${since()}`);
  } else {
    // This build has no qemu launcher: the service's 503 is shown, the VM stays defined.
    await page.locator('.status.error').filter({ hasText: 'qemu launcher is not part of this build' }).waitFor();
    t.regex(await vmRow.innerText(), /defined/);
    await shot(page, 'vms');
  }

  // --- Benchmarks: the request the form builds is checked by the service. All four paths through
  // one interface is refused (an interface has one KNI socket), at the paths; nothing starts
  // (a real run boots a nested guest for minutes: test/host/bench-vhost.test.ts runs one).
  await go(page, 'Benchmarks');
  await page.getByText('No benchmark has run yet.').waitFor();
  await page.getByLabel('Interface', { exact: true }).selectOption(IFACE);
  await page.getByRole('button', { name: 'Start benchmark' }).click();
  const pathsGroup = page.getByRole('group', { name: 'Paths' });
  await pathsGroup.locator('.field-error').filter({ hasText: 'exactly one kni path' }).waitFor();
  t.is(await pathsGroup.getAttribute('aria-invalid'), 'true');
  t.regex(await page.locator('.form-errors').innerText(), /invalid_request[\s\S]*body\.paths/);
  await page.getByText('No benchmark has run yet.').waitFor();
  await shot(page, 'benchmarks');

  // --- Every control has a label; a narrow screen needs no sideways scrolling of the page.
  for (const view of ['interfaces', 'vms', 'benchmarks']) {
    await page.goto(`${url}#/${view}`);
    await page.locator('main h1').waitFor();
    const unlabelled = await page.$$eval('main input, main select', (els) =>
      els.filter((e) => (e as unknown as { labels: ArrayLike<unknown> }).labels.length === 0).map((e) => e.outerHTML),
    );
    t.deepEqual(unlabelled, [], `unlabelled controls on ${view}`);
  }
  await page.setViewportSize({ width: 360, height: 740 });
  await page.goto(`${url}#/interfaces`);
  await page.locator(`tr[data-name="${IFACE}"]`).waitFor();
  t.true(await page.evaluate(() => document.documentElement.scrollWidth <= 360), 'the page scrolls sideways at 360 px');
  await shot(page, 'narrow');
  await page.setViewportSize({ width: 1280, height: 800 });

  // --- The service goes away: the dashboard says so and keeps what it knew.
  await page.goto(`${url}#/overview`);
  await page.locator('.conn.live').waitFor();
  stopVm.abort();
  const result = await appliance;
  t.is(result.kernelProblem, undefined, result.consoleTail.join('\n'));
  await page.locator('#banner').filter({ hasText: 'Cannot reach the kniv service' }).waitFor({ timeout: 60_000 });
  // What it knew stays on screen.
  t.regex(await page.locator('main').innerText(), new RegExp(kernel('6.1').release.replace(/\./g, '\\.')));
  await shot(page, 'service-down', false);

  t.deepEqual(pageErrors, []);
});
