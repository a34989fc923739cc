// The dismissible status area (aria-live) for errors and confirmations.

import { describeError } from './api.js';
import { el } from './dom.js';

const MAX_MESSAGES = 5;
const INFO_LIFETIME_MS = 6000;

let area = null;

/** Attach the status list element. */
export function initStatus(node) {
  area = node;
}

/** Show a message; errors stay until dismissed, info messages fade after a few seconds. */
export function notify(message, kind = 'error') {
  if (!area) return;
  const item = el('li', { class: `message ${kind}`, 'data-testid': `status-${kind}` });
  const dismiss = el('button', {
    type: 'button',
    class: 'dismiss',
    'aria-label': 'Dismiss message',
    text: '×',
    onclick: () => item.remove(),
  });
  item.append(el('span', { text: message }), dismiss);
  area.append(item);
  while (area.children.length > MAX_MESSAGES) area.firstElementChild.remove();
  if (kind !== 'error') setTimeout(() => item.remove(), INFO_LIFETIME_MS);
}

/** Remove every message. */
export function clearStatus() {
  if (area) area.replaceChildren();
}

/** Show a failed call as "context: error"; a 401 is left to the API key form. */
export function reportError(context, err) {
  if (err && err.status === 401) return;
  notify(`${context}: ${describeError(err)}`);
}
