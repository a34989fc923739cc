// The library: movies or series as a poster grid or a compact table, with search, filters and paging.

import { api, artworkUrl, query } from './api.js';
import { baseName, cell, debounce, el, keepFocus, lockIcon, replaceChildren, throttle } from './dom.js';
import { reportError } from './status.js';

const PAGE = 60;
const LAYOUT_STORAGE = 'metarr.layout';
const KINDS = {
  movies: { prefix: 'movie', noun: 'movies', singular: 'movie', libraryKind: 'movies' },
  series: { prefix: 'series', noun: 'series', singular: 'show', libraryKind: 'series' },
};

/** The padlock marker listing an item's locked fields (or nothing). */
export function lockSummary(locked) {
  const fields = Array.isArray(locked) ? locked : [];
  if (!fields.length) return null;
  const names = fields.map((name) => name.replace(/^art:/, '').replace(/_/g, ' '));
  return el('span', { class: 'locks', title: `Locked: ${fields.join(', ')}` },
    lockIcon('Locked fields:'), ` ${names.join(', ')}`);
}

/** The badges of an item: status, missing file, NFO error, artwork error (absent key = none). */
export function badges(item) {
  const out = [];
  if (item.missing) out.push(el('span', { class: 'badge missing', title: 'The file is gone from disk', text: 'file missing' }));
  else if (item.status) out.push(el('span', { class: `badge ${item.status}`, 'data-role': 'status', text: item.status }));
  if (item.nfo_error) out.push(el('span', { class: 'badge failed', title: item.nfo_error, text: 'NFO error' }));
  if (item.artwork_error) out.push(el('span', { class: 'badge failed', title: item.artwork_error, text: 'artwork error' }));
  return out;
}

/** A poster image that falls back to a lettered tile when the item has none. */
function posterFor(kind, item, title, small) {
  const frame = el('div', { class: `poster-frame${small ? ' small' : ''}` },
    el('span', { class: 'poster-fallback', 'aria-hidden': 'true', text: title }));
  const img = el('img', {
    class: 'poster', alt: '', loading: 'lazy', decoding: 'async', src: artworkUrl(kind, item.id, 'poster'),
  });
  img.addEventListener('error', () => img.remove());
  img.addEventListener('load', () => frame.classList.add('has-image'));
  frame.append(img);
  return frame;
}

/** The library view: one kind at a time, grid or table. */
export class LibraryView {
  /** nodes: {boxes: {movies, series}, totals: {movies, series}, tabs: {movies, series}, search, status,
   *  locked, artworkError, filtersCount, grid, table, prev, next, range}; hasLibraries() -> {movies, series}. */
  constructor(nodes, hasLibraries) {
    this.n = nodes;
    this.hasLibraries = hasLibraries;
    this.kind = 'movies';
    this.layout = this.storedLayout();
    this.items = [];
    this.total = 0;
    this.offset = 0;
    this.loaded = false;
    this.loading = null;
    const reload = () => { this.offset = 0; this.load(); };
    nodes.search.addEventListener('input', debounce(reload, 250));
    for (const input of [nodes.status, nodes.locked, nodes.artworkError]) input.addEventListener('change', reload);
    nodes.prev.addEventListener('click', () => { this.offset = Math.max(0, this.offset - PAGE); this.load(); });
    nodes.next.addEventListener('click', () => { this.offset += PAGE; this.load(); });
    nodes.tabs.movies.addEventListener('click', () => this.setKind('movies'));
    nodes.tabs.series.addEventListener('click', () => this.setKind('series'));
    nodes.grid.addEventListener('click', () => this.setLayout('grid'));
    nodes.table.addEventListener('click', () => this.setLayout('table'));
    this.reloadSoon = throttle(() => this.load(), 1500); // new items during a scan: one reload at a time
    this.pendingRows = new Set();
    this.refreshRowsSoon = throttle(() => this.refreshPendingRows(), 300);
    this.showLayout();
  }

  /** grid or table, as last chosen. */
  storedLayout() {
    try {
      return localStorage.getItem(LAYOUT_STORAGE) === 'table' ? 'table' : 'grid';
    } catch {
      return 'grid';
    }
  }

