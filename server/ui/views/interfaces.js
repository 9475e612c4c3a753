// @ts-check
// Interfaces: the table with live rates, the create form, the edit dialog.
import { describe, seg } from '../lib/api.js';
import { confirmAction, modal } from '../lib/dialog.js';
import { dataTable, fmtByteRate, fmtCount, fmtPps, h, replace } from '../lib/dom.js';
import { clearErrors, field, formPanel, input, optNumber, select, showError, summary } from '../lib/forms.js';
import { totalDrops } from '../lib/store.js';

/** @typedef {import('../lib/context.js').Ctx} Ctx */
/** @typedef {import('../lib/context.js').View} View */
/** @typedef {import('../lib/types.js').Interface} Interface */

/** @param {boolean | null} v @param {string} yes @param {string} no */
const flag = (v, yes, no) => (v === null ? h('span', { class: 'muted' }, '—') : h('span', { class: `badge ${v ? 'good' : 'off'}` }, v ? yes : no));

/**
 * @param {Ctx} ctx
 * @returns {View}
 */
export function interfacesView(ctx) {
  const table = h('div', { class: 'table-wrap', role: 'region', 'aria-labelledby': 'ifaces-caption', tabindex: '0' });
  const el = h(
    'section',
    { 'aria-labelledby': 'interfaces-h' },
    h('h1', { id: 'interfaces-h', tabindex: '-1' }, 'Interfaces'),
    table,
    createForm(ctx),
  );

  const render = () => {
    const list = ctx.store.interfaces;
    if (list.length === 0) {
      replace(
        table,
        h('p', { class: 'empty', id: 'ifaces-caption' }, 'No KNI interfaces yet. Create one with the form below: a TAP port makes a TAP device for it, a packet port attaches it to an existing host interface.'),
      );
      return;
    }
    replace(
      table,
      dataTable({
        captionId: 'ifaces-caption',
        caption: `${list.length} interface${list.length === 1 ? '' : 's'}; rates over the last ${ctx.store.stream === 'live' ? '5 s' : 'interval (the event stream is not connected)'}`,
        columns: ['Name', 'State', 'Port', 'Link', 'Socket', 'VNET_HDR', 'MTU', 'MAC', 'Received', 'Sent', 'Drops', 'Actions'],
        rows: list.map((i) => row(ctx, i)),
      }),
    );
  };
  render();
  return {
    el,
    update: (topics) => {
      if (topics.has('interfaces') || topics.has('rates') || topics.has('stream')) render();
    },
  };
}

/** @param {Ctx} ctx @param {Interface} i */
function row(ctx, i) {
  const rate = ctx.store.latest(i.name);
  const drops = i.counters ? totalDrops(i.counters) : undefined;
  const c = i.counters;
  const dropsTitle = c
    ? `netdev rx ${c.netdev.rxDropped}, tx ${c.netdev.txDropped}; data plane: no buffer ${c.dataPlane.dropNoBuffer}, rx queue full ${c.dataPlane.dropRxFull}, too big ${c.dataPlane.dropTooBig}, port error ${c.dataPlane.dropPortError}`
    : undefined;
  return h(
    'tr',
    { 'data-name': i.name },
    h('th', { scope: 'row' }, i.name),
    h('td', {}, i.state === 'active' ? h('span', { class: 'badge good' }, 'active') : [h('span', { class: 'badge bad' }, 'failed'), i.error && h('div', { class: 'error-text small' }, i.error)]),
    h('td', {}, `${i.port.kind}: `, h('code', {}, i.port.ifname)),
    h('td', {}, flag(i.up, 'up', 'down'), ' ', flag(i.carrier, 'carrier', 'no carrier')),
    h('td', {}, i.socket.attached ? ['attached', i.socket.vm && [' to ', h('a', { href: '#/vms' }, i.socket.vm)]] : i.socket.vm ? `reserved by ${i.socket.vm}` : h('span', { class: 'muted' }, 'free')),
    h('td', {}, flag(i.vnetHdr, 'on', 'off')),
    h('td', { class: 'num' }, i.mtu ?? '—', h('div', { class: 'small muted' }, `max ${i.maxMtu}`)),
    h('td', {}, i.mac ? h('code', {}, i.mac) : '—'),
    rateCell('rx', rate && [rate.rxPps, rate.rxBps], c?.netdev.rxPackets),
    rateCell('tx', rate && [rate.txPps, rate.txBps], c?.netdev.txPackets),
    h('td', { class: 'num', title: dropsTitle }, drops === undefined ? '—' : fmtCount(drops)),
    h(
      'td',
      { class: 'row-actions' },
      h('button', { type: 'button', 'data-key': `edit:${i.name}`, 'aria-label': `Edit ${i.name}`, onclick: () => editDialog(ctx, i) }, 'Edit'),
      h('button', { type: 'button', class: 'danger', 'data-key': `del:${i.name}`, 'aria-label': `Delete ${i.name}`, onclick: () => remove(ctx, i) }, 'Delete'),
    ),
  );
}

