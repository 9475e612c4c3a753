// @ts-check
// VMs: the list with state-gated actions, the live console tail, the create
// form with NICs wired to interfaces.
import { describe, seg } from '../lib/api.js';
import { confirmAction } from '../lib/dialog.js';
import { dataTable, fmtTime, h, replace } from '../lib/dom.js';
import { clearErrors, field, formPanel, input, optNumber, select, showError } from '../lib/forms.js';

/** @typedef {import('../lib/context.js').Ctx} Ctx */
/** @typedef {import('../lib/context.js').View} View */
/** @typedef {import('../lib/types.js').Vm} Vm */
/** @typedef {import('../lib/types.js').VmState} VmState */

// The service's state gates (server/vms.ts); buttons outside them are disabled.
/** @type {Record<'start' | 'stop' | 'reboot' | 'delete', readonly VmState[]>} */
const ALLOWED = {
  start: ['defined', 'stopped', 'failed'],
  stop: ['running'],
  reboot: ['running'],
  delete: ['defined', 'stopped', 'failed'],
};

/** @type {Record<VmState, string>} */
const STATE_CLASS = { defined: 'off', starting: 'busy', running: 'good', stopping: 'busy', stopped: 'off', failed: 'bad' };

/** How often the console tail is re-read while it is followed. */
const CONSOLE_MS = 2000;

/**
 * @param {Ctx} ctx
 * @returns {View}
 */
