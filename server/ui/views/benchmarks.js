// @ts-check
// Benchmarks: start one, follow its progress, compare past results.
import { barChart } from '../lib/chart.js';
import { dataTable, fmtTime, h, replace, si } from '../lib/dom.js';
import { clearErrors, field, formPanel, input, optNumber, select, showError } from '../lib/forms.js';

/** @typedef {import('../lib/context.js').Ctx} Ctx */
/** @typedef {import('../lib/context.js').View} View */
/** @typedef {import('../lib/types.js').Benchmark} Benchmark */

/** @param {number} mbps */
const fmtMbps = (mbps) => si(mbps * 1e6, 'bit/s');

/**
 * What a run compared: every field of its spec but the duration and the
 * direction (directions are the bars), and the accelerator it ran under. New
 * spec fields (the path, VNET_HDR) become part of the label by themselves.
 * @param {Benchmark} b
 */
export function configuration(b) {
  const parts = [];
  for (const [k, v] of Object.entries(b.spec)) {
    if (k === 'durationS' || k === 'direction') continue;
    if (k === 'vhost') parts.push(`vhost-net ${v ? 'on' : 'off'}`);
    else if (k === 'interface') parts.push(`via ${v}`);
    else parts.push(`${k} ${typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v)}`);
  }
  if (b.spec.interface === undefined) parts.push('temporary interface');
  if (b.result?.accel) parts.push(b.result.accel.toUpperCase());
  return parts.join(' · ');
}

/**
 * @param {Ctx} ctx
 * @returns {View}
 */
export function benchmarksView(ctx) {
  const running = h('div', { 'aria-live': 'polite' });
  const compare = h('div');
  const history = h('div', { class: 'table-wrap', role: 'region', 'aria-labelledby': 'bench-caption', tabindex: '0' });
  const form = startForm(ctx);
  const el = h(
    'section',
    { 'aria-labelledby': 'bench-h' },
    h('h1', { id: 'bench-h', tabindex: '-1' }, 'Benchmarks'),
    h('p', { class: 'hint' }, 'Guest↔host throughput through a KNI interface’s socket and vhost-net. Under TCG (no KVM) absolute numbers say little; compare runs made on the same machine.'),
    running,
    form.el,
    h('h2', {}, 'Results compared'),
    compare,
    h('h2', {}, 'History'),
    history,
  );

  const render = () => {
    const list = ctx.store.benchmarks;
    const live = list.find((b) => b.state === 'running');
    if (live) {
      const p = ctx.store.progress.get(live.id) ?? live.progress;
      const pct = Math.round((p?.fraction ?? 0) * 100);
      replace(
        running,
        h(
          'div',
          { class: 'panel running' },
          h('h2', {}, 'Running'),
          h('p', {}, `${configuration(live)}, ${live.spec.direction}, ${live.spec.durationS} s — started ${fmtTime(live.createdAt)}`),
          h('progress', { max: 100, value: pct, 'aria-label': 'Benchmark progress' }, `${pct}%`),
          h('p', {}, `${pct}%`, p ? ` — ${p.phase}${p.message ? `: ${p.message}` : ''}` : ' — waiting for the first progress report'),
        ),
      );
    } else {
      replace(running);
    }

    const done = list.filter((b) => b.state === 'succeeded' && b.result && b.result.results.length > 0);
    if (done.length === 0) {
      replace(compare, h('p', { class: 'empty' }, 'No results to compare yet: every successful run adds its throughput here, grouped by configuration.'));
    } else {
      /** @type {Map<string, Map<string, number[]>>} */
      const groups = new Map();
      for (const b of done) {
        const g = groups.get(configuration(b)) ?? new Map();
        for (const r of b.result?.results ?? []) g.set(r.direction, [...(g.get(r.direction) ?? []), r.mbps]);
        groups.set(configuration(b), g);
      }
      const rows = [...groups].map(([label, dirs]) => ({
        label,
        bars: [...dirs].map(([dir, values]) => ({
          label: `${dir === 'guest-to-host' ? 'guest → host' : 'host → guest'}${values.length > 1 ? ` (mean of ${values.length})` : ''}`,
          value: values.reduce((a, b) => a + b, 0) / values.length,
          cls: dir === 'guest-to-host' ? 'rx' : 'tx',
        })),
      }));
      const width = Math.min(compare.clientWidth || 600, 1000);
      replace(
        compare,
        barChart({
          width,
          rows,
          format: fmtMbps,
          label: rows.map((r) => `${r.label}: ${r.bars.map((b) => `${b.label} ${fmtMbps(b.value)}`).join(', ')}`).join('; '),
        }),
      );
    }

    if (list.length === 0) {
      replace(history, h('p', { class: 'empty', id: 'bench-caption' }, 'No benchmark has run yet.'));
      return;
    }
    replace(
      history,
      dataTable({
        captionId: 'bench-caption',
        caption: `${list.length} run${list.length === 1 ? '' : 's'}, newest first`,
        columns: ['Started', 'State', 'Configuration', 'Direction', 'Duration', 'Result'],
        rows: list.map((b) =>
          h(
            'tr',
            {},
            h('td', {}, fmtTime(b.createdAt)),
            h('td', {}, h('span', { class: `badge ${b.state === 'succeeded' ? 'good' : b.state === 'failed' ? 'bad' : 'busy'}` }, b.state)),
            h('td', {}, configuration(b)),
            h('td', {}, b.spec.direction),
            h('td', { class: 'num' }, `${b.spec.durationS} s`),
            h(
              'td',
              {},
              b.result
                ? b.result.results.map((r) => h('div', {}, `${r.direction}: ${fmtMbps(r.mbps)}`, r.retransmits !== null ? `, ${r.retransmits} retransmits` : ''))
                : b.error
                  ? h('span', { class: 'error-text' }, b.error)
                  : '—',
            ),
          ),
        ),
      }),
    );
  };
  // The chart is drawn at its container's width: redraw when that width changes.
  let lastWidth = 0;
  const resize = new ResizeObserver(() => {
    if (compare.clientWidth !== lastWidth) {
      lastWidth = compare.clientWidth;
      render();
    }
  });
  resize.observe(compare);
  render();
  return {
    el,
    update: (topics) => {
      if (topics.has('benchmarks')) render();
      if (topics.has('interfaces')) form.syncInterfaces();
    },
    destroy: () => resize.disconnect(),
  };
}