/**
 * Packets and bytes per second over the last counters interval (measuring
 * until there have been two), and the total packets.
 * @param {'rx' | 'tx'} col
 * @param {[number, number] | undefined} rate packets/s, bits/s
 * @param {number | undefined} total
 */
function rateCell(col, rate, total) {
  return h(
    'td',
    { class: 'num', 'data-col': col },
    rate ? [fmtPps(rate[0]), h('br'), fmtByteRate(rate[1])] : h('span', { class: 'muted' }, 'measuring…'),
    total !== undefined && h('div', { class: 'small muted' }, `${fmtCount(total)} total`),
  );
}

/** @param {Ctx} ctx @param {Interface} i */
async function remove(ctx, i) {
  const ok = await confirmAction(`Delete ${i.name}?`, `Its data plane stops and the netdev${i.port.kind === 'tap' ? ' and its TAP device' : ''} go away.`, 'Delete');
  if (!ok) return;
  try {
    await ctx.api.del(`/v1/interfaces/${seg(i.name)}`);
    ctx.say(`Interface ${i.name} deleted.`);
  } catch (err) {
    ctx.say(`Could not delete ${i.name}: ${describe(err)}`, 'error');
  }
  await ctx.refresh('interfaces');
}

/** @param {Ctx} ctx */
function createForm(ctx) {
  const name = input('name', { required: true, maxlength: 15, spellcheck: 'false', placeholder: 'vEth0' });
  const kind = select('kind', [
    ['tap', 'TAP device (kniv creates it)'],
    ['packet', 'Packet socket on a host interface'],
  ]);
  const ifname = input('ifname', { required: true, maxlength: 15, spellcheck: 'false', placeholder: 'kvtap0' });
  const mtu = input('mtu', { type: 'number', min: 68, max: 9000, value: '1500', inputmode: 'numeric' });
  const maxMtu = input('maxMtu', { type: 'number', min: 68, max: 9000, inputmode: 'numeric' });
  const mac = input('mac', { spellcheck: 'false', placeholder: '02:00:00:00:00:01' });
  const vnet = select('vnetHdr', [
    ['', "module default (vnet_hdr parameter)"],
    ['true', 'on'],
    ['false', 'off'],
  ]);
  const cpu = input('kthreadCpu', { type: 'number', min: 0, max: 4095, inputmode: 'numeric' });
  const up = input('up', { type: 'checkbox', checked: true });
  const form = formPanel(
    { id: 'if-create-h', title: 'Create an interface', submit: 'Create interface' },
    [
      field({ label: 'Name', control: name, field: 'body.name', hint: '1–15 letters, digits, _ . or -' }),
      field({ label: 'Port kind', control: kind, field: 'body.port.kind' }),
      field({ label: 'Port interface', control: ifname, field: 'body.port.ifname', hint: 'TAP: the device to create; packet: an existing interface' }),
      field({ label: 'MTU', control: mtu, field: 'body.mtu', hint: '68–9000' }),
      field({ label: 'Max MTU', control: maxMtu, field: 'body.maxMtu', hint: 'optional; sizes the buffers' }),
      field({ label: 'MAC address', control: mac, field: 'body.mac', hint: 'optional; unicast, e.g. 02:00:00:00:00:01' }),
      field({ label: 'VNET_HDR', control: vnet, field: 'body.vnetHdr' }),
      field({ label: 'Kernel thread CPU', control: cpu, field: 'body.kthreadCpu', hint: 'optional (kthread_mode=multiple)' }),
      field({ label: 'Up after creation', control: up, field: 'body.up' }),
    ],
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    /** @type {Record<string, unknown>} */
    const body = { name: name.value.trim(), port: { kind: kind.value, ifname: ifname.value.trim() }, up: up.checked };
    const num = { mtu: optNumber(mtu), maxMtu: optNumber(maxMtu), kthreadCpu: optNumber(cpu) };
    for (const [k, v] of Object.entries(num)) if (v !== undefined) body[k] = v;
    if (mac.value.trim()) body.mac = mac.value.trim();
    if (vnet.value) body.vnetHdr = vnet.value === 'true';
    const button = /** @type {HTMLButtonElement} */ (form.querySelector('button[type=submit]'));
    button.disabled = true;
    try {
      const created = /** @type {Interface} */ (await ctx.api.post('/v1/interfaces', body));
      ctx.say(`Interface ${created.name} created.`);
      name.value = '';
      ifname.value = '';
      await ctx.refresh('interfaces');
    } catch (err) {
      showError(form, err);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** @param {Ctx} ctx @param {Interface} i */
function editDialog(ctx, i) {
  return modal(`Change ${i.name}`, (close) => {
    const mtu = input('mtu', { type: 'number', min: 68, max: i.maxMtu, value: String(i.mtu ?? ''), inputmode: 'numeric' });
    const mac = input('mac', { spellcheck: 'false', value: i.mac ?? '' });
    const up = input('up', { type: 'checkbox', checked: i.up === true });
    const carrier = input('carrier', { type: 'checkbox', checked: i.carrier === true });
    const vnet = input('vnetHdr', { type: 'checkbox', checked: i.vnetHdr === true, disabled: i.vnetHdr === null });
    const form = h(
      'form',
      { novalidate: true },
      summary(),
      h(
        'div',
        { class: 'grid' },
        field({ label: 'MTU', control: mtu, field: 'body.mtu', hint: `68–${i.maxMtu} (max MTU)` }),
        field({ label: 'MAC address', control: mac, field: 'body.mac' }),
        field({ label: 'Up', control: up, field: 'body.up' }),
        field({ label: 'Carrier', control: carrier, field: 'body.carrier', hint: 'only while up' }),
        field({
          label: 'VNET_HDR',
          control: vnet,
          field: 'body.vnetHdr',
          hint: i.vnetHdr === null ? 'this kni.ko has no KNI socket' : 'only while no VM holds the socket',
        }),
      ),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Apply'), h('button', { type: 'button', onclick: close }, 'Cancel')),
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      // Only what changed is sent: the API refuses an empty change with its own message.
      /** @type {Record<string, unknown>} */
      const patch = {};
      const m = optNumber(mtu);
      if (m !== i.mtu && m !== undefined) patch.mtu = m;
      if (mac.value.trim().toLowerCase() !== (i.mac ?? '')) patch.mac = mac.value.trim();
      if (up.checked !== (i.up === true)) patch.up = up.checked;
      if (carrier.checked !== (i.carrier === true)) patch.carrier = carrier.checked;
      if (i.vnetHdr !== null && vnet.checked !== i.vnetHdr) patch.vnetHdr = vnet.checked;
      try {
        await ctx.api.patch(`/v1/interfaces/${seg(i.name)}`, patch);
        ctx.say(`Interface ${i.name} changed.`);
        close();
        await ctx.refresh('interfaces');
      } catch (err) {
        showError(form, err);
      }
    });
    return form;
  });
}
