// @ts-check
// Benchmarks: start a kni-vhost run, follow its phases, compare the paths of
// past runs (a KNI socket and a TAP device, both with vhost-net, VNET_HDR on
// and off) in charts and a table.
import { barChart } from '../lib/chart.js';
import { fmtPps, fmtTime, h, replace, si, stackable, uid } from '../lib/dom.js';
import { clearErrors, field, input, optNumber, select, showError, summary } from '../lib/forms.js';

/** @typedef {import('../lib/context.js').Ctx} Ctx */
/** @typedef {import('../lib/context.js').View} View */
/** @typedef {import('../lib/types.js').Benchmark} Benchmark */
/** @typedef {import('../../schemas.js').BenchPath} BenchPath */
/** @typedef {import('../../schemas.js').BenchResult} BenchResult */
/** @typedef {import('../../schemas.js').BenchResultItem} BenchResultItem */

/** @param {number} mbps */
const fmtMbps = (mbps) => si(mbps * 1e6, 'bit/s');

/** The API's order of the paths (the form's checkboxes follow it). @type {BenchPath[]} */
const PATHS = ['kni-vnethdr-off', 'kni-vnethdr-on', 'tap-vnethdr-on', 'tap-vnethdr-off'];
/** The charts' order: KNI beside TAP for each VNET_HDR setting, which is the comparison. @type {BenchPath[]} */
const CHART_ORDER = ['kni-vnethdr-on', 'tap-vnethdr-on', 'kni-vnethdr-off', 'tap-vnethdr-off'];
/** @type {Record<BenchPath, string>} */
const PATH_LABEL = {
  'kni-vnethdr-off': 'KNI socket, VNET_HDR off',
  'kni-vnethdr-on': 'KNI socket, VNET_HDR on',
  'tap-vnethdr-on': 'TAP device, VNET_HDR on',
  'tap-vnethdr-off': 'TAP device, VNET_HDR off',
};
/** @type {Record<'host-to-guest' | 'guest-to-host', string>} */
const DIRECTION_LABEL = { 'host-to-guest': 'host → guest', 'guest-to-host': 'guest → host' };

/** @param {BenchResult | null} r */
const isTcg = (r) => r?.accel === 'tcg';

/**
 * What a run was asked for, in words: its paths, protocols, directions,
 * duration × repeats, UDP payload, vhost-net and interface.
 * @param {Benchmark} b
 */
export function configuration(b) {
  const s = b.spec;
  const paths = s.paths
    ? s.paths.length === PATHS.length
      ? 'all four paths'
      : s.paths.map((p) => PATH_LABEL[p]).join(' + ')
    : s.interface !== undefined
      ? "the interface's KNI path"
      : 'all four paths';
  const parts = [
    paths,
    s.protocols.map((p) => p.toUpperCase()).join(' + '),
    s.direction === 'both' ? 'both directions' : DIRECTION_LABEL[s.direction],
    `${s.durationS} s × ${s.repeat}`,
  ];
  if (s.protocols.includes('udp')) parts.push(`UDP ${s.udpPayloadBytes} B`);
  parts.push(`vhost-net ${s.vhost ? 'on' : 'off'}`);
  parts.push(s.interface !== undefined ? `via ${s.interface}` : 'temporary interfaces');
  return parts.join(' · ');
}

/**
 * Phases seen per running benchmark, in order, from the progress the store
 * holds; kept across visits to this screen.
 * @type {Map<string, string[]>}
 */
