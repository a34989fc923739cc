// The libraries bar above the library: each library's counts, a Scan button and a live scan:progress line.

import { api } from './api.js';
import { el, formatTime, keepFocus, replaceChildren } from './dom.js';
import { reportError } from './status.js';

const SINGULAR = { movies: 'movie', series: 'series', episodes: 'episode' };

/** Counts as "12 series · 80 episodes" ("1 movie", not "1 movies"); the API sends {movies, series, episodes}. */
function describeCounts(library) {
  const counts = library.counts || {};
  const primary = library.kind === 'series' ? ['series', 'episodes'] : ['movies'];
  const parts = Object.entries(counts)
    .filter(([name, value]) => typeof value === 'number' && (value > 0 || primary.includes(name)))
    .map(([name, value]) => `${value} ${value === 1 ? SINGULAR[name] || name : name}`);
  return parts.join(' · ') || 'not scanned yet';
}

/** "412 of 1000 published" while items found still wait for their NFO; "" when every one has it. */
export function describeProgress(library) {
  const progress = library.progress || {};
  const found = typeof progress.found === 'number' ? progress.found : 0;
  const published = typeof progress.published === 'number' ? progress.published : 0;
  if (!found || published >= found) return '';
  return `${published} of ${found} published (${Math.floor((published / found) * 100)}%)`;
}

/** The libraries cards and their scan progress. */
export class LibrariesView {
  /** list: the <ul> to fill; lookupJob(id) returns the job as the jobs table last saw it. */
  constructor(list, lookupJob) {
    this.list = list;
    this.lookupJob = lookupJob;
    this.libraries = [];
    this.progress = new Map(); // library name -> text
    this.scanJobs = new Map(); // job id -> library name
  }

  /** Fetch the configured libraries. */
  async load() {
    try {
      const reply = await api('GET', '/api/libraries');
      this.libraries = reply.items || [];
      this.render();
    } catch (err) {
      reportError(`Could not load libraries`, err);
    }
  }

  /** Enqueue a scan of one library. */
  async scan(library, button) {
    button.disabled = true;
    try {
      const reply = await api('POST', `/api/libraries/${encodeURIComponent(library.name)}/scan`);
      const jobId = reply && reply.job_id;
      this.setProgress(library.name, jobId !== undefined ? `Scan queued (job #${jobId})` : 'Scan queued');
      if (jobId !== undefined) {
        this.scanJobs.set(jobId, library.name);
        // The job may have started or ended before this reply arrived.
        const seen = this.lookupJob(jobId);
        const type = seen && { running: 'job:started', completed: 'job:completed', failed: 'job:failed',
          cancelled: 'job:cancelled' }[seen.status];
        if (type) this.applyJobFrame({ type, data: { job_id: jobId, type: 'scan', error: seen.error } });
      }
    } catch (err) {
      reportError(`Scan of ${library.name} failed`, err);
    } finally {
      button.disabled = false;
    }
  }

  /** Apply a scan:progress frame {library, seen, total?}. */
  applyProgress(data) {
    if (!data || !data.library) return;
    const seen = typeof data.seen === 'number' ? data.seen : 0;
    const text = typeof data.total === 'number' && data.total > 0
      ? `Scanning: ${seen} of ${data.total} (${Math.round((seen / data.total) * 100)}%)`
      : `Scanning: ${seen} seen`;
    this.setProgress(data.library, text);
  }

  /** React to job frames of scans this page started; returns true when a library finished scanning. */
  applyJobFrame(frame) {
    const data = frame.data || {};
    const name = this.scanJobs.get(data.job_id);
    if (name === undefined) return data.type === 'scan' && frame.type === 'job:completed';
    if (frame.type === 'job:started') this.setProgress(name, 'Scanning…');
    if (frame.type === 'job:completed') this.setProgress(name, 'Scan finished');
    if (frame.type === 'job:failed') this.setProgress(name, `Scan failed: ${data.error || 'unknown error'}`);
    if (frame.type === 'job:cancelled') this.setProgress(name, 'Scan cancelled');
    if (['job:completed', 'job:failed', 'job:cancelled'].includes(frame.type) && !data.will_retry) {
      this.scanJobs.delete(data.job_id);
    }
    return frame.type === 'job:completed';
  }

  /** Set the progress line of one library. */
  setProgress(name, text) {
    this.progress.set(name, text);
    const node = this.list.querySelector(`[data-testid="scan-progress-${CSS.escape(name)}"]`);
    if (node) node.textContent = text;
  }

  /** Which kinds of library are configured: {movies: bool, series: bool}. */
  kinds() {
    return {
      movies: this.libraries.some((library) => library.kind === 'movies'),
      series: this.libraries.some((library) => library.kind === 'series'),
    };
  }

  /** Redraw the bar. */
  render() {
    const items = this.libraries.map((library) => {
      const button = el('button', {
        type: 'button',
        class: 'small',
        'data-testid': `scan-${library.name}`,
        'aria-label': `Scan library ${library.name}`,
        text: 'Scan',
      });
      button.addEventListener('click', () => this.scan(library, button));
      return el('li', {
        class: 'library', 'data-testid': `library-${library.name}`,
        title: `${library.path || ''}\nLast scan: ${formatTime(library.last_scan_at)}`,
      },
        el('span', { class: 'library-name', text: library.name }),
        el('span', { class: 'muted library-counts', text: describeCounts(library) }),
        el('span', {
          class: 'library-published', 'data-testid': `library-published-${library.name}`,
          title: 'Items with an NFO the agent wrote, of the items found', text: describeProgress(library),
        }),
        button,
        el('span', {
          class: 'scan-progress',
          'data-testid': `scan-progress-${library.name}`,
          'aria-live': 'polite',
          text: this.progress.get(library.name) || '',
        }),
      );
    });
    if (!items.length) {
      items.push(el('li', { class: 'empty', 'data-testid': 'libraries-empty',
        text: 'No libraries configured: add one under libraries: in config/agent.yaml (name, kind: movies or series, path) and restart the agent.' }));
    }
    keepFocus(this.list, () => replaceChildren(this.list, items));
  }
}
