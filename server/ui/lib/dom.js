// @ts-check
// Building DOM without innerHTML: every piece of text the API returns goes in
// as a text node, so nothing it says can become markup.

/** @typedef {Node | string | number | null | undefined | false | ChildList} Child */
/** @typedef {Child[]} ChildList */
/** @typedef {Record<string, unknown>} Attrs */

/**
 * An element: `on…` attributes with function values become listeners, `true`
 * an empty attribute, `false`/null/undefined nothing, anything else a string.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...Child} kids
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * An SVG element, with the same conventions as h().
 * @param {string} tag
 * @param {Attrs} [attrs]
 * @param {...Child} kids
 * @returns {SVGElement}
 */
export function s(tag, attrs = {}, ...kids) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

/** @param {Element} el @param {Attrs} attrs */
function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function' && k.startsWith('on')) el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false && v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
}

/** @param {Element} el @param {Child[]} kids */
function append(el, kids) {
  for (const k of kids) {
    if (Array.isArray(k)) append(el, k);
    else if (k instanceof Node) el.append(k);
    else if (k !== null && k !== undefined && k !== false) el.append(String(k));
  }
}

/**
 * Replaces a container's children, keeping keyboard focus on the element with
 * the same data-key when the old one goes away (tables re-render on events).
 * @param {Element} container
 * @param {...Child} kids
 */
export function replace(container, ...kids) {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && container.contains(active) ? active.dataset.key : undefined;
  container.replaceChildren();
  append(container, kids);
  if (key !== undefined) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again instanceof HTMLElement) again.focus();
  }
}

/**
 * Lets a data table collapse into one block per row on a narrow screen: each
 * cell gets its column's name (shown by the CSS beside the value), and the
 * table explicit ARIA roles, which CSS display changes would otherwise drop.
 * @param {HTMLTableElement} table
 * @returns {HTMLTableElement}
 */
export function stackable(table) {
  const names = [...table.querySelectorAll('thead th')].map((th) => th.textContent ?? '');
  table.setAttribute('role', 'table');
  for (const rg of table.querySelectorAll('thead, tbody')) rg.setAttribute('role', 'rowgroup');
  for (const th of table.querySelectorAll('thead th')) th.setAttribute('role', 'columnheader');
  for (const tr of table.querySelectorAll('tr')) {
    tr.setAttribute('role', 'row');
    [...tr.children].forEach((cell, i) => {
      if (tr.parentElement?.tagName !== 'TBODY') return;
      cell.setAttribute('role', cell.tagName === 'TH' ? 'rowheader' : 'cell');
      cell.setAttribute('data-label', names[i] ?? '');
    });
  }
  return table;
}

/**
 * A stackable data table: its caption (with the id the table's region is
 * labelled by), a header row of column names, and the body rows.
 * @param {{ captionId: string, caption: string, columns: string[], rows: Child }} o
 */
export function dataTable(o) {
  return stackable(
    h(
      'table',
      { class: 'data' },
      h('caption', { id: o.captionId }, o.caption),
      h('thead', {}, h('tr', {}, o.columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, o.rows),
    ),
  );
}

/** A stable id for label/aria wiring. */
let next = 0;
export const uid = (/** @type {string} */ prefix) => `${prefix}-${++next}`;

// --- Numbers and times ---------------------------------------------------------

const SI = ['', 'k', 'M', 'G', 'T'];

/**
 * A number with an SI prefix and three significant digits: si(1234567, 'bit/s') → "1.23 Mbit/s".
 * @param {number | undefined} n
 * @param {string} unit
 */
export function si(n, unit) {
  if (n === undefined || !Number.isFinite(n)) return '—';
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1000 && i < SI.length - 1) {
    v /= 1000;
    i++;
  }
  return `${n < 0 ? '-' : ''}${Number(v.toPrecision(3))}\u00a0${SI[i]}${unit}`;
}

/** @param {number | undefined} pps */
export const fmtPps = (pps) => si(pps, 'pkt/s');
/** @param {number | undefined} bps bits per second */
export const fmtBps = (bps) => si(bps, 'bit/s');
/** @param {number | undefined} bps bits per second, shown as bytes per second */
export const fmtByteRate = (bps) => si(bps === undefined ? undefined : bps / 8, 'B/s');
/** @param {number} n */
export const fmtCount = (n) => n.toLocaleString('en');

/** @param {string | null | undefined} iso */
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
}
