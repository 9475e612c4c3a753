// The dashboard: the static files of server/ui/ served by the service itself,
// so it shares the API's origin. The files carry no data and are public; every
// call they make to the API needs the token. They are read once, when the app
// is built, from a fixed list of extensions: no request path ever reaches the
// file system.
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { projectRoot } from '../../qemu/paths.js';
import { EVENT_TYPES } from '../events.js';

export const UI_DIR = join(projectRoot, 'server', 'ui');

/**
 * Scripts, styles, images and data calls from this origin only: no inline
 * script or style, nothing from elsewhere, no framing, no form posts.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface Asset {
  type: string;
  body: Buffer;
}

/** url path under /ui/ → file, for every servable file under dir. */
export function loadUi(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      const type = TYPES[extname(entry.name)];
      if (entry.isFile() && type) assets.set(relative(dir, path).split(sep).join('/'), { type, body: readFileSync(path) });
    }
  };
  walk(dir);
  // Generated, not read: the event types the service sends (server/events.ts).
  assets.set('lib/event-types.js', {
    type: TYPES['.js']!,
    body: Buffer.from(`// Written by the service from server/events.ts.\nexport const EVENT_TYPES = ${JSON.stringify(EVENT_TYPES)};\n`),
  });
  return assets;
}

export function uiRoutes(app: FastifyInstance, dir: string): void {
  const assets = loadUi(dir);
  const index = assets.get('index.html');
  if (!index) throw new Error(`the dashboard has no index.html in ${dir}`);
  const send = (asset: Asset) => async (_req: unknown, reply: FastifyReply) =>
    reply
      .type(asset.type)
      .header('content-security-policy', UI_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      // Small files that change with the package: revalidate rather than cache.
      .header('cache-control', 'no-cache')
      .send(asset.body);
  app.get('/', { config: { public: true } }, send(index));
  for (const [path, asset] of assets) app.get(`/ui/${path}`, { config: { public: true } }, send(asset));
}
