// The item page of a movie, a show or an episode: fanart and poster, every field with one Save that locks
// what changed, lock toggles per field and per artwork type, the files written beside the media, the NFO
// as written, and Fix match (search TMDB, pick, re-identify, enrich, republish).

import { api, artworkUrl, describeError, query } from './api.js';
import { baseName, el, formatTime, keepFocus, lockIcon, pathText, replaceChildren } from './dom.js';
import { badges } from './library.js';
import { notify, reportError } from './status.js';

const LIST = 'list';
const F = (name, label, extra = {}) => ({ name, label, ...extra });
const IDS = [F('tmdb_id', 'TMDB id', { type: 'number' }), F('imdb_id', 'IMDb id', { placeholder: 'tt0133093' })];
const MOVIE_FIELDS = [
  F('title', 'Title'), F('original_title', 'Original title'), F('sort_title', 'Sort title'),
  F('year', 'Year', { type: 'number' }), F('premiered', 'Premiered', { placeholder: 'YYYY-MM-DD' }),
  F('runtime', 'Runtime (min)', { type: 'number' }), F('mpaa', 'Rating (MPAA)'), F('certification', 'Certification'),
  F('tagline', 'Tagline', { wide: true }), F('plot', 'Plot', { multiline: true }), F('outline', 'Outline', { multiline: true }),
  F('genres', 'Genres', { kind: LIST }), F('studios', 'Studios', { kind: LIST }), F('countries', 'Countries', { kind: LIST }),
  F('directors', 'Directors', { kind: LIST }), F('credits', 'Writers', { kind: LIST }), F('tags', 'Tags', { kind: LIST }),
  F('set', 'Collection', { kind: 'set' }), F('trailer', 'Trailer URL', { wide: true }),
  F('userrating', 'Your rating (0-10)', { type: 'number' }), ...IDS,
];
const SERIES_FIELDS = [
  F('title', 'Title'), F('original_title', 'Original title'), F('sort_title', 'Sort title'),
  F('year', 'Year', { type: 'number' }), F('premiered', 'Premiered', { placeholder: 'YYYY-MM-DD' }),
  F('mpaa', 'Rating (MPAA)'), F('show_status', 'Show status'), F('plot', 'Plot', { multiline: true }),
  F('outline', 'Outline', { multiline: true }), F('genres', 'Genres', { kind: LIST }),
  F('studios', 'Networks / studios', { kind: LIST }), F('countries', 'Countries', { kind: LIST }),
  F('tags', 'Tags', { kind: LIST }), F('userrating', 'Your rating (0-10)', { type: 'number' }), ...IDS,
  F('tvdb_id', 'TVDB id', { type: 'number' }),
];
const EPISODE_FIELDS = [
  F('title', 'Title'), F('original_title', 'Original title'), F('season', 'Season', { type: 'number' }),
  F('episode', 'Episode', { type: 'number' }), F('aired', 'Aired', { placeholder: 'YYYY-MM-DD' }),
  F('runtime', 'Runtime (min)', { type: 'number' }), F('plot', 'Plot', { multiline: true }),
  F('outline', 'Outline', { multiline: true }), F('directors', 'Directors', { kind: LIST }),
  F('credits', 'Writers', { kind: LIST }), F('userrating', 'Your rating (0-10)', { type: 'number' }), ...IDS,
  F('tvdb_id', 'TVDB id', { type: 'number' }),
];
const KINDS = {
  movie: { path: 'movies', fields: MOVIE_FIELDS, match: 'movie', noun: 'movie' },
  series: { path: 'series', fields: SERIES_FIELDS, match: 'series', noun: 'show' },
  episode: { path: 'episodes', fields: EPISODE_FIELDS, match: null, noun: 'episode' },
};
const ART_ORDER = ['poster', 'fanart', 'clearlogo', 'clearart', 'banner', 'landscape', 'keyart', 'discart', 'thumb'];

/** "S01E02" for an episode. */
function episodeCode(episode) {
  const pad = (n) => String(n ?? 0).padStart(2, '0');
  return `S${pad(episode.season)}E${pad(episode.episode)}`;
}

