// @ts-check
// What every view gets from the shell, and what it gives back.
export {};

/**
 * @typedef {object} Ctx
 * @property {import('./api.js').Api} api
 * @property {import('./store.js').Store} store
 * @property {(message: string, kind?: 'ok' | 'error') => void} say  announce in the status region
 * @property {(...topics: ('system' | 'interfaces' | 'vms' | 'benchmarks')[]) => Promise<void>} refresh  re-read resources from the API
 */

/**
 * @typedef {object} View
 * @property {HTMLElement} el
 * @property {(topics: Set<import('./store.js').Topic>) => void} [update]  the store changed
 * @property {() => void} [destroy]  the view is left
 */
