// Movies and series tables: search, status filter, paging, locks, live row refresh.

import { api, artworkUrl, query } from './api.js';
import { baseName, cell, debounce, el, keepFocus, lockIcon, replaceChildren } from './dom.js';
import { reportError } from './status.js';

const PAGE = 50;

/** The padlock marker listing an item's locked fields (or nothing). */
export function lockSummary(locked) {
  const fields = Array.isArray(locked) ? locked : [];
  if (!fields.length) return el('span', { class: 'muted', text: '—' });
  return el('span', { class: 'locks', title: `Locked: ${fields.join(', ')}` },
    lockIcon('Locked fields:'),
    ` ${fields.join(', ')}`,
  );
}

/** A paged, searchable table of movies or series. */
export class MediaTable {
  /**
   * options: kind ('movies' | 'series'), prefix ('movie' | 'series'), poster (bool),
   * tbody, search, status, prev, next, range (elements), onOpen(id).
   */
  constructor(options) {
    this.o = options;
    this.items = [];
    this.total = 0;
    this.offset = 0;
    const reload = debounce(() => { this.offset = 0; this.load(); }, 300);
    options.search.addEventListener('input', reload);
    options.status.addEventListener('change', () => { this.offset = 0; this.load(); });
    options.prev.addEventListener('click', () => { this.offset = Math.max(0, this.offset - PAGE); this.load(); });
    options.next.addEventListener('click', () => { this.offset += PAGE; this.load(); });
    this.reloadSoon = debounce(() => this.load(), 1000);
    this.pendingRows = new Set();
    this.refreshRowsSoon = debounce(() => this.refreshPendingRows(), 250);
  }

  /** Fetch the current page. */
  async load() {
    const params = { q: this.o.search.value.trim(), status: this.o.status.value, limit: PAGE, offset: this.offset };
    try {
      const reply = await api('GET', `/api/${this.o.kind}${query(params)}`);
      this.items = reply.items || [];
      this.total = typeof reply.total === 'number' ? reply.total : this.items.length;
      this.render();
    } catch (err) {
      reportError(`Could not load ${this.o.kind}`, err);
    }
  }

  /** A *:updated frame: refresh that row, or reload the page when the item is new. */
  itemUpdated(id) {
    if (this.items.some((item) => item.id === id)) {
      this.pendingRows.add(id);
      this.refreshRowsSoon();
    } else if (this.offset === 0) {
      this.reloadSoon();
    }
  }

  /** Re-fetch rows named by recent frames and redraw. */
  async refreshPendingRows() {
    const ids = [...this.pendingRows];
    this.pendingRows.clear();
    for (const id of ids) await this.refreshRow(id);
  }

  /** Re-fetch one item and replace its row. */
  async refreshRow(id) {
    try {
      const item = await api('GET', `/api/${this.o.kind}/${id}`);
      const index = this.items.findIndex((existing) => existing.id === id);
      if (index < 0 || !item) return;
      this.items[index] = item;
      const old = this.o.tbody.querySelector(`[data-testid="${this.o.prefix}-${id}"]`);
      if (old) keepFocus(this.o.tbody, () => old.replaceWith(this.row(item)));
    } catch (err) {
      if (err.status === 404) this.reloadSoon();
      else reportError(`Could not refresh ${this.o.prefix} ${id}`, err);
    }
  }

  /** Redraw the table body and the pager. */
  render() {
    const rows = this.items.map((item) => this.row(item));
    const columns = this.o.poster ? 5 : 4;
    if (!rows.length) {
      rows.push(el('tr', { class: 'empty' }, el('td', { colspan: columns, text: `No ${this.o.kind} found.` })));
    }
    keepFocus(this.o.tbody, () => replaceChildren(this.o.tbody, rows));
    const first = this.items.length ? this.offset + 1 : 0;
    this.o.range.textContent = `${first}–${this.offset + this.items.length} of ${this.total}`;
    this.o.prev.disabled = this.offset === 0;
    this.o.next.disabled = this.offset + this.items.length >= this.total;
  }

  /** One row: poster, title (opens the editor), year, status, locks. */
  row(item) {
    const title = item.title || baseName(item.file || item.path) || `#${item.id}`;
    const open = () => this.o.onOpen(item.id);
    const cells = [];
    if (this.o.poster) {
      const img = el('img', {
        class: 'poster', alt: '', loading: 'lazy', width: 46, height: 69,
        src: artworkUrl(this.o.kind, item.id, 'poster'),
      });
      img.addEventListener('error', () => { img.hidden = true; });
      cells.push(cell('Poster', { class: 'poster-cell' }, img));
    }
    cells.push(
      cell('Title', { 'data-testid': `${this.o.prefix}-title-${item.id}`, class: 'title-cell' },
        el('button', {
          type: 'button', class: 'link', text: title, 'aria-label': `Open ${title}`,
          'data-testid': `open-${this.o.prefix}-${item.id}`, onclick: open,
        })),
      cell('Year', { text: item.year ?? '—' }),
      cell('Status', {}, el('span', { class: `badge ${item.status || ''}`, text: item.status || '—' }),
        item.missing ? [' ', el('span', { class: 'badge missing', title: 'The file is gone from disk', text: 'missing' })] : null),
      cell('Locked', {}, lockSummary(item.locked_fields)),
    );
    const tr = el('tr', { 'data-testid': `${this.o.prefix}-${item.id}`, class: 'clickable' }, cells);
    tr.addEventListener('click', (event) => {
      if (!event.target.closest('button, a, input')) open();
    });
    if (item.nfo_error) tr.classList.add('has-error');
    return tr;
  }
}