  /** Switch between grid and table. */
  setLayout(layout) {
    this.layout = layout;
    try {
      localStorage.setItem(LAYOUT_STORAGE, layout);
    } catch {
      // storage disabled: the choice lasts for this page
    }
    this.showLayout();
    this.render();
  }

  /** Reflect the layout on the toggle buttons. */
  showLayout() {
    this.n.grid.setAttribute('aria-pressed', String(this.layout === 'grid'));
    this.n.table.setAttribute('aria-pressed', String(this.layout === 'table'));
  }

  /** Show movies or series. */
  setKind(kind) {
    if (kind === this.kind) return;
    this.kind = kind;
    this.offset = 0;
    for (const name of Object.keys(KINDS)) {
      this.n.tabs[name].setAttribute('aria-selected', String(name === kind));
      this.n.boxes[name].hidden = name !== kind;
    }
    this.load();
  }

  /** The active filters as query parameters. */
  params() {
    return {
      q: this.n.search.value.trim(), status: this.n.status.value,
      locked: this.n.locked.checked ? 'true' : '', artwork_error: this.n.artworkError.checked ? 'true' : '',
    };
  }

  /** Fetch the current page (and the other kind's total for its tab). */
  async load() {
    const kind = this.kind;
    const params = this.params();
    const active = ['status', 'locked', 'artwork_error'].filter((name) => params[name]).length;
    this.n.filtersCount.hidden = active === 0;
    this.n.filtersCount.textContent = String(active);
    try {
      const reply = await api('GET', `/api/${kind}${query({ ...params, limit: PAGE, offset: this.offset })}`);
      if (kind !== this.kind) return;
      this.items = reply.items || [];
      this.total = typeof reply.total === 'number' ? reply.total : this.items.length;
      this.loaded = true;
      this.n.totals[kind].textContent = this.filtered() ? '' : String(this.total);
      this.render();
      const other = kind === 'movies' ? 'series' : 'movies';
      const count = await api('GET', `/api/${other}?limit=1`);
      this.n.totals[other].textContent = String(count.total ?? '');
    } catch (err) {
      reportError(`Could not load ${kind}`, err);
    }
  }

  /** Whether any search or filter narrows the list. */
  filtered() {
    return Object.values(this.params()).some(Boolean);
  }

  /** A *:updated frame: refresh that item, or reload the page when it is new. */
  itemUpdated(kind, id) {
    if (kind !== this.kind) {
      this.reloadSoon();
      return;
    }
    if (this.items.some((item) => item.id === id)) {
      this.pendingRows.add(id);
      this.refreshRowsSoon();
    } else if (this.offset === 0) {
      this.reloadSoon();
    }
  }

  /** Re-fetch items named by recent frames and redraw them in place. */
  async refreshPendingRows() {
    const ids = [...this.pendingRows];
    this.pendingRows.clear();
    const kind = this.kind;
    for (const id of ids) {
      try {
        const item = await api('GET', `/api/${kind}/${id}`);
        const index = this.items.findIndex((existing) => existing.id === id);
        if (kind !== this.kind || index < 0 || !item) continue;
        this.items[index] = item;
        const old = this.n.boxes[kind].querySelector(`[data-testid="${KINDS[kind].prefix}-${id}"]`);
        if (old) keepFocus(this.n.boxes[kind], () => old.replaceWith(this.entry(item)));
      } catch (err) {
        if (err.status === 404) this.reloadSoon();
        else reportError(`Could not refresh ${KINDS[kind].singular} ${id}`, err);
      }
    }
  }

  /** The text shown when the page is empty: it names the next step. */
  emptyText() {
    const spec = KINDS[this.kind];
    if (this.filtered()) return `No ${spec.noun} match this search and these filters.`;
    const configured = this.hasLibraries()[this.kind];
    if (!configured) {
      return `No ${spec.noun} yet: add a library with kind: ${spec.libraryKind} under libraries: in config/agent.yaml,`
        + ' restart the agent and press Scan.';
    }
    const naming = this.kind === 'series' ? 'a folder per show, with "Season 01" folders inside'
      : 'a folder per movie, named like "Title (Year)"';
    return `No ${spec.noun} yet: press Scan on the library above to find them (${naming}).`;
  }

