// @ts-check
// Form fields with their label, hint and error slot, and the rendering of the
// API's errors: each 400 issue next to the field its path names
// (`body.port.ifname`), everything in a summary at the top of the form.
import { ApiError, ServiceDownError } from './api.js';
import { h, uid } from './dom.js';

/** @typedef {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} Control */

/**
 * A labelled control. The hint and the error are tied to it with
 * aria-describedby; `field` is the API path of its value (e.g. `body.mtu`).
 * @param {{ label: string, control: Control, hint?: string, field?: string, wide?: boolean }} o
 */
export function field(o) {
  const id = o.control.id || uid('f');
  o.control.id = id;
  if (o.field) o.control.dataset.field = o.field;
  const hint = o.hint ? h('p', { class: 'hint', id: `${id}-hint` }, o.hint) : null;
  const err = h('p', { class: 'field-error', id: `${id}-err`, hidden: true });
  o.control.setAttribute('aria-describedby', [hint ? `${id}-hint` : '', `${id}-err`].filter(Boolean).join(' '));
  const isCheck = o.control instanceof HTMLInputElement && o.control.type === 'checkbox';
  const label = h('label', { for: id }, o.label);
  return h('div', { class: `field${isCheck ? ' check' : ''}${o.wide ? ' wide' : ''}` }, isCheck ? [o.control, label] : [label, o.control], hint, err);
}

/**
 * @param {string} name
 * @param {Record<string, unknown>} [attrs]
 */
export const input = (name, attrs = {}) => h('input', { name, autocomplete: 'off', ...attrs });

/**
 * @param {string} name
 * @param {[string, string][]} options value, label
 * @param {string} [value]
 */
export function select(name, options, value) {
  const el = h('select', { name }, options.map(([v, l]) => h('option', { value: v }, l)));
  if (value !== undefined) el.value = value;
  return el;
}

/** The summary box a form shows its errors in: announced when it fills. */
export const summary = () => h('div', { class: 'form-errors', role: 'alert', tabindex: '-1', hidden: true });

/**
 * A form in a panel: its heading (with the id the form is labelled by), the
 * error summary, the fields in a grid, then `more` and the submit button.
 * @param {{ id: string, title: string, submit: string }} o
 * @param {HTMLElement[]} fields
 * @param {...HTMLElement} more
 */
export function formPanel(o, fields, ...more) {
  return h(
    'form',
    { class: 'panel', novalidate: true, 'aria-labelledby': o.id },
    h('h2', { id: o.id }, o.title),
    summary(),
    h('div', { class: 'grid' }, fields),
    ...more,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, o.submit)),
  );
}

/** @param {HTMLElement} form */
export function clearErrors(form) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.field-error')) {
    el.textContent = '';
    /** @type {HTMLElement} */ (el).hidden = true;
  }
  const box = form.querySelector('.form-errors');
  if (box instanceof HTMLElement) {
    box.replaceChildren();
    box.hidden = true;
  }
}

/**
 * Shows why a request failed. Field issues go next to their control (matched
 * on data-field, or on the nearest parent path: `body.port` for
 * `body.port.kind`); the summary lists every message with the error code, so
 * a 409 or a 503 is as visible as a 400. Focus goes to the first bad field.
 * @param {HTMLElement} form
 * @param {unknown} err
 */
export function showError(form, err) {
  clearErrors(form);
  const box = /** @type {HTMLElement} */ (form.querySelector('.form-errors'));
  /** @type {HTMLElement | undefined} */
  let first;
  const lines = [];
  if (err instanceof ApiError) {
    const issues = err.issues;
    if (issues.length) {
      for (const issue of issues) {
        const control = controlFor(form, issue.field);
        if (control) {
          const slot = form.querySelector(`#${CSS.escape(control.id)}-err`);
          if (slot instanceof HTMLElement) {
            slot.textContent = slot.textContent ? `${slot.textContent}; ${issue.message}` : issue.message;
            slot.hidden = false;
          }
          control.setAttribute('aria-invalid', 'true');
          first ??= control;
        }
        lines.push(h('li', {}, h('code', {}, issue.field), ': ', issue.message));
      }
    } else {
      lines.push(h('li', {}, err.message));
    }
    box.append(h('p', {}, h('strong', {}, title(err)), ' ', h('code', { class: 'code' }, err.code)), h('ul', {}, lines));
  } else if (err instanceof ServiceDownError) {
    box.append(h('p', {}, h('strong', {}, 'The service does not answer.'), ' Nothing was changed; try again once it is back.'));
  } else {
    box.append(h('p', {}, h('strong', {}, 'Something went wrong: '), String(/** @type {Error} */ (err)?.message ?? err)));
  }
  box.hidden = false;
  (first ?? box).focus();
}

/** @param {ApiError} err */
function title(err) {
  if (err.status === 400) return 'The service refused this request:';
  if (err.status === 409) return 'Conflict:';
  if (err.status === 404) return 'Not found:';
  if (err.status === 503) return 'Unavailable:';
  if (err.status >= 500) return 'The operation failed:';
  return `Error ${err.status}:`;
}

/**
 * @param {HTMLElement} form
 * @param {string} path
 * @returns {HTMLElement | undefined}
 */
function controlFor(form, path) {
  for (let p = path; p.includes('.'); p = p.slice(0, p.lastIndexOf('.'))) {
    const el = form.querySelector(`[data-field="${CSS.escape(p)}"]`);
    if (el instanceof HTMLElement) return el;
  }
  return undefined;
}

/**
 * A client-side check that failed before anything was sent, shown like an API 400.
 * @param {string} field
 * @param {string} message
 */
export const localIssue = (field, message) =>
  new ApiError(400, 'invalid_request', `${field}: ${message}`, { issues: [{ field, message }] });

/**
 * An optional number field: undefined when empty, NaN when not a number.
 * @param {HTMLInputElement} el
 */
export function optNumber(el) {
  const v = el.value.trim();
  return v === '' ? undefined : Number(v);
}