/** A field's saved value as the text its input shows. */
function shown(field, value) {
  if (value === undefined || value === null) return '';
  if (field.kind === LIST) return Array.isArray(value) ? value.join(' / ') : String(value);
  if (field.kind === 'set') return typeof value === 'object' ? value.name || '' : String(value);
  return String(value);
}

/** A path relative to the item's folder (names as on disk: "poster.jpg", "extrafanart/fanart1.jpg"). */
function relativeTo(folder, path) {
  if (!path) return '';
  if (folder) {
    const base = folder.replace(/[\\/]+$/, '');
    if (path.startsWith(`${base}/`) || path.startsWith(`${base}\\`)) return path.slice(base.length + 1);
  }
  return baseName(path);
}

/** The folder an item's files live in. */
function folderOf(entity) {
  if (entity.path) return entity.path;
  const file = entity.file || '';
  const cut = Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\'));
  return cut > 0 ? file.slice(0, cut) : '';
}

/** The item page. */
export class ItemPage {
  /** section: the page element; dialog: the Fix match <dialog>; onChanged(kind, id) refreshes the library. */
  constructor(section, dialog, onChanged) {
    this.section = section;
    this.hero = section.querySelector('[data-role="hero"]');
    this.heading = section.querySelector('[data-role="heading"]');
    this.sub = section.querySelector('[data-role="sub"]');
    this.back = section.querySelector('[data-role="back"]');
    this.body = section.querySelector('[data-role="body"]');
    this.dialog = dialog;
    this.onChanged = onChanged;
    this.current = null; // {kind, id}
    this.entity = null;
    this.nfo = null; // {path, text} or {error}
    this.dirty = new Map();
    this.refreshTimer = null;
    this.providerKeyMissing = false; // set from /api/health: Update then only re-reads local files
    this.setupMatchDialog();
  }

  /** Show one entity (the router calls this). */
  async open(kind, id) {
    const same = this.current && this.current.kind === kind && this.current.id === id;
    this.current = { kind, id };
    if (!same) {
      this.dirty.clear();
      this.entity = null;
      this.nfo = null;
      this.heading.textContent = 'Loading…';
      this.sub.textContent = '';
      this.hero.style.removeProperty('--fanart');
      replaceChildren(this.body);
    }
    await this.reload();
  }

  /** The page was left. */
  close() {
    this.stopRefreshTimer();
    this.current = null;
    this.entity = null;
    this.dirty.clear();
  }

  /** Re-fetch the entity (and its NFO) and redraw, keeping unsaved edits. */
  async reload() {
    const current = this.current;
    if (!current) return;
    try {
      const entity = await api('GET', `/api/${KINDS[current.kind].path}/${current.id}`);
      if (this.current !== current) return;
      this.entity = entity;
      this.render();
      this.loadNfo(current);
    } catch (err) {
      if (this.current !== current) return;
      reportError(`Could not load ${KINDS[current.kind].noun} ${current.id}`, err);
      this.heading.textContent = err.status === 404 ? 'Not found' : 'Could not load';
    }
  }

  /** Fetch the NFO as written. */
  async loadNfo(current) {
    try {
      this.nfo = await api('GET', `/api/${KINDS[current.kind].path}/${current.id}/nfo`);
    } catch (err) {
      this.nfo = { error: err.status === 404 ? err.message : describeError(err) };
    }
    if (this.current !== current) return;
    const node = this.body.querySelector('[data-role="nfo"]');
    if (node) node.replaceWith(this.nfoSection());
  }

  /** A *:updated frame: reload when it is about the open entity. */
  refreshIf(kind, id) {
    if (!this.current || this.current.kind !== kind || this.current.id !== id) return;
    if (!this.isEditing()) {
      this.reload();
    } else if (this.refreshTimer === null) {
      // Do not redraw under the user's caret: refresh once focus has left the fields.
      this.refreshTimer = setInterval(() => {
        if (this.isEditing()) return;
        this.stopRefreshTimer();
        this.reload();
      }, 1000);
    }
  }

