// /v1/openapi.json and /docs: the API described from its zod schemas, and a
// small page that renders that description. Everything is served from here
// (no CDN). Both are public: they describe the API, not this installation.
import type { FastifyInstance } from 'fastify';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kniv API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/docs.css">
</head>
<body>
<header><h1>kniv API</h1><p id="about"></p>
<p>Every route but <code>/health</code>, <code>/docs</code> and <code>/v1/openapi.json</code> needs
<code>Authorization: Bearer &lt;token&gt;</code>; the token is in the state directory's <code>token</code> file (mode 0600).
Machine-readable: <a href="/v1/openapi.json">/v1/openapi.json</a>.</p></header>
<main id="ops">Loading /v1/openapi.json…</main>
<script src="/docs/docs.js"></script>
</body>
</html>
`;

const CSS = `body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem 2rem;color:#1d2327}
code,pre{font:13px/1.4 ui-monospace,monospace}pre{background:#f4f5f7;padding:.6rem;overflow:auto;border-radius:4px}
h2{margin-top:2rem;border-bottom:1px solid #ddd;text-transform:capitalize}
details{border:1px solid #ddd;border-radius:4px;margin:.4rem 0}summary{cursor:pointer;padding:.45rem .6rem}
details>div{padding:0 .8rem .6rem}.m{display:inline-block;width:4.5rem;font-weight:600}
.GET{color:#0a6}.POST{color:#06c}.PATCH{color:#a60}.DELETE{color:#c22}.p{font-family:ui-monospace,monospace}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}`;

// Renders the OpenAPI document with DOM calls only (no innerHTML of document text).
const SCRIPT = `'use strict';
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}
function schemaBlock(s) { return el('pre', {}, JSON.stringify(s, null, 2)); }
fetch('/v1/openapi.json').then((r) => r.json()).then((doc) => {
  document.getElementById('about').textContent = doc.info.description + ' (version ' + doc.info.version + ')';
  const main = document.getElementById('ops');
  main.textContent = '';
  const byTag = {};
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) (byTag[op.tags[0]] ||= []).push([method.toUpperCase(), path, op]);
  }
  for (const [tag, list] of Object.entries(byTag)) {
    main.append(el('h2', {}, tag));
    for (const [method, path, op] of list) {
      const body = el('div', {});
      if (op.description) body.append(el('p', {}, op.description));
      if (op.security && op.security.length === 0) body.append(el('p', {}, 'No token needed.'));
      if (op.parameters.length) {
        const t = el('table', {}, el('tr', {}, el('th', {}, 'parameter'), el('th', {}, 'in'), el('th', {}, 'schema')));
        for (const p of op.parameters) t.append(el('tr', {}, el('td', {}, el('code', {}, p.name)), el('td', {}, p.in), el('td', {}, schemaBlock(p.schema))));
        body.append(t);
      }
      if (op.requestBody) body.append(el('h4', {}, 'Request body (application/json)'), schemaBlock(op.requestBody.content['application/json'].schema));
      for (const [status, r] of Object.entries(op.responses)) {
        body.append(el('h4', {}, status + ' — ' + r.description));
        const c = r.content && Object.entries(r.content)[0];
        if (c && c[1].schema && c[1].schema.type !== 'string') body.append(schemaBlock(c[1].schema));
        else if (c) body.append(el('p', {}, c[0]));
      }
      main.append(el('details', {}, el('summary', {}, el('span', { class: 'm ' + method }, method), el('span', { class: 'p' }, path), ' — ' + op.summary), body));
    }
  }
}).catch((e) => { document.getElementById('ops').textContent = 'Cannot load /v1/openapi.json: ' + e; });
`;

export function docsRoutes(app: FastifyInstance, document: () => unknown): void {
  const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";
  const asset = (url: string, type: string, text: string) =>
    app.get(url, { config: { public: true } }, async (_req, reply) => reply.type(type).header('content-security-policy', csp).send(text));
  asset('/docs', 'text/html; charset=utf-8', PAGE);
  asset('/docs/docs.css', 'text/css; charset=utf-8', CSS);
  asset('/docs/docs.js', 'text/javascript; charset=utf-8', SCRIPT);
  app.get('/v1/openapi.json', { config: { public: true } }, async () => document());
}
