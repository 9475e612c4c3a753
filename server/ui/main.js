// @ts-check
// The dashboard's shell: log in, load the resources, follow the event stream,
// route between the views, and say clearly when the service is down or the
// token is wrong.
import { Api, ApiError, ServiceDownError, tokenStore } from './lib/api.js';
import { h, replace } from './lib/dom.js';
import { EventStream } from './lib/events.js';
import { Store } from './lib/store.js';
import { benchmarksView } from './views/benchmarks.js';
import { interfacesView } from './views/interfaces.js';
import { downView, loginView } from './views/login.js';
import { overview } from './views/overview.js';
import { trafficView } from './views/traffic.js';
import { vmsView } from './views/vms.js';

/** @typedef {import('./lib/context.js').Ctx} Ctx */
/** @typedef {import('./lib/context.js').View} View */
/** @typedef {import('./lib/types.js').KnivEvent} KnivEvent */
/** @typedef {'system' | 'interfaces' | 'vms' | 'benchmarks'} Resource */

const ROUTES = {
  overview: { title: 'Overview', view: overview },
  interfaces: { title: 'Interfaces', view: interfacesView },
  vms: { title: 'VMs', view: vmsView },
  traffic: { title: 'Traffic', view: trafficView },
  benchmarks: { title: 'Benchmarks', view: benchmarksView },
};
/** @typedef {keyof typeof ROUTES} Route */

const RETRY_MS = 5000;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const main = $('main');
const nav = $('nav');
const conn = $('conn');
const status = $('status');
const banner = $('banner');
const logout = /** @type {HTMLButtonElement} */ ($('logout'));

const store = new Store();
/** @type {Api | undefined} */
let api;
/** @type {EventStream | undefined} */
let stream;
/** @type {{ route: Route, view: View } | undefined} */
let current;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let retryTimer;
/** @type {ReturnType<typeof setInterval> | undefined} */
let countdown;

store.subscribe((topics) => current?.view.update?.(topics));

/** @param {string} message @param {'ok' | 'error'} [kind] */
function say(message, kind = 'ok') {
  status.className = `status ${kind}`;
  // Emptied first so that the same message twice is announced twice.
  status.textContent = '';
  requestAnimationFrame(() => (status.textContent = message));
}

/** @type {Record<Resource, string>} */
const PATHS = { system: '/v1/system', interfaces: '/v1/interfaces', vms: '/v1/vms', benchmarks: '/v1/benchmarks' };

/** @param {...Resource} topics */
async function load(...topics) {
  const a = /** @type {Api} */ (api);
  const got = await Promise.all(topics.map((t) => a.get(PATHS[t])));
  topics.forEach((t, i) => {
    if (t === 'system') store.system = got[i];
    else store[t] = got[i].items;
  });
  store.changed(...topics);
}

/**
 * Re-reads resources after an action or an event; a failure here is not the
 * user's to handle in a form, so it goes to the shell.
 * @param {...Resource} topics
 */
async function refresh(...topics) {
  try {
    await load(...topics);
    hideBanner();
  } catch (err) {
    connectionProblem(err);
  }
}

// Events name what changed; the lists are re-read (once per burst) rather
// than patched, so the dashboard always shows the API's own view.
/** @type {Set<Resource>} */
const pending = new Set();
/** @type {ReturnType<typeof setTimeout> | undefined} */
let pendingTimer;
/** @param {...Resource} topics */
function refreshSoon(...topics) {
  for (const t of topics) pending.add(t);
  clearTimeout(pendingTimer);
  pendingTimer = setTimeout(() => {
    const list = [...pending];
    pending.clear();
    void refresh(...list);
  }, 150);
}

/** @param {KnivEvent} e */
function onEvent(e) {
  switch (e.type) {
    case 'counters': {
      const data = /** @type {{ interfaces: Record<string, any>, vms: Record<string, string> }} */ (e.data);
      store.addCounters(e.time, data.interfaces ?? {});
      const vms = data.vms ?? {};
      if (store.vms.some((v) => vms[v.name] !== undefined && vms[v.name] !== v.state)) refreshSoon('vms');
      break;
    }
    case 'interface.created':
    case 'interface.changed':
    case 'interface.deleted':
    case 'interface.failed':
      refreshSoon('interfaces');
      break;
    case 'vm.created':
    case 'vm.state':
    case 'vm.deleted':
      refreshSoon('vms', 'interfaces');
      break;
    case 'benchmark.progress': {
      const d = /** @type {{ id: string, progress: import('./lib/types.js').BenchProgress }} */ (e.data);
      store.progress.set(d.id, d.progress);
      store.changed('benchmarks');
      break;
    }
    case 'benchmark.started':
    case 'benchmark.finished':
      refreshSoon('benchmarks');
      break;
    case 'service.reconciled':
      refreshSoon('system', 'interfaces', 'vms', 'benchmarks');
      break;
  }
}