const phasesSeen = new Map();

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
    h(
      'p',
      { class: 'hint' },
      'The kni-vhost benchmark: one guest, one NIC per path, iperf3 TCP and UDP between it and the host. It compares a KNI interface’s socket with a TAP device, both with vhost-net, each with VNET_HDR on and off. A run takes minutes (the guest boots first).',
    ),
    running,
    form.el,
    h('h2', { id: 'bench-compare-h', tabindex: '-1' }, 'Results compared'),
    compare,
    h('h2', {}, 'History'),
    history,
  );

  /** The run the charts show; undefined: the newest with results. @type {string | undefined} */
  let chosen;
  /** @param {string} id @param {boolean} [focus] move focus to the charts (from the history's Show) */
  const show = (id, focus = false) => {
    chosen = id;
    render();
    if (focus) /** @type {HTMLElement | null} */ (el.querySelector('#bench-compare-h'))?.focus();
  };

  const render = () => {
    const list = ctx.store.benchmarks;
    renderRunning(ctx, running, list);

    const done = list.filter((b) => b.state === 'succeeded' && b.result && b.result.results.length > 0);
    const current = done.find((b) => b.id === chosen) ?? done[0];
    if (!current) {
      replace(compare, h('p', { class: 'empty' }, 'No results to compare yet: a successful run’s paths are charted here side by side.'));
    } else {
      replace(compare, compareRun(current, done, compare.clientWidth, (id) => show(id)));
    }

    if (list.length === 0) {
      replace(history, h('p', { class: 'empty', id: 'bench-caption' }, 'No benchmark has run yet.'));
      return;
    }
    replace(history, historyTable(list, current?.id, (id) => show(id, true)));
  };
  // The charts are drawn at their container's width: redraw when that width changes.
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

/**
 * The running benchmark, if any: its progress bar, current phase and the phases so far.
 * @param {Ctx} ctx
 * @param {HTMLElement} container
 * @param {Benchmark[]} list
 */
function renderRunning(ctx, container, list) {
  // Every progress event re-renders this view, the first ones often before
  // the list has the run: note each run's phase as it comes.
  const ended = (/** @type {string} */ id) => list.some((b) => b.id === id && b.state !== 'running');
  for (const [id, p] of ctx.store.progress) {
    if (ended(id)) continue;
    const seen = phasesSeen.get(id) ?? [];
    if (seen[seen.length - 1] !== p.phase) seen.push(p.phase);
    phasesSeen.set(id, seen);
  }
  for (const id of phasesSeen.keys()) if (ended(id)) phasesSeen.delete(id);
  const live = list.find((b) => b.state === 'running');
  if (!live) {
    replace(container);
    return;
  }
  const p = ctx.store.progress.get(live.id) ?? live.progress;
  const seen = phasesSeen.get(live.id) ?? (p ? [p.phase] : []);
  const pct = Math.round((p?.fraction ?? 0) * 100);
  replace(
    container,
    h(
      'div',
      { class: 'panel running' },
      h('h2', {}, 'Running'),
      h('p', {}, `${configuration(live)} — started ${fmtTime(live.createdAt)}`),
      h('progress', { max: 100, value: pct, 'aria-label': 'Benchmark progress' }, `${pct}%`),
      h(
        'p',
        { class: 'phase' },
        h('strong', {}, `${pct}%`),
        p ? ` — ${p.phase}${p.message ? `: ${p.message}` : ''}` : ' — waiting for the first progress report',
      ),
      seen.length > 1
        ? h(
            'ol',
            { class: 'phases', 'aria-label': 'Phases so far' },
            seen.map((phase, i) => h('li', i === seen.length - 1 ? { 'aria-current': 'step' } : { class: 'done' }, phase)),
          )
        : null,
    ),
  );
}

/**
 * One run's paths compared: a chart of TCP Mbit/s and one of UDP packets/s
 * (one group per direction, one bar per path), the numbers in a table, and
 * what to keep in mind reading them.
 * @param {Benchmark} b
 * @param {Benchmark[]} done every run with results, newest first
 * @param {number} containerWidth
 * @param {(id: string) => void} pick
 */
