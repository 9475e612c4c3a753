// @ts-check
// Overview: what the appliance runs on (kernel, kni.ko and its parameters,
// KVM, vhost-net, qemu) and how many of each resource it manages.
import { fmtTime, h, replace } from '../lib/dom.js';

/** @typedef {import('../lib/context.js').Ctx} Ctx */
/** @typedef {import('../lib/context.js').View} View */

/** @param {boolean} ok @param {string} yes @param {string} no */
const badge = (ok, yes, no) => h('span', { class: `badge ${ok ? 'good' : 'bad'}` }, ok ? yes : no);

/**
 * @param {Ctx} ctx
 * @returns {View}
 */
export function overview(ctx) {
  const body = h('div', { class: 'cards' });
  const el = h('section', { 'aria-labelledby': 'overview-h' }, h('h1', { id: 'overview-h', tabindex: '-1' }, 'Overview'), body);

  const render = () => {
    const sys = ctx.store.system;
    if (!sys) {
      replace(body, h('p', { class: 'empty' }, 'Loading…'));
      return;
    }
    const { interfaces, vms, benchmarks } = ctx.store;
    const params = Object.entries(sys.kni.parameters);
    const byState = new Map();
    for (const v of vms) byState.set(v.state, (byState.get(v.state) ?? 0) + 1);
    const attached = interfaces.filter((i) => i.socket.attached).length;
    const failed = interfaces.filter((i) => i.state === 'failed').length;
    const r = sys.reconcile;
    replace(
      body,
      h(
        'article',
        { class: 'card' },
        h('h2', {}, 'System'),
        h(
          'dl',
          {},
          h('dt', {}, 'Kernel'),
          h('dd', {}, h('code', {}, sys.kernel)),
          h('dt', {}, 'KVM'),
          h('dd', {}, badge(sys.kvm, 'usable', 'not usable'), sys.kvm ? '' : h('div', { class: 'hint' }, 'guests run under TCG: slower, numbers say little')),
          h('dt', {}, 'vhost-net'),
          h('dd', {}, badge(sys.vhostNet, 'available', 'missing')),
          h('dt', {}, 'qemu'),
          h('dd', {}, sys.qemu.available ? h('span', { class: 'badge good' }, sys.qemu.version ?? 'available') : badge(false, '', 'not available')),
          h('dt', {}, 'Versions'),
          h('dd', {}, `kniv ${sys.versions.kniv}, Node.js ${sys.versions.node}, database schema ${sys.versions.database}`),
          h('dt', {}, 'State directory'),
          h('dd', {}, h('code', {}, sys.stateDir)),
        ),
      ),
      h(
        'article',
        { class: 'card' },
        h('h2', {}, 'Module kni.ko'),
        h(
          'dl',
          {},
          h('dt', {}, 'Loaded'),
          h('dd', {}, badge(sys.kni.loaded, 'yes', 'no')),
          sys.kni.abiVersion !== undefined && [h('dt', {}, 'ABI version'), h('dd', {}, String(sys.kni.abiVersion))],
          sys.kni.kthreadMode && [h('dt', {}, 'Kernel threads'), h('dd', {}, sys.kni.kthreadMode)],
          sys.kni.error && [h('dt', {}, 'Error'), h('dd', { class: 'error-text' }, sys.kni.error)],
        ),
        params.length
          ? h(
              'table',
              { class: 'kv' },
              h('caption', {}, 'Parameters (/sys/module/kni/parameters)'),
              h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Parameter'), h('th', { scope: 'col' }, 'Value'))),
              h('tbody', {}, params.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, h('code', {}, k)), h('td', {}, h('code', {}, v))))),
            )
          : h('p', { class: 'empty' }, 'No parameters readable.'),
      ),
      h(
        'article',
        { class: 'card' },
        h('h2', {}, 'Resources'),
        h(
          'dl',
          { class: 'counts' },
          h('dt', {}, h('a', { href: '#/interfaces' }, 'Interfaces')),
          h('dd', {}, `${interfaces.length}`, failed ? h('span', { class: 'badge bad' }, `${failed} failed`) : null, attached ? ` (${attached} held by a VM)` : ''),
          h('dt', {}, h('a', { href: '#/vms' }, 'VMs')),
          h('dd', {}, `${vms.length}`, vms.length ? ` (${[...byState].map(([s, n]) => `${n} ${s}`).join(', ')})` : ''),
          h('dt', {}, h('a', { href: '#/benchmarks' }, 'Benchmarks')),
          h('dd', {}, `${benchmarks.length}`, benchmarks.some((b) => b.state === 'running') ? ' (one running)' : ''),
        ),
        r &&
          h(
            'p',
            { class: 'hint' },
            `Service started ${fmtTime(r.at)}: re-created ${r.interfaces.recreated.length} interface(s)`,
            r.interfaces.failed.length ? `, ${r.interfaces.failed.length} failed` : '',
            `, re-adopted ${r.vms.adopted.length} VM(s)`,
            r.vms.died.length ? `, ${r.vms.died.length} had died` : '',
            '.',
          ),
      ),
    );
  };
  render();
  return {
    el,
    update: (topics) => {
      if (topics.has('system') || topics.has('interfaces') || topics.has('vms') || topics.has('benchmarks')) render();
    },
  };
}
