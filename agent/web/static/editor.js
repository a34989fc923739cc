// Detail/edit panel for a movie, a series or an episode: inline edits lock fields; Unlock; Enrich.

import { api, artworkUrl } from './api.js';
import { baseName, el, keepFocus, lockIcon, pathText, replaceChildren } from './dom.js';
import { notify, reportError } from './status.js';

const TITLE_FIELDS = [
  { name: 'title', label: 'Title' },
  { name: 'original_title', label: 'Original title' },
  { name: 'sort_title', label: 'Sort title' },
  { name: 'year', label: 'Year', type: 'number' },
  { name: 'premiered', label: 'Premiered', placeholder: 'YYYY-MM-DD' },
  { name: 'plot', label: 'Plot', multiline: true },
  { name: 'outline', label: 'Outline', multiline: true },
  { name: 'tagline', label: 'Tagline' },
  { name: 'mpaa', label: 'Rating (MPAA)' },
];
const EPISODE_FIELDS = [
  { name: 'title', label: 'Title' },
  { name: 'original_title', label: 'Original title' },
  { name: 'aired', label: 'Aired', placeholder: 'YYYY-MM-DD' },
  { name: 'plot', label: 'Plot', multiline: true },
  { name: 'outline', label: 'Outline', multiline: true },
];
const PATH_FACTS = new Set(['File', 'NFO']);
const KINDS = {
  movie: { path: 'movies', fields: TITLE_FIELDS, enrich: true, poster: true },
  series: { path: 'series', fields: TITLE_FIELDS, enrich: false, poster: false },
  episode: { path: 'episodes', fields: EPISODE_FIELDS, enrich: false, poster: false },
};

/** "S01E02" for an episode. */
function episodeCode(episode) {
  const pad = (n) => String(n ?? 0).padStart(2, '0');
  return `S${pad(episode.season)}E${pad(episode.episode)}`;
}

/** Episodes grouped by season number, whether the reply nests them in seasons or lists them flat. */
function seasonsOf(series) {
  const groups = new Map();
  const seen = new Set();
  const add = (episode, seasonNumber) => {
    if (!episode || seen.has(episode.id)) return;
    seen.add(episode.id);
    const number = episode.season ?? seasonNumber ?? 0;
    if (!groups.has(number)) groups.set(number, []);
    groups.get(number).push({ ...episode, season: number });
  };
  for (const season of series.seasons || []) {
    if (!groups.has(season.season ?? 0)) groups.set(season.season ?? 0, []);
    for (const episode of season.episodes || []) add(episode, season.season);
  }
  for (const episode of series.episodes || []) add(episode);
  return [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([number, episodes]) => [number, episodes.sort((a, b) => (a.episode ?? 0) - (b.episode ?? 0))]);
}

/** Names from an artwork/files value that may be a list, an object or absent. */
function names(value) {
  if (Array.isArray(value)) {
    return value.map((v) => (typeof v === 'string' ? baseName(v) : v.type || v.artwork_type || baseName(v.path) || ''))
      .filter(Boolean);
  }
  if (value && typeof value === 'object') return Object.keys(value);
  return [];
}