function compareRun(b, done, containerWidth, pick) {
  const r = /** @type {BenchResult} */ (b.result);
  const width = Math.min(containerWidth || 600, 840);
  const tcg = isTcg(r);
  /** @param {string} protocol @param {string} direction @param {BenchPath} path */
  const item = (protocol, direction, path) => r.results.find((x) => x.protocol === protocol && x.direction === direction && x.path === path);
  const paths = CHART_ORDER.filter((p) => r.results.some((x) => x.path === p));
  const directions = /** @type {const} */ (['host-to-guest', 'guest-to-host']).filter((d) => r.results.some((x) => x.direction === d));

  /**
   * @param {'tcp' | 'udp'} protocol
   * @param {string} title
   * @param {(x: BenchResultItem) => number | null} value
   * @param {(v: number) => string} format
   */
  const chart = (protocol, title, value, format) => {
    const rows = directions
      .map((d) => ({
        label: DIRECTION_LABEL[d],
        bars: paths.flatMap((p) => {
          const x = item(protocol, d, p);
          const v = x ? value(x) : null;
          return x && v !== null ? [{ label: PATH_LABEL[p], value: v, cls: `${x.backend} ${x.vnetHdr ? 'hdr-on' : 'hdr-off'}` }] : [];
        }),
      }))
      .filter((row) => row.bars.length > 0);
    if (rows.length === 0) return null;
    const summaryText = rows.map((row) => `${row.label}: ${row.bars.map((x) => `${x.label} ${format(x.value)}`).join(', ')}`).join('; ');
    return h(
      'figure',
      { class: 'bench-chart', 'data-protocol': protocol },
      h('figcaption', {}, title),
      barChart({ width, rows, format, label: `${title}${tcg ? ' (TCG: emulation-dominated)' : ''}. ${summaryText}` }),
    );
  };

  const picker = select(
    'run',
    done.map((x) => [x.id, `${fmtTime(x.createdAt)} — ${configuration(x)}${isTcg(x.result) ? ' · TCG' : ''}`]),
    b.id,
  );
  picker.dataset.key = 'run-picker';
  picker.addEventListener('change', () => pick(picker.value));

  const notStarted = r.vhostStatus.filter((v) => v.requested && !v.started).map((v) => PATH_LABEL[v.path]);
  return [
    done.length > 1 ? h('div', { class: 'run-picker' }, field({ label: 'Run shown', control: picker, wide: true })) : null,
    h(
      'p',
      { class: 'run-meta' },
      `${fmtTime(b.createdAt)} · ${configuration(b)} · guest ${r.guest.kernel}, ${r.guest.vcpus} vCPU, ${r.guest.memoryMiB} MiB, booted in ${Math.round(r.guest.bootSeconds)} s · ${r.accel ? r.accel.toUpperCase() : 'accelerator unknown'} · ${Math.round(r.seconds)} s in all`,
    ),
    tcg
      ? h(
          'p',
          { class: 'note warn', 'data-accel': 'tcg' },
          h('strong', {}, 'TCG, emulation-dominated. '),
          'The guest ran without KVM: qemu emulated every instruction, so these figures measure the emulation and the machine’s load far more than kni.ko, vhost-net or the TAP driver. Compare the paths within this run, never as speeds of the data path.',
        )
      : null,
    !r.vhostVerified
      ? h(
          'p',
          { class: 'note bad' },
          h('strong', {}, 'vhost-net did not carry every NIC that asked for it. '),
          notStarted.length ? `Not started: ${notStarted.join(', ')}. ` : '',
          r.vhostFallback ? `qemu said: ${r.vhostFallback}` : '',
        )
      : null,
    h(
      'p',
      { class: 'legend' },
      h('span', { class: 'key-bar kni hdr-on' }, 'KNI socket'),
      h('span', { class: 'key-bar tap hdr-on' }, 'TAP device'),
      h('span', { class: 'muted' }, 'filled: VNET_HDR on, hollow: off'),
    ),
    h(
      'div',
      { class: 'bench-charts' },
      chart('tcp', 'TCP throughput (Mbit/s)', (x) => x.mbps, fmtMbps),
      chart('udp', `UDP packets/s (${r.udpPayloadBytes}-byte payload)`, (x) => x.packetsPerSecond, fmtPps),
    ),
    numbersTable(r, paths, directions, item),
  ];
}

/**
 * The numbers behind the charts: one row per path, one column per protocol and direction.
 * @param {BenchResult} r
 * @param {BenchPath[]} paths
 * @param {('host-to-guest' | 'guest-to-host')[]} directions
 * @param {(protocol: string, direction: string, path: BenchPath) => BenchResultItem | undefined} item
 */