  /** True while focus is in one of the page's inputs. */
  isEditing() {
    const active = document.activeElement;
    return Boolean(active && this.body.contains(active) && active.matches('input, textarea'));
  }

  /** Cancel a deferred refresh. */
  stopRefreshTimer() {
    clearInterval(this.refreshTimer);
    this.refreshTimer = null;
  }

  /** The fields whose input differs from the saved value: {name: value to send}, or an error text. */
  changes() {
    const spec = KINDS[this.current.kind];
    const out = {};
    const labels = [];
    for (const field of spec.fields) {
      if (!this.dirty.has(field.name)) continue;
      const text = this.dirty.get(field.name).trim();
      if (text === shown(field, this.entity[field.name]).trim()) continue;
      let value = text === '' ? null : text;
      if (field.type === 'number' && value !== null) {
        if (!/^-?\d+$/.test(value)) return { error: `${field.label} must be a whole number` };
        value = Number(value);
      }
      out[field.name] = value;
      labels.push(field.label);
    }
    return { values: out, labels };
  }

  /** One Save: PATCH every changed field at once (the agent saves and locks them, then republishes). */
  async save(button) {
    const { kind, id } = this.current;
    const found = this.changes();
    if (found.error) {
      notify(found.error);
      return;
    }
    if (!found.labels.length) {
      notify('Nothing changed', 'info');
      return;
    }
    button.disabled = true;
    try {
      this.entity = await api('PATCH', `/api/${KINDS[kind].path}/${id}/metadata`, found.values);
      this.dirty.clear();
      notify(`Saved and locked: ${found.labels.join(', ')}. The NFO is being rewritten.`, 'info');
      this.onChanged(kind, id);
      this.render();
    } catch (err) {
      reportError('Saving failed', err);
    } finally {
      button.disabled = false;
    }
  }

  /** Lock or unlock one field or artwork type ("art:poster"). */
  async setLock(name, label, locked) {
    const { kind, id } = this.current;
    try {
      this.entity = await api('POST', `/api/${KINDS[kind].path}/${id}/lock`, { fields: [name], locked });
      notify(locked ? `${label} locked: automation will not change it` : `${label} unlocked: providers may update it again`, 'info');
      this.onChanged(kind, id);
      this.reload();
    } catch (err) {
      reportError(`${locked ? 'Locking' : 'Unlocking'} ${label} failed`, err);
    }
  }

  /** Queue enrichment (and republishing). */
  async enrich(button) {
    const { kind, id } = this.current;
    button.disabled = true;
    try {
      await api('POST', `/api/${KINDS[kind].path}/${id}/enrich`);
      notify(this.providerKeyMissing
        ? 'No TMDB API key: only the NFO and the files beside the media are read again. Set providers.tmdb.api_key'
          + ' in the config (see System) to fetch metadata and artwork.'
        : 'Updating from the providers; the page refreshes when it is done (see Activity)', 'info');
    } catch (err) {
      reportError('Enrich failed', err);
    } finally {
      button.disabled = false;
    }
  }

