// @ts-check
// The two screens shown instead of the dashboard: the token prompt, and the
// service that does not answer.
import { h } from '../lib/dom.js';
import { field, input } from '../lib/forms.js';

/**
 * @param {{ message?: string, onToken: (token: string, report: (message: string) => void) => Promise<void> }} o
 *   onToken checks the token; it calls report() with a reason when it is refused.
 */
export function loginView(o) {
  const token = input('token', { type: 'password', required: true, autocomplete: 'off', spellcheck: 'false' });
  const error = h('div', { class: 'form-errors', role: 'alert', tabindex: '-1', hidden: !o.message }, o.message ?? '');
  const button = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h(
    'form',
    { class: 'panel login', novalidate: true },
    h('h1', { tabindex: '-1' }, 'Log in to kniv'),
    h(
      'p',
      {},
      'Paste the service’s bearer token. It is the ',
      h('code', {}, 'token'),
      ' file in the service’s state directory (',
      h('code', {}, '/var/lib/kniv/token'),
      ' for root, ',
      h('code', {}, '~/.local/state/kniv/token'),
      ' otherwise; ',
      h('code', {}, 'kniv start'),
      ' prints its path). It is kept in this browser tab only.',
    ),
    error,
    field({ label: 'Bearer token', control: token }),
    h('div', { class: 'actions' }, button),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = token.value.trim();
    const report = (/** @type {string} */ m) => {
      error.textContent = m;
      error.hidden = false;
      token.setAttribute('aria-invalid', 'true');
      token.focus();
    };
    if (!t) return report('Paste the token first.');
    button.disabled = true;
    try {
      await o.onToken(t, report);
    } finally {
      button.disabled = false;
    }
  });
  queueMicrotask(() => (o.message ? error.focus() : token.focus()));
  return form;
}

/**
 * @param {{ reason: string, retryMs: number, onRetry: () => void }} o
 */
export function downView(o) {
  const left = h('span', {}, String(Math.round(o.retryMs / 1000)));
  const el = h(
    'section',
    { class: 'panel down', role: 'alert' },
    h('h1', { tabindex: '-1' }, 'The kniv service does not answer'),
    h('p', {}, o.reason),
    h('p', {}, 'If it runs in the appliance VM (', h('code', {}, 'kniv start'), '), the VM may still be booting or may have stopped. Trying again in ', left, ' s.'),
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: o.onRetry }, 'Retry now')),
  );
  return { el, left };
}