/** @param {import('./lib/events.js').StreamState | 'off'} s */
function streamState(s) {
  const was = store.stream;
  store.stream = s;
  store.changed('stream');
  const text = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', off: 'Offline' }[s];
  conn.textContent = text;
  conn.className = `conn ${s}`;
  // Back after a gap: what happened meanwhile is re-read.
  if (s === 'live' && was !== 'connecting' && was !== 'live') refreshSoon('system', 'interfaces', 'vms', 'benchmarks');
  // EventSource retries a dropped connection forever without saying why; if
  // it is not back soon, ask the API, which tells a dead service from a bad token.
  clearTimeout(stalled);
  if (s === 'reconnecting') stalled = setTimeout(() => store.stream === 'reconnecting' && void checkService(), 3000);
}
/** @type {ReturnType<typeof setTimeout> | undefined} */
let stalled;

function openStream() {
  stream?.close();
  stream = new EventStream(/** @type {Api} */ (api).token, {
    onEvent,
    onState: streamState,
    // The stream closed for good: find out why before opening a new one.
    onGiveUp: () => {
      streamState('reconnecting');
      void checkService();
    },
  });
  stream.open();
}

async function checkService() {
  clearTimeout(retryTimer);
  try {
    await load('system', 'interfaces', 'vms', 'benchmarks');
    hideBanner();
    openStream();
  } catch (err) {
    connectionProblem(err);
  }
}

/** @param {unknown} err */
function connectionProblem(err) {
  if (err instanceof ApiError && err.isAuth) {
    signOut(`The service no longer accepts this token (${err.code}: ${err.message}). Log in again with the current one.`);
    return;
  }
  const reason = err instanceof Error ? err.message : String(err);
  stream?.close();
  streamState('off');
  showBanner(`Cannot reach the kniv service: ${reason}. Showing what was last known; trying again every ${RETRY_MS / 1000} s.`);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(checkService, RETRY_MS);
}

/** @param {string} text */
function showBanner(text) {
  replace(banner, h('p', {}, text), h('button', { type: 'button', onclick: () => void checkService() }, 'Retry now'));
  banner.hidden = false;
}

function hideBanner() {
  banner.hidden = true;
  replace(banner);
}

// --- Screens ------------------------------------------------------------------

/** @param {boolean} on */
function chrome(on) {
  nav.hidden = !on;
  logout.hidden = !on;
  conn.hidden = !on;
}

/** @param {string} [message] */
function signOut(message) {
  tokenStore.clear();
  stream?.close();
  stream = undefined;
  api = undefined;
  clearTimeout(retryTimer);
  current?.view.destroy?.();
  current = undefined;
  hideBanner();
  chrome(false);
  document.title = 'Log in — kniv';
  replace(
    main,
    loginView({
      ...(message ? { message } : {}),
      onToken: async (token, report) => {
        try {
          await new Api(token).get('/v1/system');
        } catch (err) {
          if (err instanceof ApiError && err.isAuth) {
            report(
              err.status === 401
                ? `The service refused the request (${err.code}): ${err.message}.`
                : `Wrong token: the service refused it (${err.code}: ${err.message}). Copy it again from the token file.`,
            );
          } else if (err instanceof ServiceDownError) {
            report(`Cannot reach the kniv service: ${err.message}. Is it running?`);
          } else {
            report(String(/** @type {Error} */ (err).message ?? err));
          }
          return;
        }
        tokenStore.set(token);
        await start();
      },
    }),
  );
}

/** @param {string} reason */
function serviceDown(reason) {
  chrome(false);
  document.title = 'Service down — kniv';
  clearInterval(countdown);
  const retry = () => {
    clearInterval(countdown);
    clearTimeout(retryTimer);
    void start();
  };
  const { el, left } = downView({ reason, retryMs: RETRY_MS, onRetry: retry });
  replace(main, el);
  let n = RETRY_MS / 1000;
  countdown = setInterval(() => (left.textContent = String(Math.max(0, --n))), 1000);
  retryTimer = setTimeout(retry, RETRY_MS);
}

async function start() {
  const token = tokenStore.get();
  if (!token) return signOut();
  api = new Api(token);
  try {
    await load('system', 'interfaces', 'vms', 'benchmarks');
  } catch (err) {
    if (err instanceof ApiError && err.isAuth) return signOut(`The stored token was refused (${err.code}: ${err.message}). Log in again.`);
    return serviceDown(err instanceof Error ? err.message : String(err));
  }
  clearInterval(countdown);
  chrome(true);
  openStream();
  route(true);
}

/** @param {boolean} [first] */
function route(first = false) {
  if (!api) return;
  const name = /** @type {Route} */ (location.hash.replace(/^#\/?/, '') || 'overview');
  const r = ROUTES[name] ?? ROUTES.overview;
  const key = /** @type {Route} */ (name in ROUTES ? name : 'overview');
  current?.view.destroy?.();
  status.textContent = '';
  /** @type {Ctx} */
  const ctx = { api, store, say, refresh };
  const view = r.view(ctx);
  current = { route: key, view };
  replace(main, view.el);
  document.title = `${r.title} — kniv`;
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === `#/${key}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // Moving between views moves focus to the new heading, so screen readers announce it.
  if (!first) view.el.querySelector('h1')?.focus();
}

window.addEventListener('hashchange', () => route());
logout.addEventListener('click', () => signOut());
void start();
