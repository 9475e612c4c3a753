// Debian's chromium driven by playwright-core, for the dashboard's tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { chromium, type Page } from 'playwright-core';
import { projectRoot } from '../../qemu/paths.js';

export const CHROMIUM = '/usr/bin/chromium';
// The network here is closed: without these Chromium waits on connections it never gets.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where the dashboard tests leave their screenshots. */
export const ARTIFACTS = join(projectRoot, 'build', 'test-artifacts', 'dashboard');

/**
 * A page in a fresh chromium profile, closed and removed when the test ends;
 * `pageErrors` collects the page's uncaught exceptions.
 */
export async function openPage(
  t: ExecutionContext,
  options: { timeoutMs: number; viewport?: { width: number; height: number } },
): Promise<{ page: Page; pageErrors: string[] }> {
  const userData = mkdtempSync(join(tmpdir(), 'kniv-chromium-'));
  t.teardown(() => rmSync(userData, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(userData, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    ...(options.viewport ? { viewport: options.viewport } : {}),
  });
  t.teardown(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.setDefaultTimeout(options.timeoutMs);
  return { page, pageErrors };
}

/** Follows a link of the dashboard's navigation bar and waits for its heading. */
export async function go(page: Page, section: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: section }).click();
  await page.getByRole('heading', { name: section, level: 1 }).waitFor();
}
