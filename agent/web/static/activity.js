// Queue figures and the activity table: what started work (a scan, a webhook, a click), named by title,
// with its follow-ups summarised and listed on demand; patched live by job:* frames.

import { api, query } from './api.js';
import { cell, el, formatTime, keepFocus, replaceChildren, throttle } from './dom.js';
import { notify, reportError } from './status.js';

const LIMIT = 40;
const FRAME_STATUS = {
  'job:queued': 'pending',
  'job:started': 'running',
  'job:progress': 'running',
  'job:completed': 'completed',
  'job:failed': 'failed',
  'job:cancelled': 'cancelled',
};
const VERBS = {
  scan: 'Scan', enrich: 'Enrich', publish: 'Publish', notify_players: 'Tell players', webhook: 'Webhook',
  playback_capture: 'Save playback', playback_restore: 'Restore playback', cleanup: 'Clean up', cache_gc: 'Cache GC',
};
const ORDER = ['failed', 'running', 'pending', 'completed', 'cancelled'];

/** The three queue counters in the header. */
export class QueueFigures {
  /** nodes: {pending, running, failed} elements; onChange(stats) is told every update. */
  constructor(nodes, onChange = () => {}) {
    this.nodes = nodes;
    this.onChange = onChange;
  }

  /** Show {pending, running, failed}. */
  show(stats) {
    if (!stats) return;
    for (const name of ['pending', 'running', 'failed']) {
      if (typeof stats[name] === 'number') this.nodes[name].textContent = String(stats[name]);
    }
    this.onChange(stats);
  }
}

/** "15 follow-ups: 14 completed, 1 failed". */
function describeFollowups(summary) {
  if (!summary || !summary.total) return '';
  const parts = ORDER.filter((s) => summary.by_status[s]).map((s) => `${summary.by_status[s]} ${s}`);
  const types = Object.entries(summary.by_type || {})
    .map(([type, counts]) => `${Object.values(counts).reduce((a, b) => a + b, 0)} ${VERBS[type] ? VERBS[type].toLowerCase() : type}`);
  return `${summary.total} follow-up${summary.total === 1 ? '' : 's'} (${types.join(', ')}): ${parts.join(', ')}`;
}

/** The subject as a link to the item page, or text. */
function subjectNode(subject) {
  if (!subject) return el('span', { class: 'muted', text: '—' });
  if (['movie', 'series', 'episode'].includes(subject.kind) && subject.id !== undefined) {
    return el('a', { href: `#/${subject.kind}/${subject.id}`, text: subject.label });
  }
  return el('span', { text: subject.label });
}

/** The activity table. */
export class ActivityView {
  /** tbody, summary: elements; filter: the status <select>. */
  constructor(tbody, summary, filter) {
    this.tbody = tbody;
    this.summary = summary;
    this.filter = filter;
    this.jobs = new Map(); // head id -> job
    this.children = new Map(); // head id -> follow-ups, for expanded heads
    this.open = new Set();
    this.total = 0;
    filter.addEventListener('change', () => this.load());
    this.reloadSoon = throttle(() => this.load(), 1000); // a scan's stream of frames: one reload a second
  }

  /** The head job with this id as last seen, or undefined. */
  get(id) {
    return this.jobs.get(id);
  }

  /** Fetch the newest heads (honouring the status filter) and the expanded chains. */
  async load() {
    try {
      const reply = await api('GET', `/api/activity${query({ limit: LIMIT, status: this.filter.value })}`);
      this.jobs = new Map((reply.items || []).map((job) => [job.id, job]));
      this.total = typeof reply.total === 'number' ? reply.total : this.jobs.size;
      for (const id of [...this.open]) {
        if (this.jobs.has(id)) await this.loadChain(id);
        else this.open.delete(id);
      }
      this.render();
    } catch (err) {
      reportError('Could not load activity', err);
    }
  }

  /** Fetch one chain's follow-ups. */
  async loadChain(id) {
    const reply = await api('GET', `/api/activity/${id}`);
    this.children.set(id, reply.followups || []);
  }

  /** Apply one job:* frame: patch a head it names, and reload once things settle for anything new. */
  applyFrame(frame) {
    const data = frame.data || {};
    const id = data.job_id;
    if (id === undefined || id === null) return;
    const job = this.jobs.get(id);
    if (job) {
      const next = { ...job, status: FRAME_STATUS[frame.type] || job.status };
      if (frame.type === 'job:progress') {
        if (typeof data.progress === 'number') next.progress = data.progress;
        if (data.message !== undefined) next.message = data.message;
      } else if (frame.type === 'job:completed') {
        next.progress = 1;
        next.message = null;
      } else if (frame.type === 'job:failed') {
        next.error = data.error || job.error;
        if (data.will_retry) next.status = 'pending';
      }
      this.jobs.set(id, next);
      this.render();
    }
    if (!job || ['job:failed', 'job:completed', 'job:cancelled'].includes(frame.type)) this.reloadSoon();
  }