  /** Redraw the whole page. */
  render() {
    const { kind, id } = this.current;
    const entity = this.entity;
    const spec = KINDS[kind];
    const title = entity.title || baseName(entity.file || entity.path) || `#${id}`;
    this.heading.textContent = kind === 'episode' ? `${episodeCode(entity)} · ${title}`
      : `${title}${entity.year ? ` (${entity.year})` : ''}`;
    this.back.textContent = kind === 'episode' ? '‹ Show' : '‹ Library';
    this.back.setAttribute('href', kind === 'episode' ? `#/series/${entity.series_id}` : '#/library');
    replaceChildren(this.sub, badges(entity), entity.tagline ? el('span', { class: 'tagline', text: entity.tagline }) : null,
      entity.library ? el('span', { class: 'muted', text: entity.library }) : null);
    const art = new Set((entity.artwork || []).map((a) => a.art_type));
    const found = entity.artwork_found || {};
    if (kind !== 'episode' && (art.has('fanart') || found.fanart)) {
      this.hero.style.setProperty('--fanart', `url("${artworkUrl(spec.path, id, 'fanart')}")`);
    } else {
      this.hero.style.removeProperty('--fanart');
    }
    const posterType = kind === 'episode' ? 'thumb' : 'poster';
    const hasPoster = art.has(posterType) || found[posterType];
    const locked = new Set(Array.isArray(entity.locked_fields) ? entity.locked_fields : []);

    const save = el('button', { type: 'submit', 'data-testid': 'save', text: 'Save' });
    const actions = [save];
    const discard = el('button', { type: 'button', class: 'ghost', 'data-testid': 'discard', text: 'Discard changes' });
    discard.addEventListener('click', () => { this.dirty.clear(); this.render(); });
    actions.push(discard);
    const form = el('form', { class: 'fields', 'data-testid': 'fields' },
      spec.fields.map((field) => this.fieldEditor(field, entity, locked.has(field.name))),
      el('div', { class: 'form-actions' }, actions,
        el('span', { class: 'muted', text: 'Saving locks every field you changed, so providers never overwrite it.' })),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.save(save);
    });

    const tools = [];
    if (spec.match) {
      tools.push(el('button', { type: 'button', 'data-testid': 'fix-match', text: 'Fix match', onclick: () => this.openMatch() }));
    }
    if (kind === 'movie') {
      const enrich = el('button', { type: 'button', class: 'ghost', 'data-testid': 'enrich', text: 'Update from providers' });
      enrich.addEventListener('click', () => this.enrich(enrich));
      tools.push(enrich);
    }
    const problems = [
      entity.missing ? `The file is gone from disk (since ${formatTime(entity.missing_since)}).` : null,
      entity.nfo_error ? `NFO: ${entity.nfo_error}` : null,
      entity.artwork_error ? `Artwork: ${entity.artwork_error}` : null,
    ].filter(Boolean);