  /** Redraw the current kind's box and the pager. */
  render() {
    if (!this.loaded) return;
    const box = this.n.boxes[this.kind];
    let content;
    if (!this.items.length) {
      content = el('p', { class: 'empty', 'data-testid': `${this.kind}-empty`, text: this.emptyText() });
    } else if (this.layout === 'grid') {
      content = el('ul', { class: 'poster-grid' }, this.items.map((item) => this.entry(item)));
    } else {
      content = el('table', { class: 'grid media' },
        el('thead', {}, el('tr', {},
          ['Poster', 'Title', 'Year', 'Status', 'Locked'].map((name) => el('th', { scope: 'col' },
            name === 'Poster' ? el('span', { class: 'sr-only', text: name }) : name)))),
        el('tbody', {}, this.items.map((item) => this.entry(item))));
    }
    box.dataset.layout = this.layout;
    keepFocus(box, () => replaceChildren(box, content));
    const first = this.items.length ? this.offset + 1 : 0;
    this.n.range.textContent = this.total > PAGE ? `${first}–${this.offset + this.items.length} of ${this.total}` : '';
    this.n.prev.hidden = this.n.next.hidden = this.total <= PAGE;
    this.n.prev.disabled = this.offset === 0;
    this.n.next.disabled = this.offset + this.items.length >= this.total;
  }

  /** A card or a row, whichever the layout needs. */
  entry(item) {
    return this.layout === 'grid' ? this.card(item) : this.row(item);
  }

  /** Where an item opens. */
  href(item) {
    return `#/${KINDS[this.kind].prefix}/${item.id}`;
  }

  /** One poster card. */
  card(item) {
    const spec = KINDS[this.kind];
    const title = item.title || baseName(item.file || item.path) || `#${item.id}`;
    const sub = [item.year, this.kind === 'series' && typeof item.episode_count === 'number'
      ? `${item.episode_count} episode${item.episode_count === 1 ? '' : 's'}` : null].filter(Boolean).join(' · ');
    const locks = lockSummary(item.locked_fields);
    return el('li', { class: `card${item.missing ? ' is-missing' : ''}`, 'data-testid': `${spec.prefix}-${item.id}` },
      el('a', { class: 'card-link', href: this.href(item), 'aria-label': `Open ${title}`, 'data-testid': `open-${spec.prefix}-${item.id}` },
        posterFor(this.kind, item, title, false)),
      el('div', { class: 'card-badges' }, badges(item)),
      el('div', { class: 'card-text' },
        el('a', { class: 'card-title', href: this.href(item), 'data-testid': `${spec.prefix}-title-${item.id}`, title, text: title }),
        el('span', { class: 'muted card-sub', text: sub || '\u00a0' }),
        locks),
    );
  }

  /** One compact table row. */
  row(item) {
    const spec = KINDS[this.kind];
    const title = item.title || baseName(item.file || item.path) || `#${item.id}`;
    const tr = el('tr', { 'data-testid': `${spec.prefix}-${item.id}`, class: 'clickable' },
      cell('Poster', { class: 'poster-cell' }, posterFor(this.kind, item, title, true)),
      cell('Title', { class: 'title-cell' },
        el('a', { href: this.href(item), 'data-testid': `open-${spec.prefix}-${item.id}`, 'aria-label': `Open ${title}` },
          el('span', { 'data-testid': `${spec.prefix}-title-${item.id}`, text: title }))),
      cell('Year', { text: item.year ?? '—' }),
      cell('Status', {}, badges(item)),
      cell('Locked', {}, lockSummary(item.locked_fields) || el('span', { class: 'muted', text: '—' })),
    );
    tr.addEventListener('click', (event) => {
      if (!event.target.closest('a, button, input')) window.location.hash = this.href(item);
    });
    return tr;
  }
}