  /** Put a failed or cancelled job back to pending. */
  async retry(job) {
    try {
      await api('POST', `/api/jobs/${job.id}/retry`);
      notify(`Queued again: ${this.describe(job)}`, 'info');
      this.reloadSoon();
    } catch (err) {
      reportError(`Retry of job #${job.id} failed`, err);
    }
  }

  /** Cancel a pending job. */
  async cancel(job) {
    try {
      await api('DELETE', `/api/jobs/${job.id}`);
      notify(`Cancelled: ${this.describe(job)}`, 'info');
      this.reloadSoon();
    } catch (err) {
      reportError(`Cancel of job #${job.id} failed`, err);
    }
  }

  /** Show or hide a chain's follow-ups. */
  async toggle(job) {
    if (this.open.has(job.id)) {
      this.open.delete(job.id);
    } else {
      this.open.add(job.id);
      try {
        await this.loadChain(job.id);
      } catch (err) {
        reportError(`Could not load the follow-ups of job #${job.id}`, err);
      }
    }
    this.render();
  }

  /** "Scan · Movies". */
  describe(job) {
    const verb = VERBS[job.type] || job.type;
    return job.subject ? `${verb} · ${job.subject.label}` : verb;
  }

  /** Redraw the table. */
  render() {
    const jobs = [...this.jobs.values()].sort((a, b) => b.id - a.id);
    const rows = [];
    for (const job of jobs) {
      rows.push(this.row(job, false));
      if (this.open.has(job.id)) {
        const children = this.children.get(job.id) || [];
        for (const child of children) rows.push(this.row(child, true));
      }
    }
    if (!rows.length) {
      const text = this.filter.value ? `No ${this.filter.value} jobs.`
        : 'Nothing has happened yet: press Scan on a library, or send a webhook from Radarr or Sonarr.';
      rows.push(el('tr', { class: 'empty' }, el('td', { colspan: 6, text })));
    }
    keepFocus(this.tbody, () => replaceChildren(this.tbody, rows));
    this.summary.textContent = jobs.length < this.total ? `Newest ${jobs.length} of ${this.total}` : '';
  }

  /** One row: a head (with its follow-up summary) or a follow-up (indented). */
  row(job, isChild) {
    const status = job.status || 'pending';
    const progress = typeof job.progress === 'number' ? Math.max(0, Math.min(1, job.progress)) : 0;
    const actions = [];
    if (status === 'failed' || status === 'cancelled') {
      actions.push(el('button', {
        type: 'button', class: 'small', 'data-testid': `retry-${job.id}`, 'aria-label': `Retry job ${job.id}`,
        text: 'Retry', onclick: () => this.retry(job),
      }));
    }
    if (status === 'pending') {
      actions.push(el('button', {
        type: 'button', class: 'small ghost', 'data-testid': `cancel-${job.id}`, 'aria-label': `Cancel job ${job.id}`,
        text: 'Cancel', onclick: () => this.cancel(job),
      }));
    }
    const detail = [];
    if (status === 'running') {
      detail.push(el('progress', { max: 1, value: progress, 'aria-label': `Job ${job.id} progress` }));
    }
    if (status === 'running' && job.message) detail.push(el('span', { class: 'job-message', text: job.message }));
    if (job.error && status !== 'completed') detail.push(el('span', { class: 'job-error', title: job.error, text: job.error }));
    if (!isChild && job.followups && job.followups.total) {
      const open = this.open.has(job.id);
      detail.push(el('button', {
        type: 'button', class: 'link followups', 'data-testid': `followups-${job.id}`, 'aria-expanded': String(open),
        text: `${open ? '▾' : '▸'} ${describeFollowups(job.followups)}`, onclick: () => this.toggle(job),
      }));
    }
    const when = job.completed_at || job.started_at || job.created_at;
    return el('tr', {
      'data-testid': `job-${job.id}`, 'data-status': status, class: isChild ? 'followup' : 'head',
      title: `Job #${job.id}`,
    },
      cell('Type', { text: job.type || '—' }),
      cell('What', { class: 'job-what' }, subjectNode(job.subject)),
      cell('Status', {}, el('span', { class: `badge ${status}`, 'data-testid': `job-status-${job.id}`, text: status })),
      cell('Details', { class: 'job-detail' }, detail),
      cell('When', { class: 'nowrap', text: formatTime(when) }),
      cell('Actions', { class: 'actions' }, actions),
    );
  }
}