/** The modal detail panel; one entity (and one editor) at a time. */
export class DetailPanel {
  /** dialog: the <dialog>; onChanged(kind, id) lets the tables refresh a row. */
  constructor(dialog, onChanged) {
    this.dialog = dialog;
    this.heading = dialog.querySelector('[data-role="heading"]');
    this.body = dialog.querySelector('[data-role="body"]');
    this.onChanged = onChanged;
    this.current = null; // {kind, id, parent}
    this.entity = null;
    this.dirty = new Map();
    this.refreshTimer = null;
    dialog.querySelector('[data-role="close"]').addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      this.stopRefreshTimer();
      this.current = null;
      this.entity = null;
      this.dirty.clear();
    });
  }

  /** Open one entity; parent is the series id when opening an episode from its series. */
  async open(kind, id, parent = null) {
    this.current = { kind, id, parent };
    this.dirty.clear();
    this.entity = null;
    this.heading.textContent = 'Loading…';
    replaceChildren(this.body);
    if (!this.dialog.open) this.dialog.showModal();
    await this.reload();
  }

  /** Re-fetch the open entity and redraw (keeping unsaved edits). */
  async reload() {
    const current = this.current;
    if (!current) return;
    try {
      const entity = await api('GET', `/api/${KINDS[current.kind].path}/${current.id}`);
      if (this.current !== current) return;
      this.entity = entity;
      this.render();
    } catch (err) {
      reportError(`Could not load ${current.kind} ${current.id}`, err);
      if (!this.entity) this.dialog.close();
    }
  }

  /** A *:updated frame: reload when it is about the open entity (or the open episode's series). */
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

  /** True while focus is in one of the panel's inputs. */
  isEditing() {
    const active = document.activeElement;
    return Boolean(active && this.body.contains(active) && active.matches('input, textarea'));
  }

  /** Cancel a deferred refresh. */
  stopRefreshTimer() {
    clearInterval(this.refreshTimer);
    this.refreshTimer = null;
  }

  /** PATCH one field (which the server then locks). */
  async save(field, input) {
    const { kind, id } = this.current;
    let value = input.value.trim();
    if (field.type === 'number') {
      if (value === '') value = null;
      else if (!/^-?\d+$/.test(value)) {
        notify(`${field.label} must be a whole number`);
        return;
      } else value = Number(value);
    } else if (value === '') value = null;
    try {
      await api('PATCH', `/api/${KINDS[kind].path}/${id}/metadata`, { [field.name]: value });
      this.dirty.delete(field.name);
      notify(`${field.label} saved and locked`, 'info');
      this.onChanged(kind, id);
      await this.reload();
    } catch (err) {
      reportError(`Saving ${field.label} failed`, err);
    }
  }

  /** Unlock one field so automation may update it again. */
  async unlock(field) {
    const { kind, id } = this.current;
    try {
      await api('POST', `/api/${KINDS[kind].path}/${id}/lock`, { fields: [field.name], locked: false });
      notify(`${field.label} unlocked`, 'info');
      this.onChanged(kind, id);
      await this.reload();
    } catch (err) {
      reportError(`Unlocking ${field.label} failed`, err);
    }
  }

  /** Queue enrichment of the open movie. */
  async enrich(button) {
    const { kind, id } = this.current;
    button.disabled = true;
    try {
      const reply = await api('POST', `/api/${KINDS[kind].path}/${id}/enrich`);
      notify(reply && reply.job_id !== undefined ? `Enrichment queued (job #${reply.job_id})` : 'Enrichment queued', 'info');
    } catch (err) {
      reportError(`Enrich failed`, err);
    } finally {
      button.disabled = false;
    }
  }

  /** Redraw heading, actions, field editors, facts and (for series) episodes. */
  render() {
    const { kind, id, parent } = this.current;
    const entity = this.entity;
    const spec = KINDS[kind];
    const title = entity.title || baseName(entity.file || entity.path) || `#${id}`;
    this.heading.textContent = kind === 'episode' ? `${episodeCode(entity)} · ${title}`
      : `${title}${entity.year ? ` (${entity.year})` : ''}`;
    const actions = [];
    if (parent !== null) {
      actions.push(el('button', {
        type: 'button', 'data-testid': 'back-to-series', text: '← Back to series',
        onclick: () => this.open('series', parent),
      }));
    }
    if (spec.enrich) {
      const button = el('button', { type: 'button', 'data-testid': 'enrich', text: 'Enrich' });
      button.addEventListener('click', () => this.enrich(button));
      actions.push(button);
    }
    const locked = new Set(Array.isArray(entity.locked_fields) ? entity.locked_fields : []);
    const editors = spec.fields.map((field) => this.fieldEditor(field, entity, locked.has(field.name)));
    const parts = [
      actions.length ? el('div', { class: 'toolbar' }, actions) : null,
      el('div', { class: 'detail-grid' },
        spec.poster ? el('img', {
          class: 'detail-poster', alt: `Poster of ${title}`, src: artworkUrl(spec.path, id, 'poster'),
          onerror: (event) => { event.target.hidden = true; },
        }) : null,
        el('div', { class: 'editors' }, editors),
      ),
      this.facts(entity),
      kind === 'series' ? this.episodeList(entity) : null,
    ];
    keepFocus(this.body, () => replaceChildren(this.body, parts));
  }

  /** One labelled input with Save, and when locked a padlock marker and Unlock. */
  fieldEditor(field, entity, isLocked) {
    const inputId = `edit-${field.name}`;
    const saved = entity[field.name];
    const value = this.dirty.has(field.name) ? this.dirty.get(field.name) : (saved ?? '');
    const props = { id: inputId, name: field.name, 'data-testid': inputId, value };
    const input = field.multiline
      ? el('textarea', { ...props, rows: 3 })
      : el('input', {
        type: field.type || 'text', ...props, placeholder: field.placeholder,
        inputmode: field.type === 'number' ? 'numeric' : null,
      });
    input.addEventListener('input', () => this.dirty.set(field.name, input.value));
    const form = el('form', { class: `field${isLocked ? ' locked' : ''}`, 'data-field': field.name },
      el('div', { class: 'field-label' },
        el('label', { for: inputId, text: field.label }),
        isLocked ? el('span', {
          class: 'lock', 'data-testid': `locked-${field.name}`,
          title: `${field.label} is locked: automation will not change it`,
        }, lockIcon(`${field.label} is locked`)) : null,
      ),
      input,
      el('div', { class: 'field-actions' },
        el('button', { type: 'submit', 'data-testid': `save-${field.name}`, 'aria-label': `Save ${field.label}`, text: 'Save' }),
        isLocked ? el('button', {
          type: 'button', 'data-testid': `unlock-${field.name}`, 'aria-label': `Unlock ${field.label}`,
          text: 'Unlock', onclick: () => this.unlock(field),
        }) : null,
      ),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.save(field, input);
    });
    return form;
  }

  /** Read-only facts: identification, ids, NFO, artwork and files. */
  facts(entity) {
    const rows = [
      ['Status', entity.status],
      ['Library', entity.library],
      ['File', entity.file || entity.path],
      ['TMDB', entity.tmdb_id],
      ['IMDb', entity.imdb_id],
      ['TVDB', entity.tvdb_id],
      ['Runtime', entity.runtime ? `${entity.runtime} min` : null],
      ['NFO', entity.nfo_path],
      ['NFO error', entity.nfo_error],
      ['Artwork', names(entity.artwork).join(', ')],
      ['Files written', names(entity.files).join(', ')],
    ].filter(([, value]) => value !== undefined && value !== null && value !== '');
    return el('dl', { class: 'facts' }, rows.map(([label, value]) => [
      el('dt', { text: label }),
      el('dd', { class: label === 'NFO error' ? 'job-error' : '' }, PATH_FACTS.has(label) ? pathText(value) : value),
    ]));
  }

  /** Seasons with their episodes, each episode opening its own editor. */
  episodeList(series) {
    const seasons = seasonsOf(series);
    if (!seasons.length) return el('p', { class: 'muted', text: 'No episodes found yet.' });
    return el('div', { class: 'episodes', 'data-testid': 'episodes' }, seasons.map(([number, episodes]) => [
      el('h3', { text: number === 0 ? 'Specials' : `Season ${number}` }),
      el('ul', {}, episodes.map((episode) => el('li', {},
        el('button', {
          type: 'button', class: 'link', 'data-testid': `episode-${episode.id}`,
          text: `${episodeCode(episode)} ${episode.title || baseName(episode.file)}`,
          onclick: () => this.open('episode', episode.id, series.id),
        }),
        Array.isArray(episode.locked_fields) && episode.locked_fields.length
          ? el('span', { class: 'lock' }, ' ', lockIcon('has locked fields')) : null,
      ))),
    ]));
  }
}
