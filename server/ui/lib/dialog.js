// @ts-check
// Modal dialogs on <dialog>: the browser traps focus, Escape cancels, and focus
// returns to what opened it.
import { h, uid } from './dom.js';

/**
 * Opens a modal with a heading and content; resolves when it closes.
 * @param {string} heading
 * @param {(close: () => void) => HTMLElement} content
 * @returns {Promise<void>}
 */
export function modal(heading, content) {
  const opener = document.activeElement;
  const headingId = uid('dlg');
  const dlg = h('dialog', { 'aria-labelledby': headingId });
  return new Promise((resolve) => {
    const close = () => dlg.close();
    dlg.append(h('h2', { id: headingId }, heading), content(close));
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve();
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

/**
 * Asks before something that cannot be undone.
 * @param {string} heading
 * @param {string} text
 * @param {string} action the confirming button's label
 * @returns {Promise<boolean>}
 */
export async function confirmAction(heading, text, action) {
  let ok = false;
  await modal(heading, (close) =>
    h(
      'div',
      {},
      h('p', {}, text),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'danger', onclick: () => ((ok = true), close()) }, action),
        h('button', { type: 'button', autofocus: true, onclick: close }, 'Cancel'),
      ),
    ),
  );
  return ok;
}