function numbersTable(r, paths, directions, item) {
  const protocols = /** @type {const} */ (['tcp', 'udp']).filter((p) => r.results.some((x) => x.protocol === p));
  const cols = protocols.flatMap((p) => directions.map((d) => ({ p, d, name: `${p.toUpperCase()} ${DIRECTION_LABEL[d]}` })));
  const captionId = uid('bench-numbers');
  const runs = r.results[0]?.runs ?? r.repeat;
  return h(
    'div',
    { class: 'table-wrap bench-numbers-wrap', role: 'region', 'aria-labelledby': captionId, tabindex: '0' },
    stackable(
      h(
        'table',
        { class: 'data bench-numbers' },
        h(
          'caption',
          { id: captionId },
          `The numbers${runs > 1 ? ` (medians of ${runs} runs)` : ''}: TCP is Mbit/s received and the sender’s retransmits, UDP datagrams received per second and the share lost`,
          isTcg(r) ? ' — TCG, emulation-dominated' : '',
        ),
        h('thead', {}, h('tr', {}, ['Path', 'vhost-net', ...cols.map((c) => c.name)].map((c) => h('th', { scope: 'col' }, c)))),
        h(
          'tbody',
          {},
          paths.map((path) => {
            const st = r.vhostStatus.find((v) => v.path === path);
            return h(
              'tr',
              { 'data-path': path },
              h('th', { scope: 'row' }, PATH_LABEL[path], h('div', { class: 'small muted' }, h('code', {}, path))),
              h('td', {}, st ? (st.started ? 'started' : st.requested ? h('span', { class: 'error-text' }, 'not started') : 'off') : '—'),
              cols.map(({ p, d }) => {
                const x = item(p, d, path);
                if (!x) return h('td', { class: 'num' }, '—');
                return p === 'tcp'
                  ? h('td', { class: 'num' }, fmtMbps(x.mbps), x.retransmits !== null ? h('div', { class: 'small muted' }, `${x.retransmits} retransmits`) : null)
                  : h(
                      'td',
                      { class: 'num' },
                      fmtPps(x.packetsPerSecond ?? undefined),
                      h('div', { class: 'small muted' }, `${x.lossPercent === null ? '—' : `${Number(x.lossPercent.toPrecision(3))}%`} lost · ${fmtMbps(x.mbps)}`),
                    );
              }),
            );
          }),
        ),
      ),
    ),
  );
}

/**
 * Every run, newest first; a run with results can be shown in the charts.
 * @param {Benchmark[]} list
 * @param {string | undefined} shown
 * @param {(id: string) => void} show
 */
