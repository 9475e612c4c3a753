// @ts-check
// Traffic: per-interface packets/s and bits/s over the last minutes, redrawn
// from each `counters` event of the stream (every 5 s), no reloading.
import { lineChart } from '../lib/chart.js';
import { fmtBps, fmtPps, h, replace } from '../lib/dom.js';
import { HISTORY } from '../lib/store.js';

/** @typedef {import('../lib/context.js').Ctx} Ctx */
/** @typedef {import('../lib/context.js').View} View */
/** @typedef {import('../lib/store.js').RateSample} RateSample */

/** The charts span the history there is, from one minute up to what the store keeps (10 minutes at 5 s). */
const MIN_SPAN_MS = 60_000;
const MAX_SPAN_MS = HISTORY * 5000;

/**
 * @param {Ctx} ctx
 * @returns {View}
 */
export function trafficView(ctx) {
  const body = h('div', { class: 'charts' });
  const el = h(
    'section',
    { 'aria-labelledby': 'traffic-h' },
    h('h1', { id: 'traffic-h', tabindex: '-1' }, 'Traffic'),
    h('p', { class: 'hint' }, 'Received (port → interface, solid) and sent (interface → port, dashed) by each KNI interface, from the service’s counters every 5 s. Up to the last 10 minutes are kept while the dashboard is open.'),
    body,
  );

  const render = () => {
    const list = ctx.store.interfaces;
    if (list.length === 0) {
      replace(body, h('p', { class: 'empty' }, 'No interfaces, so no traffic to show. Create one on the ', h('a', { href: '#/interfaces' }, 'Interfaces'), ' page.'));
      return;
    }
    // The card's padding and border take 34 px of the container's width.
    const width = (body.clientWidth || 600) - 34;
    // The right edge is the latest counters event, on the service's clock (the
    // samples' clock), whatever this browser's clock says.
    const latest = Math.max(0, ...list.map((i) => ctx.store.latest(i.name)?.t ?? 0));
    const now = latest || Date.now();
    const oldest = Math.min(now, ...list.map((i) => ctx.store.history.get(i.name)?.[0]?.t ?? now));
    const span = Math.min(MAX_SPAN_MS, Math.max(MIN_SPAN_MS, Math.ceil((now - oldest) / 60_000) * 60_000));
    replace(
      body,
      list.map((i) => {
        const hist = ctx.store.history.get(i.name) ?? [];
        const last = hist[hist.length - 1];
        /** @param {(s: RateSample) => number} f @returns {[number, number][]} */
        const pts = (f) => hist.map((s) => [s.t, f(s)]);
        return h(
          'article',
          { class: 'card chart-card', 'data-name': i.name },
          h('h2', {}, i.name, ' ', h('span', { class: 'small muted' }, `${i.port.kind}: ${i.port.ifname}`)),
          hist.length === 0
            ? h('p', { class: 'empty' }, ctx.store.stream === 'live' ? 'Measuring… the first rate comes with the second counters event (within 10 s).' : 'Waiting for the event stream to connect.')
            : [
                h(
                  'p',
                  { class: 'now', 'aria-live': 'off' },
                  h('span', { class: 'key rx' }, 'received'),
                  ` ${fmtPps(last?.rxPps)}, ${fmtBps(last?.rxBps)}`,
                  h('br'),
                  h('span', { class: 'key tx' }, 'sent'),
                  ` ${fmtPps(last?.txPps)}, ${fmtBps(last?.txBps)}`,
                ),
                h('h3', {}, 'Packets per second'),
                lineChart({
                  width,
                  now,
                  spanMs: span,
                  format: fmtPps,
                  label: `${i.name} packets per second: received ${fmtPps(last?.rxPps)}, sent ${fmtPps(last?.txPps)}`,
                  series: [
                    { label: 'received', cls: 'rx', points: pts((s) => s.rxPps) },
                    { label: 'sent', cls: 'tx', points: pts((s) => s.txPps) },
                  ],
                }),
                h('h3', {}, 'Bits per second'),
                lineChart({
                  width,
                  now,
                  spanMs: span,
                  format: fmtBps,
                  label: `${i.name} bits per second: received ${fmtBps(last?.rxBps)}, sent ${fmtBps(last?.txBps)}`,
                  series: [
                    { label: 'received', cls: 'rx', points: pts((s) => s.rxBps) },
                    { label: 'sent', cls: 'tx', points: pts((s) => s.txBps) },
                  ],
                }),
              ],
        );
      }),
    );
  };
  // Charts are drawn at the container's width: redraw when that width changes
  // (not its height, which each redraw changes).
  let lastWidth = 0;
  const resize = new ResizeObserver(() => {
    if (body.clientWidth !== lastWidth) {
      lastWidth = body.clientWidth;
      render();
    }
  });
  resize.observe(body);
  render();
  return {
    el,
    update: (topics) => {
      if (topics.has('rates') || topics.has('interfaces') || topics.has('stream')) render();
    },
    destroy: () => resize.disconnect(),
  };
}