export function vmsView(ctx) {
  const table = h('div', { class: 'table-wrap', role: 'region', 'aria-labelledby': 'vms-caption', tabindex: '0' });
  const consoleBox = h('div');
  const create = createForm(ctx);
  const el = h('section', { 'aria-labelledby': 'vms-h' }, h('h1', { id: 'vms-h', tabindex: '-1' }, 'VMs'), table, consoleBox, create.el);
  /** @type {{ name: string, timer: ReturnType<typeof setTimeout> | undefined } | undefined} */
  let shown;

  const render = () => {
    const list = ctx.store.vms;
    if (list.length === 0) {
      replace(table, h('p', { class: 'empty', id: 'vms-caption' }, 'No VMs defined. Define one with the form below, then start it.'));
      return;
    }
    replace(
      table,
      dataTable({
        captionId: 'vms-caption',
        caption: `${list.length} VM${list.length === 1 ? '' : 's'}`,
        columns: ['Name', 'State', 'vCPUs', 'Memory', 'Boot', 'NICs', 'qemu', 'Actions'],
        rows: list.map((vm) => row(vm)),
      }),
    );
  };

  /** @param {Vm} vm */
  const row = (vm) => {
    const boot = vm.spec.boot;
    /** @param {'start' | 'stop' | 'reboot'} action */
    const act = (action) =>
      h(
        'button',
        {
          type: 'button',
          'data-key': `${action}:${vm.name}`,
          'aria-label': `${action[0]?.toUpperCase()}${action.slice(1)} ${vm.name}`,
          disabled: !ALLOWED[action].includes(vm.state),
          onclick: () => run(vm.name, action),
        },
        `${action[0]?.toUpperCase()}${action.slice(1)}`,
      );
    return h(
      'tr',
      { 'data-name': vm.name },
      h('th', { scope: 'row' }, vm.name),
      h(
        'td',
        {},
        h('span', { class: `badge ${STATE_CLASS[vm.state]}`, 'data-state': vm.state }, vm.state),
        vm.error && h('div', { class: 'error-text small' }, vm.error),
        vm.degraded.length > 0 && h('div', { class: 'error-text small' }, `degraded: ${vm.degraded.join('; ')}`),
      ),
      h('td', { class: 'num' }, vm.spec.vcpus),
      h('td', { class: 'num' }, `${vm.spec.memoryMiB} MiB`),
      h('td', {}, boot.kind === 'kernel' ? ['kernel ', h('code', { class: 'path' }, boot.kernel)] : [`disk (${boot.format}) `, h('code', { class: 'path' }, boot.image)]),
      h('td', {}, vm.spec.nics.length ? vm.spec.nics.map((n, i) => [i ? ', ' : '', h('code', {}, n.interface), n.vhost ? ' (vhost)' : '']) : h('span', { class: 'muted' }, 'none')),
      h('td', { class: 'small' }, vm.pid ? `pid ${vm.pid}` : '—', vm.runStatus && h('div', {}, vm.runStatus), vm.startedAt && h('div', { class: 'muted' }, `since ${fmtTime(vm.startedAt)}`)),
      h(
        'td',
        { class: 'row-actions' },
        act('start'),
        act('stop'),
        act('reboot'),
        h('button', { type: 'button', 'data-key': `console:${vm.name}`, 'aria-label': `Console of ${vm.name}`, 'aria-pressed': String(shown?.name === vm.name), onclick: () => showConsole(vm.name) }, 'Console'),
        h('button', { type: 'button', class: 'danger', 'data-key': `del:${vm.name}`, 'aria-label': `Delete ${vm.name}`, disabled: !ALLOWED.delete.includes(vm.state), onclick: () => remove(vm.name) }, 'Delete'),
      ),
    );
  };

  /** @param {string} name @param {'start' | 'stop' | 'reboot'} action */
  const run = async (name, action) => {
    try {
      const vm = /** @type {Vm} */ (await ctx.api.post(`/v1/vms/${seg(name)}/${action}`, action === 'stop' ? {} : undefined));
      ctx.say(`VM ${name}: ${action} requested; it is ${vm.state}.`);
      if (action !== 'stop') showConsole(name, false);
    } catch (err) {
      ctx.say(`Could not ${action} ${name}: ${describe(err)}`, 'error');
    }
    await ctx.refresh('vms', 'interfaces');
  };

  /** @param {string} name */
  const remove = async (name) => {
    if (!(await confirmAction(`Delete ${name}?`, 'Its definition and run directory (console log included) are removed.', 'Delete'))) return;
    try {
      await ctx.api.del(`/v1/vms/${seg(name)}`);
      ctx.say(`VM ${name} deleted.`);
      if (shown?.name === name) hideConsole();
    } catch (err) {
      ctx.say(`Could not delete ${name}: ${describe(err)}`, 'error');
    }
    await ctx.refresh('vms', 'interfaces');
  };

  const hideConsole = () => {
    clearTimeout(shown?.timer);
    shown = undefined;
    replace(consoleBox);
    render();
  };

  /** The console tail, re-read every 2 s while "follow" is on and the VM is live. */
  const showConsole = (/** @type {string} */ name, focus = true) => {
    clearTimeout(shown?.timer);
    const pre = h('pre', { class: 'console', tabindex: '0', 'aria-label': `Console log of ${name}` }, 'Loading…');
    const follow = input('follow', { type: 'checkbox', checked: true });
    const note = h('p', { class: 'hint' });
    const heading = h('h2', { id: 'console-h', tabindex: '-1' }, `Console of ${name}`);
    const me = { name, timer: /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined) };
    shown = me;
    replace(
      consoleBox,
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'console-h' },
        heading,
        h('div', { class: 'toolbar' }, field({ label: 'Follow (re-read every 2 s)', control: follow }), h('button', { type: 'button', onclick: hideConsole }, 'Close console')),
        pre,
        note,
      ),
    );
    render();
    if (focus) heading.focus();
    const tick = async () => {
      if (shown !== me) return;
      try {
        const text = /** @type {string} */ (await ctx.api.get(`/v1/vms/${seg(name)}/console?bytes=16384`));
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent = text || '(the console log is empty: the VM has not written to its serial console yet)';
        if (atEnd) pre.scrollTop = pre.scrollHeight;
        note.textContent = `Last ${text.length} bytes, read ${new Date().toLocaleTimeString('en-GB')}.`;
      } catch (err) {
        note.textContent = `Cannot read the console: ${describe(err)}`;
      }
      if (shown === me && follow.checked) me.timer = setTimeout(tick, CONSOLE_MS);
    };
    follow.addEventListener('change', () => follow.checked && tick());
    void tick();
  };

  render();
  return {
    el,
    update: (topics) => {
      if (topics.has('vms')) render();
      if (topics.has('interfaces')) create.syncNics();
    },
    destroy: () => clearTimeout(shown?.timer),
  };
}

