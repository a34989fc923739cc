// Tiny DOM helpers shared by the views: element builder and formatters.

/** Build an element: el('button', {class: 'x', 'data-testid': 'y', onclick: fn}, 'text', child). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else if (name === 'text') {
      node.textContent = String(value);
    } else if (name === 'value') {
      node.value = String(value);
    } else if (name === 'class') {
      node.className = value;
    } else if (name in node && typeof value !== 'string') {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A table cell carrying the column name used by the stacked-card layout on phones. */
export function cell(label, props = {}, ...children) {
  return el('td', { 'data-label': label, ...props }, ...children);
}

/** Turn epoch seconds, epoch milliseconds or an ISO string into a Date (or null). */
export function toDate(value) {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value === 'number') return new Date(value < 1e11 ? value * 1000 : value);
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? null : parsed;
}

/** Short local date-time for tables, or an em dash. */
export function formatTime(value) {
  const date = toDate(value);
  if (!date) return '—';
  return date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

/** Seconds as h:mm:ss or m:ss. */
export function formatDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '';
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** Last path segment of a POSIX, Windows or URL-style path. */
export function baseName(path) {
  if (!path) return '';
  const trimmed = String(path).replace(/[\\/]+$/, '');
  return trimmed.split(/[\\/]/).pop() || trimmed;
}

/** Replace every child of a node. */
export function replaceChildren(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

/** Call fn at most once per `ms`, with the latest arguments, after things go quiet. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Call fn at most once per `ms` while calls keep coming (the last call's arguments win; the first waits `ms`). */
export function throttle(fn, ms) {
  let timer = null;
  let latest = [];
  return (...args) => {
    latest = args;
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      fn(...latest);
    }, ms);
  };
}

/** Run a redraw of `container` and give focus back to the element with the same data-testid. */
export function keepFocus(container, redraw) {
  const active = document.activeElement;
  const testid = active && container.contains(active) ? active.getAttribute('data-testid') : null;
  redraw();
  if (!testid) return;
  const again = container.querySelector(`[data-testid="${CSS.escape(testid)}"]`);
  if (again) again.focus();
}

/**
 * A padlock drawn as inline SVG (emoji fonts are missing on many servers and kiosks, where 🔒 shows as a box).
 * label: the accessible name; empty makes it decorative.
 */
export function lockIcon(label = '') {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('class', 'lock-icon');
  svg.setAttribute('focusable', 'false');
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  const shackle = document.createElementNS(ns, 'path');
  shackle.setAttribute('d', 'M5 7.5V5a3 3 0 0 1 6 0v2.5');
  shackle.setAttribute('fill', 'none');
  shackle.setAttribute('stroke', 'currentColor');
  shackle.setAttribute('stroke-width', '1.8');
  const body = document.createElementNS(ns, 'rect');
  for (const [name, value] of Object.entries({ x: 2.5, y: 7, width: 11, height: 8, rx: 1.5, fill: 'currentColor' })) {
    body.setAttribute(name, String(value));
  }
  svg.append(shackle, body);
  return svg;
}

/** A file path as text that may wrap after each / or \ (a <wbr> after every separator). */
export function pathText(path) {
  const parts = String(path ?? '').split(/(?<=[\\/])/);
  return parts.flatMap((part, index) => (index < parts.length - 1 ? [part, el('wbr')] : [part]));
}
