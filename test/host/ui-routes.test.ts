// How the service serves the dashboard's files: public, from memory, with a
// CSP; the data calls they make still need the token. (The dashboard itself is
// tested in a real browser in dashboard.test.ts.)
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { buildApp } from '../../server/app.js';
import { EVENT_TYPES } from '../../server/events.js';
import { loadUi, UI_CSP, UI_DIR } from '../../server/routes/ui.js';
import { harness } from '../lib/fakes.js';

test('GET / is the dashboard page without a token, with a CSP that allows nothing from elsewhere', async (t) => {
  const h = await harness(t);
  const res = await h.app.inject({ method: 'GET', url: '/' });
  t.is(res.statusCode, 200);
  t.regex(res.headers['content-type'] as string, /^text\/html/);
  t.is(res.headers['content-security-policy'], UI_CSP);
  t.regex(UI_CSP, /default-src 'none'/);
  t.regex(UI_CSP, /script-src 'self';/);
  t.notRegex(UI_CSP, /unsafe|\*|https?:/);
  t.is(res.headers['x-content-type-options'], 'nosniff');
  t.is(res.body, readFileSync(join(UI_DIR, 'index.html'), 'utf8'));
  t.regex(res.body, /<script type="module" src="\/ui\/main.js">/);
});

test('every script, style and image of the dashboard is served under /ui/ with its type; nothing else is', async (t) => {
  const h = await harness(t);
  const assets = loadUi(UI_DIR);
  t.true(assets.has('main.js') && assets.has('app.css') && assets.has('lib/api.js') && assets.has('views/vms.js'));
  t.false(assets.has('tsconfig.json'));
  for (const [path, asset] of assets) {
    const res = await h.app.inject({ method: 'GET', url: `/ui/${path}` });
    t.is(res.statusCode, 200, path);
    t.is(res.headers['content-type'], asset.type, path);
    t.is(res.rawPayload.compare(asset.body), 0, path);
  }
  // The modules import each other by relative path: every import resolves to a served file.
  for (const [path, asset] of assets) {
    if (!path.endsWith('.js')) continue;
    for (const m of asset.body.toString().matchAll(/^import .* from '(\.[^']+)';$/gm)) {
      const target = new URL(m[1]!, `http://x/ui/${path}`).pathname.slice('/ui/'.length);
      t.true(assets.has(target), `${path} imports ${m[1]}, which is not served`);
    }
  }
  // The event types the dashboard listens for are the service's own, written by the service.
  const types = await h.app.inject({ method: 'GET', url: '/ui/lib/event-types.js' });
  t.is(types.statusCode, 200);
  t.is(types.body.match(/^export const EVENT_TYPES = (\[.*\]);$/m)?.[1], JSON.stringify(EVENT_TYPES));
  t.false(assets.has('lib/event-types.d.ts'));
  // Files that are not the dashboard's, and paths that try to leave its folder, are not served.
  for (const url of ['/ui/tsconfig.json', '/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/nothing.js']) {
    const res = await h.app.inject({ method: 'GET', url });
    t.not(res.statusCode, 200, url);
  }
});

test('the dashboard files are public but the API they call is not', async (t) => {
  const h = await harness(t);
  t.is((await h.app.inject({ method: 'GET', url: '/ui/main.js' })).statusCode, 200);
  t.is((await h.app.inject({ method: 'GET', url: '/v1/system' })).statusCode, 401);
  t.is((await h.app.inject({ method: 'GET', url: '/v1/system', headers: h.auth })).statusCode, 200);
});

test('uiDir: false builds the service without a dashboard', async (t) => {
  const h = await harness(t);
  const app = buildApp({ token: h.token, uiDir: false }, { system: () => ({ kernel: 'k', kni: { loaded: false }, kvm: false, vhostNet: false }), service: h.service });
  t.teardown(() => app.close());
  t.is((await app.inject({ method: 'GET', url: '/', headers: h.auth })).statusCode, 404);
  t.is((await app.inject({ method: 'GET', url: '/ui/main.js', headers: h.auth })).statusCode, 404);
});

test('the dashboard has no inline script or style and loads nothing from another origin', (t) => {
  const html = readFileSync(join(UI_DIR, 'index.html'), 'utf8');
  t.notRegex(html, /<script(?![^>]*\ssrc=)[^>]*>/);
  t.notRegex(html, /<style|\sstyle=/);
  const files = readdirSync(UI_DIR, { recursive: true }).map(String).filter((f) => /\.(js|css|html)$/.test(f));
  for (const f of files) {
    const text = readFileSync(join(UI_DIR, f), 'utf8');
    t.notRegex(text, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, f);
    t.notRegex(text, /\.innerHTML\s*=|insertAdjacentHTML|document\.write/, f);
  }
});

/** WCAG 2 contrast ratio of two #rrggbb colours. */
function contrast(a: string, b: string): number {
  const lum = (hex: string) => {
    const [r, g, bl] = [1, 3, 5].map((i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * bl!;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

test("the stylesheet's colours: text at 4.5:1 or more on the backgrounds it is used on, chart strokes at 3:1", (t) => {
  const css = readFileSync(join(UI_DIR, 'app.css'), 'utf8');
  const v = Object.fromEntries([...css.matchAll(/--([a-z-]+):\s*(#[0-9a-f]{6});/gi)].map((m) => [m[1]!, m[2]!]));
  const text: [string, string][] = [
    ['fg', 'bg'],
    ['fg', 'panel'],
    ['muted', 'bg'],
    ['muted', 'panel'],
    ['accent', 'bg'],
    ['accent', 'panel'],
    ['accent-fg', 'accent'],
    ['bad-fg', 'panel'],
    ['good-fg', 'good-bg'],
    ['bad-fg', 'bad-bg'],
    ['off-fg', 'off-bg'],
    ['busy-fg', 'busy-bg'],
  ];
  for (const [fg, bg] of text) {
    t.truthy(v[fg] && v[bg], `--${fg} or --${bg} is missing`);
    const ratio = contrast(v[fg]!, v[bg]!);
    t.true(ratio >= 4.5, `--${fg} on --${bg}: ${ratio.toFixed(2)}:1`);
  }
  for (const stroke of ['rx', 'tx', 'focus']) {
    const ratio = contrast(v[stroke]!, v.panel!);
    t.true(ratio >= 3, `--${stroke} on --panel: ${ratio.toFixed(2)}:1`);
  }
});