/** @param {Ctx} ctx */
function createForm(ctx) {
  const name = input('name', { required: true, maxlength: 63, spellcheck: 'false', placeholder: 'guest1' });
  const vcpus = input('vcpus', { type: 'number', min: 1, max: 16, value: '1', inputmode: 'numeric' });
  const memory = input('memoryMiB', { type: 'number', min: 64, max: 65536, value: '512', step: 64, inputmode: 'numeric' });
  const kind = select('bootKind', [
    ['kernel', 'Kernel (and initrd)'],
    ['disk', 'Disk image'],
  ]);
  const kernel = input('kernel', { spellcheck: 'false', placeholder: '/path/to/vmlinuz' });
  const initrd = input('initrd', { spellcheck: 'false', placeholder: 'optional' });
  const cmdline = input('cmdline', { spellcheck: 'false', value: 'console=ttyS0' });
  const image = input('image', { spellcheck: 'false', placeholder: '/path/to/disk.img' });
  const format = select('format', [
    ['raw', 'raw'],
    ['qcow2', 'qcow2'],
  ]);
  const kernelFields = h(
    'div',
    { class: 'grid' },
    field({ label: 'Kernel', control: kernel, field: 'body.boot.kernel', hint: 'an absolute path on the appliance' }),
    field({ label: 'Initrd', control: initrd, field: 'body.boot.initrd' }),
    field({ label: 'Kernel command line', control: cmdline, field: 'body.boot.cmdline', wide: true }),
  );
  const diskFields = h(
    'div',
    { class: 'grid', hidden: true },
    field({ label: 'Image', control: image, field: 'body.boot.image', hint: 'an absolute path on the appliance' }),
    field({ label: 'Format', control: format, field: 'body.boot.format' }),
  );
  kind.addEventListener('change', () => {
    kernelFields.hidden = kind.value !== 'kernel';
    diskFields.hidden = kind.value !== 'disk';
  });

  // One row per interface: wire it or not, vhost, MAC. Rows keep what was
  // typed when the interface list changes under the form.
  const nicRows = h('div', { class: 'nics' });
  const nicsErr = h('p', { class: 'field-error', id: 'vm-nics-err', hidden: true });
  const nicsBox = h('fieldset', { id: 'vm-nics', 'data-field': 'body.nics', tabindex: '-1', 'aria-describedby': 'vm-nics-err' }, h('legend', {}, 'NICs wired to interfaces'), nicRows, nicsErr);
  /** @type {Map<string, { row: HTMLElement, use: HTMLInputElement, vhost: HTMLInputElement, mac: HTMLInputElement }>} */
  const nics = new Map();
  const syncNics = () => {
    const names = ctx.store.interfaces.map((i) => i.name);
    for (const n of [...nics.keys()]) if (!names.includes(n)) nics.delete(n);
    for (const i of ctx.store.interfaces) {
      if (nics.has(i.name)) continue;
      const use = input(`nic-${i.name}`, { type: 'checkbox' });
      const vhost = input(`vhost-${i.name}`, { type: 'checkbox', checked: true });
      const mac = input(`mac-${i.name}`, { spellcheck: 'false', placeholder: 'derived' });
      const row = h(
        'div',
        { class: 'nic-row' },
        field({ label: `Wire ${i.name}`, control: use }),
        field({ label: `vhost-net for ${i.name}`, control: vhost }),
        field({ label: `MAC for ${i.name}`, control: mac, hint: 'optional' }),
      );
      nics.set(i.name, { row, use, vhost, mac });
    }
    const rows = [...nics.values()].map((n) => n.row);
    replace(nicRows, rows.length ? rows : h('p', { class: 'empty' }, 'No interfaces: create one on the Interfaces page to give this VM a NIC.'));
  };
  syncNics();

  const el = formPanel(
    { id: 'vm-create-h', title: 'Define a VM', submit: 'Define VM' },
    [
      field({ label: 'Name', control: name, field: 'body.name', hint: '1–63 letters, digits, _ . or -' }),
      field({ label: 'vCPUs', control: vcpus, field: 'body.vcpus', hint: '1–16' }),
      field({ label: 'Memory (MiB)', control: memory, field: 'body.memoryMiB', hint: '64–65536' }),
      field({ label: 'Boot from', control: kind, field: 'body.boot.kind' }),
    ],
    kernelFields,
    diskFields,
    nicsBox,
  );
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(el);
    const chosen = [...nics.entries()].filter(([, n]) => n.use.checked);
    // The API names NICs by their index in the request: point each path at its row.
    for (const n of nics.values()) for (const c of [n.use, n.vhost, n.mac]) delete c.dataset.field;
    chosen.forEach(([, n], k) => {
      n.use.dataset.field = `body.nics.${k}.interface`;
      n.vhost.dataset.field = `body.nics.${k}.vhost`;
      n.mac.dataset.field = `body.nics.${k}.mac`;
    });
    /** @type {Record<string, unknown>} */
    const boot =
      kind.value === 'kernel'
        ? { kind: 'kernel', kernel: kernel.value.trim(), cmdline: cmdline.value, ...(initrd.value.trim() ? { initrd: initrd.value.trim() } : {}) }
        : { kind: 'disk', image: image.value.trim(), format: format.value };
    /** @type {Record<string, unknown>} */
    const body = {
      name: name.value.trim(),
      boot,
      nics: chosen.map(([iface, n]) => ({ interface: iface, vhost: n.vhost.checked, ...(n.mac.value.trim() ? { mac: n.mac.value.trim() } : {}) })),
    };
    const v = optNumber(vcpus);
    const m = optNumber(memory);
    if (v !== undefined) body.vcpus = v;
    if (m !== undefined) body.memoryMiB = m;
    const button = /** @type {HTMLButtonElement} */ (el.querySelector('button[type=submit]'));
    button.disabled = true;
    try {
      const vm = /** @type {Vm} */ (await ctx.api.post('/v1/vms', body));
      ctx.say(`VM ${vm.name} defined; start it from the list.`);
      name.value = '';
      await ctx.refresh('vms');
    } catch (err) {
      showError(el, err);
    } finally {
      button.disabled = false;
    }
  });
  return { el, syncNics };
}