/** @param {Ctx} ctx */
function startForm(ctx) {
  const iface = select('interface', []);
  const syncInterfaces = () => {
    const keep = iface.value;
    iface.replaceChildren(
      h('option', { value: '' }, 'a temporary interface'),
      ...ctx.store.interfaces.map((i) => h('option', { value: i.name }, i.name)),
    );
    iface.value = [...iface.options].some((o) => o.value === keep) ? keep : '';
  };
  syncInterfaces();
  const direction = select('direction', [
    ['both', 'both directions'],
    ['guest-to-host', 'guest → host'],
    ['host-to-guest', 'host → guest'],
  ]);
  const duration = input('durationS', { type: 'number', min: 1, max: 300, value: '10', inputmode: 'numeric' });
  const vhost = input('vhost', { type: 'checkbox', checked: true });
  const el = formPanel(
    { id: 'bench-start-h', title: 'Start a benchmark', submit: 'Start benchmark' },
    [
      field({ label: 'Interface', control: iface, field: 'body.interface' }),
      field({ label: 'Direction', control: direction, field: 'body.direction' }),
      field({ label: 'Duration (s)', control: duration, field: 'body.durationS', hint: '1–300' }),
      field({ label: 'vhost-net', control: vhost, field: 'body.vhost' }),
    ],
  );
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(el);
    /** @type {Record<string, unknown>} */
    const body = { direction: direction.value, vhost: vhost.checked };
    const d = optNumber(duration);
    if (d !== undefined) body.durationS = d;
    if (iface.value) body.interface = iface.value;
    try {
      await ctx.api.post('/v1/benchmarks', body);
      ctx.say('Benchmark started.');
      await ctx.refresh('benchmarks');
    } catch (err) {
      showError(el, err);
    }
  });
  return { el, syncInterfaces };
}