function historyTable(list, shown, show) {
  return stackable(
    h(
      'table',
      { class: 'data' },
      h('caption', { id: 'bench-caption' }, `${list.length} run${list.length === 1 ? '' : 's'}, newest first`),
      h('thead', {}, h('tr', {}, ['Started', 'State', 'Configuration', 'Result', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        {},
        list.map((b) => {
          const r = b.result;
          const charted = b.state === 'succeeded' && r !== null && r.results.length > 0;
          return h(
            'tr',
            { 'data-id': b.id },
            h('td', {}, fmtTime(b.createdAt)),
            h('td', {}, h('span', { class: `badge ${b.state === 'succeeded' ? 'good' : b.state === 'failed' ? 'bad' : 'busy'}` }, b.state)),
            h('td', {}, configuration(b)),
            h(
              'td',
              {},
              r
                ? [
                    `${r.results.length} result${r.results.length === 1 ? '' : 's'} in ${Math.round(r.seconds)} s `,
                    r.accel ? h('span', { class: `badge ${isTcg(r) ? 'busy' : 'off'}` }, isTcg(r) ? 'TCG: emulation-dominated' : r.accel.toUpperCase()) : null,
                    r.vhostVerified ? null : h('div', { class: 'error-text' }, 'vhost-net not verified'),
                  ]
                : b.error
                  ? h('span', { class: 'error-text' }, b.error)
                  : '—',
            ),
            h(
              'td',
              { class: 'row-actions' },
              charted
                ? b.id === shown
                  ? h('span', { class: 'muted' }, 'shown above')
                  : h('button', { type: 'button', 'data-key': `show-${b.id}`, 'aria-label': `Show the run of ${fmtTime(b.createdAt)} in the charts`, onclick: () => show(b.id) }, 'Show')
                : '—',
            ),
          );
        }),
      ),
    ),
  );
}

/**
 * A group of checkboxes that is one field of the request: the API's issues
 * for that field (or one of its items) land in its error slot.
 * @param {{ legend: string, name: string, field: string, options: [string, string][], hint?: string }} o
 * @returns {{ el: HTMLFieldSetElement, values: () => string[] }}
 */
function checkGroup(o) {
  const id = uid('g');
  const boxes = o.options.map(([value, label]) => {
    const box = input(o.name, { type: 'checkbox', value, checked: true, id: uid('f') });
    return { box, el: h('div', { class: 'field check' }, box, h('label', { for: box.id }, label)) };
  });
  const el = h(
    'fieldset',
    {
      id,
      class: 'checks',
      tabindex: '-1',
      'data-field': o.field,
      'aria-describedby': [o.hint ? `${id}-hint` : '', `${id}-err`].filter(Boolean).join(' '),
    },
    h('legend', {}, o.legend),
    h(
      'div',
      { class: 'check-row' },
      boxes.map((b) => b.el),
    ),
    o.hint ? h('p', { class: 'hint', id: `${id}-hint` }, o.hint) : null,
    h('p', { class: 'field-error', id: `${id}-err`, hidden: true }),
  );
  return { el, values: () => boxes.filter((b) => b.box.checked).map((b) => b.box.value) };
}

/** @param {Ctx} ctx */
function startForm(ctx) {
  const paths = checkGroup({
    legend: 'Paths',
    name: 'paths',
    field: 'body.paths',
    options: PATHS.map((p) => [p, PATH_LABEL[p]]),
    hint: 'One guest NIC each. With an interface: exactly one KNI path (it sets the interface’s VNET_HDR for the run).',
  });
  const protocols = checkGroup({
    legend: 'Protocols',
    name: 'protocols',
    field: 'body.protocols',
    options: [
      ['tcp', 'TCP (Mbit/s)'],
      ['udp', 'UDP (packets/s)'],
    ],
  });
  const iface = select('interface', []);
  const syncInterfaces = () => {
    const keep = iface.value;
    iface.replaceChildren(
      h('option', { value: '' }, 'temporary interfaces'),
      ...ctx.store.interfaces.map((i) => h('option', { value: i.name }, i.name)),
    );
    iface.value = [...iface.options].some((o) => o.value === keep) ? keep : '';
  };
  syncInterfaces();
  const direction = select('direction', [
    ['both', 'both directions'],
    ['host-to-guest', 'host → guest'],
    ['guest-to-host', 'guest → host'],
  ]);
  const duration = input('durationS', { type: 'number', min: 1, max: 300, value: '10', inputmode: 'numeric' });
  const repeat = input('repeat', { type: 'number', min: 1, max: 5, value: '1', inputmode: 'numeric' });
  const udpBytes = input('udpPayloadBytes', { type: 'number', min: 16, max: 1472, value: '64', inputmode: 'numeric' });
  const vhost = input('vhost', { type: 'checkbox', checked: true });
  const el = h(
    'form',
    { class: 'panel', novalidate: true, 'aria-labelledby': 'bench-start-h' },
    h('h2', { id: 'bench-start-h' }, 'Start a benchmark'),
    summary(),
    paths.el,
    protocols.el,
    h(
      'div',
      { class: 'grid' },
      field({ label: 'Direction', control: direction, field: 'body.direction' }),
      field({ label: 'Duration (s)', control: duration, field: 'body.durationS', hint: '1–300, each iperf3 run' }),
      field({ label: 'Repeat', control: repeat, field: 'body.repeat', hint: '1–5 runs of each case; medians shown' }),
      field({ label: 'UDP payload (bytes)', control: udpBytes, field: 'body.udpPayloadBytes', hint: '16–1472' }),
      field({
        label: 'Interface',
        control: iface,
        field: 'body.interface',
        hint: 'An active interface with a TAP port backing no VM, lent to the run; or temporary ones',
      }),
      field({ label: 'vhost-net', control: vhost, field: 'body.vhost', hint: 'off: qemu moves the packets itself' }),
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start benchmark')),
  );
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(el);
    // Exactly what the form shows goes to the API, which checks it (an empty choice included).
    /** @type {Record<string, unknown>} */
    const body = { paths: paths.values(), protocols: protocols.values(), direction: direction.value, vhost: vhost.checked };
    for (const [key, control] of /** @type {const} */ ([
      ['durationS', duration],
      ['repeat', repeat],
      ['udpPayloadBytes', udpBytes],
    ])) {
      const n = optNumber(control);
      if (n !== undefined) body[key] = n;
    }
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