    const parts = [
      el('div', { class: 'item-top' },
        hasPoster ? el('img', {
          class: 'item-poster', alt: `${posterType === 'thumb' ? 'Thumbnail' : 'Poster'} of ${title}`,
          src: artworkUrl(spec.path, id, posterType), onerror: (event) => { event.target.hidden = true; },
        }) : el('div', { class: 'item-poster placeholder', text: 'No poster yet' }),
        el('div', { class: 'item-summary' },
          tools.length ? el('div', { class: 'toolbar' }, tools) : null,
          problems.length ? el('ul', { class: 'problems', 'data-testid': 'item-problems' }, problems.map((p) => el('li', { text: p }))) : null,
          this.facts(entity),
          entity.plot ? el('p', { class: 'plot', text: entity.plot }) : null,
          this.people(entity),
        ),
      ),
      el('section', { class: 'panel' }, el('h3', { text: 'Details' }), form),
      this.artworkSection(entity, locked),
      kind === 'series' ? this.episodeList(entity) : null,
      this.nfoSection(),
    ];
    keepFocus(this.body, () => replaceChildren(this.body, parts));
  }

  /** One labelled input with its lock toggle. */
  fieldEditor(field, entity, isLocked) {
    const inputId = `edit-${field.name}`;
    const value = this.dirty.has(field.name) ? this.dirty.get(field.name) : shown(field, entity[field.name]);
    const props = { id: inputId, name: field.name, 'data-testid': inputId, value };
    const input = field.multiline
      ? el('textarea', { ...props, rows: field.name === 'plot' ? 5 : 3 })
      : el('input', {
        type: 'text', ...props, placeholder: field.placeholder || (field.kind === LIST ? 'A / B / C' : null),
        inputmode: field.type === 'number' ? 'numeric' : null,
      });
    input.addEventListener('input', () => {
      this.dirty.set(field.name, input.value);
      wrap.classList.toggle('changed', input.value.trim() !== shown(field, entity[field.name]).trim());
    });
    const toggle = el('button', {
      type: 'button', class: `lock-toggle${isLocked ? ' on' : ''}`,
      'data-testid': isLocked ? `unlock-${field.name}` : `lock-${field.name}`,
      'aria-pressed': String(isLocked), 'aria-label': `${isLocked ? 'Unlock' : 'Lock'} ${field.label}`,
      title: isLocked ? `${field.label} is locked: automation will not change it. Click to unlock.`
        : `Lock ${field.label} so automation never changes it`,
      onclick: () => this.setLock(field.name, field.label, !isLocked),
    }, lockIcon(''), el('span', { class: 'lock-word', text: isLocked ? 'Locked' : 'Lock' }));
    const wrap = el('div', {
      class: `field${isLocked ? ' locked' : ''}${field.multiline || field.wide ? ' wide' : ''}`, 'data-field': field.name,
    },
      el('div', { class: 'field-label' },
        el('label', { for: inputId, text: field.label }),
        isLocked ? el('span', { class: 'lock', 'data-testid': `locked-${field.name}`, title: `${field.label} is locked` },
          lockIcon(`${field.label} is locked`)) : null,
        toggle),
      input,
    );
    return wrap;
  }

  /** Identification and ids at a glance. */
  facts(entity) {
    const rows = [
      ['Status', entity.status],
      ['File', entity.file || entity.path],
      ['TMDB', entity.tmdb_id],
      ['IMDb', entity.imdb_id],
      ['TVDB', entity.tvdb_id],
      ['Runtime', entity.runtime ? `${entity.runtime} min` : null],
      ['Genres', Array.isArray(entity.genres) ? entity.genres.join(', ') : null],
      ['Updated', entity.updated_at ? formatTime(entity.updated_at) : null],
    ].filter(([, value]) => value !== undefined && value !== null && value !== '');
    return el('dl', { class: 'facts' }, rows.map(([label, value]) => [
      el('dt', { text: label }),
      el('dd', {}, label === 'File' ? pathText(value) : String(value)),
    ]));
  }

  /** Cast and ratings (read-only; the NFO carries them). */
  people(entity) {
    const actors = Array.isArray(entity.actors) ? entity.actors : [];
    const ratings = Array.isArray(entity.ratings) ? entity.ratings : [];
    if (!actors.length && !ratings.length) return null;
    return el('div', { class: 'people' },
      ratings.length ? el('p', { class: 'muted', text: ratings.map((r) => `${r.name || 'rating'} ${r.value}${r.max ? `/${r.max}` : ''}`).join(' · ') }) : null,
      actors.length ? el('p', { class: 'cast' }, el('strong', { text: 'Cast: ' }),
        actors.slice(0, 12).map((a) => (a.role ? `${a.name} (${a.role})` : a.name)).join(', ')
        + (actors.length > 12 ? ` and ${actors.length - 12} more` : '')) : null);
  }

  /** Artwork by type with its file beside the media and a lock toggle; then every file the agent wrote. */
  artworkSection(entity, locked) {
    const { kind, id } = this.current;
    const spec = KINDS[kind];
    const folder = folderOf(entity);
    const byType = new Map();
    for (const art of entity.artwork || []) {
      const base = art.art_type;
      if (!byType.has(base)) byType.set(base, []);
      byType.get(base).push(art);
    }
    for (const [type, path] of Object.entries(entity.artwork_found || {})) {
      if (!byType.has(type) && typeof path === 'string') byType.set(type, [{ art_type: type, library_path: path, source: 'found beside the media' }]);
    }
    const types = [...byType.keys()].sort((a, b) => {
      const ia = ART_ORDER.indexOf(a.split('-').pop());
      const ib = ART_ORDER.indexOf(b.split('-').pop());
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    const tiles = types.map((type) => {
      const arts = byType.get(type);
      const lockName = `art:${type}`;
      const isLocked = locked.has(lockName);
      const names = arts.map((a) => a.library_path).filter(Boolean);
      return el('li', { class: `art-tile${isLocked ? ' locked' : ''}`, 'data-testid': `art-${type}` },
        el('div', { class: `art-thumb art-${type.split('-').pop()}` },
          el('img', { src: artworkUrl(spec.path, id, type), alt: `${type} of ${entity.title || ''}`, loading: 'lazy',
            onerror: (event) => { event.target.hidden = true; } })),
        el('div', { class: 'art-meta' },
          el('strong', { text: type }),
          names.length ? el('ul', { class: 'file-names' }, names.map((path) => el('li', { title: path, 'data-testid': 'artwork-file', text: relativeTo(folder, path) })))
            : el('span', { class: 'muted', text: 'cached, not written yet' }),
          el('span', { class: 'muted small-text', text: `from ${arts[0].source || 'unknown'}${arts.length > 1 ? ` · ${arts.length} images` : ''}` }),
          el('button', {
            type: 'button', class: `lock-toggle${isLocked ? ' on' : ''}`,
            'data-testid': isLocked ? `unlock-art-${type}` : `lock-art-${type}`, 'aria-pressed': String(isLocked),
            'aria-label': `${isLocked ? 'Unlock' : 'Lock'} the ${type}`,
            title: isLocked ? `The ${type} is locked: automation keeps this image` : `Lock the ${type} so automation keeps this image`,
            onclick: () => this.setLock(lockName, `The ${type}`, !isLocked),
          }, lockIcon(''), el('span', { class: 'lock-word', text: isLocked ? 'Locked' : 'Lock' }))),
      );
    });
    const files = (entity.files || []).slice().sort((a, b) => a.path.localeCompare(b.path));
    return el('section', { class: 'panel', 'data-testid': 'artwork-files' },
      el('h3', { text: 'Artwork and files beside the media' }),
      folder ? el('p', { class: 'muted path' }, 'In ', pathText(folder)) : null,
      tiles.length ? el('ul', { class: 'art-grid' }, tiles)
        : el('p', { class: 'muted', text: 'No artwork yet: with a TMDB key it is fetched when the item is updated from the providers.' }),
      el('h4', { text: 'Files the agent wrote' }),
      files.length ? el('ul', { class: 'written', 'data-testid': 'written-files' }, files.map((file) => el('li', { title: file.path },
        el('code', { text: relativeTo(folder, file.path) }),
        el('span', { class: 'muted', text: ` ${file.kind}${file.written_at ? ` · ${formatTime(file.written_at)}` : ''}` }))))
        : el('p', { class: 'muted', text: 'Nothing written yet.' }),
    );
  }

  /** The NFO exactly as it is on disk. */
  nfoSection() {
    const nfo = this.nfo;
    let content;
    if (!nfo) content = el('p', { class: 'muted', text: 'Loading…' });
    else if (nfo.error) content = el('p', { class: 'muted', 'data-testid': 'nfo-missing', text: nfo.error });
    else {
      content = [el('p', { class: 'muted path' }, pathText(nfo.path)),
        el('pre', { class: 'nfo', 'data-testid': 'nfo-text', text: nfo.text })];
    }
    return el('details', { class: 'panel nfo-panel', 'data-role': 'nfo', 'data-testid': 'nfo' },
      el('summary', {}, el('h3', { text: 'NFO as written' })), content);
  }

  /** Seasons with their episodes, each opening its own page. */
  episodeList(series) {
    const groups = new Map();
    for (const season of series.seasons || []) groups.set(season.season ?? 0, []);
    for (const episode of series.episodes || []) {
      const number = episode.season ?? 0;
      if (!groups.has(number)) groups.set(number, []);
      groups.get(number).push(episode);
    }
    const seasons = [...groups.entries()].sort((a, b) => a[0] - b[0]);
    return el('section', { class: 'panel episodes', 'data-testid': 'episodes' },
      el('h3', { text: 'Episodes' }),
      seasons.length ? seasons.map(([number, episodes]) => [
        el('h4', { text: number === 0 ? 'Specials' : `Season ${number}` }),
        el('ul', {}, episodes.sort((a, b) => (a.episode ?? 0) - (b.episode ?? 0)).map((episode) => el('li', {},
          el('a', {
            href: `#/episode/${episode.id}`, 'data-testid': `episode-${episode.id}`,
            text: `${episodeCode(episode)} ${episode.title || baseName(episode.file)}`,
          }),
          Array.isArray(episode.locked_fields) && episode.locked_fields.length
            ? el('span', { class: 'lock' }, ' ', lockIcon('has locked fields')) : null,
          episode.missing ? el('span', { class: 'badge missing', text: 'missing' }) : null,
        ))),
      ]) : el('p', { class: 'muted', text: 'No episodes found yet: press Scan on the library.' }));
  }

  // --- Fix match ---------------------------------------------------------------------------------

  /** Wire the dialog's search form once. */
  setupMatchDialog() {
    const d = this.dialog;
    this.match = {
      title: d.querySelector('#match-title'), year: d.querySelector('#match-year'),
      message: d.querySelector('#match-message'), results: d.querySelector('#match-results'),
      form: d.querySelector('#match-form'),
    };
    this.match.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.searchMatch();
    });
  }

  /** Open Fix match with the item's title and year, and search right away. */
  openMatch() {
    const m = this.match;
    m.title.value = this.entity.title || baseName(this.entity.path || this.entity.file);
    m.year.value = this.entity.year || '';
    m.message.textContent = '';
    replaceChildren(m.results);
    this.dialog.showModal();
    this.searchMatch();
  }

  /** Search TMDB and list the candidates. */
  async searchMatch() {
    const m = this.match;
    const spec = KINDS[this.current.kind];
    const year = m.year.value.trim();
    m.message.textContent = 'Searching…';
    m.message.classList.remove('job-error');
    replaceChildren(m.results);
    try {
      const reply = await api('GET', `/api/search${query({ entity: spec.match, q: m.title.value.trim(), year })}`);
      const items = reply.items || [];
      m.message.textContent = items.length ? `${items.length} result${items.length === 1 ? '' : 's'} on TMDB; pick the right one.`
        : 'Nothing found on TMDB: try the original title, or leave the year empty.';
      replaceChildren(m.results, items.map((item) => this.matchResult(item)));
    } catch (err) {
      m.message.textContent = describeError(err);
      m.message.classList.add('job-error');
    }
  }

  /** One search result with its Use button. */
  matchResult(item) {
    const current = this.entity.tmdb_id === item.tmdb_id;
    return el('li', { class: `match${current ? ' current' : ''}`, 'data-testid': `match-result-${item.tmdb_id}` },
      item.poster ? el('img', { src: item.poster, alt: '', loading: 'lazy', onerror: (e) => { e.target.hidden = true; } })
        : el('div', { class: 'match-noposter' }),
      el('div', { class: 'match-text' },
        el('strong', { text: `${item.title}${item.year ? ` (${item.year})` : ''}` }),
        item.original_title && item.original_title !== item.title ? el('span', { class: 'muted', text: item.original_title }) : null,
        el('span', { class: 'muted small-text', text: `TMDB ${item.tmdb_id}${current ? ' · the current match' : ''}` }),
        item.overview ? el('p', { class: 'small-text', text: item.overview.length > 240 ? `${item.overview.slice(0, 240)}…` : item.overview }) : null),
      el('button', {
        type: 'button', 'data-testid': `match-use-${item.tmdb_id}`, text: current ? 'Use again' : 'Use this',
        onclick: (event) => this.useMatch(item, event.currentTarget),
      }),
    );
  }

  /** Re-identify the item as the chosen result; enrichment and publishing follow. */
  async useMatch(item, button) {
    const { kind, id } = this.current;
    button.disabled = true;
    try {
      const reply = await api('POST', `/api/${KINDS[kind].path}/${id}/match`, { tmdb_id: item.tmdb_id });
      this.dialog.close();
      this.entity = reply.item;
      this.render();
      notify(`Matched to ${item.title}${item.year ? ` (${item.year})` : ''} (TMDB ${item.tmdb_id}): updating and rewriting its files…`, 'info');
      this.onChanged(kind, id);
    } catch (err) {
      this.match.message.textContent = `Could not use this match: ${describeError(err)}`;
      this.match.message.classList.add('job-error');
    } finally {
      button.disabled = false;
    }
  }
}
