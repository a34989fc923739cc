// Queue figures and the jobs table, loaded from the API and patched by job:* frames.

import { api, query } from './api.js';
import { cell, debounce, el, formatTime, keepFocus, replaceChildren } from './dom.js';
import { notify, reportError } from './status.js';

const LIMIT = 50;
const FRAME_STATUS = {
  'job:queued': 'pending',
  'job:started': 'running',
  'job:progress': 'running',
  'job:completed': 'completed',
  'job:failed': 'failed',
  'job:cancelled': 'cancelled',
};

/** The three queue counters in the header. */
export class QueueFigures {
  /** nodes: {pending, running, failed} elements. */
  constructor(nodes) {
    this.nodes = nodes;
  }

  /** Show {pending, running, failed}. */
  show(stats) {
    if (!stats) return;
    for (const name of ['pending', 'running', 'failed']) {
      if (typeof stats[name] === 'number') this.nodes[name].textContent = String(stats[name]);
    }
  }
}

/** The jobs table: newest first, live status, progress, retry and cancel. */
export class JobsView {
  /** root: the section holding the table; filter: the status <select>. */
  constructor(tbody, summary, filter) {
    this.tbody = tbody;
    this.summary = summary;
    this.filter = filter;
    this.jobs = new Map();
    this.total = 0;
    filter.addEventListener('change', () => this.load());
    // Frames carry only id, type and progress: fetch the full rows (attempts, errors) once things settle.
    this.reloadSoon = debounce(() => this.load(), 1000);
  }

  /** The job with this id as last seen, or undefined. */
  get(id) {
    return this.jobs.get(id);
  }

  /** Fetch the newest jobs (honouring the status filter). */
  async load() {
    try {
      const reply = await api('GET', `/api/jobs${query({ limit: LIMIT, status: this.filter.value })}`);
      this.jobs = new Map((reply.items || []).map((job) => [job.id, job]));
      this.total = typeof reply.total === 'number' ? reply.total : this.jobs.size;
      this.render();
    } catch (err) {
      reportError(`Could not load jobs`, err);
    }
  }

  /** Apply one job:* frame to the table. */
  applyFrame(frame) {
    const data = frame.data || {};
    const id = data.job_id;
    if (id === undefined || id === null) return;
    const known = this.jobs.has(id);
    let job = this.jobs.get(id) || { id, progress: 0 };
    if (!known && frame.type === 'job:queued') job.created_at = frame.timestamp;
    job = { ...job, type: data.type || job.type, status: FRAME_STATUS[frame.type] || job.status };
    if (frame.type === 'job:progress') {
      if (typeof data.progress === 'number') job.progress = data.progress;
      if (data.message !== undefined) job.message = data.message;
    } else if (frame.type === 'job:started') {
      job.started_at = frame.timestamp;
      job.error = null;
    } else if (frame.type === 'job:completed') {
      job.progress = 1;
      job.completed_at = frame.timestamp;
    } else if (frame.type === 'job:failed') {
      job.error = data.error || job.error;
      if (data.will_retry) job.status = 'pending';
    }
    if (this.filter.value && job.status !== this.filter.value) {
      if (this.jobs.delete(id)) this.total = Math.max(0, this.total - 1);
    } else {
      if (!known) this.total += 1;
      this.jobs.set(id, job);
    }
    if (!known || frame.type === 'job:failed' || frame.type === 'job:completed') this.reloadSoon();
    this.render();
  }

  /** Put a failed or cancelled job back to pending. */
  async retry(job) {
    try {
      await api('POST', `/api/jobs/${job.id}/retry`);
      notify(`Job #${job.id} queued again`, 'info');
      this.patch(job.id, { status: 'pending', error: null, progress: 0 });
    } catch (err) {
      reportError(`Retry of job #${job.id} failed`, err);
    }
  }

  /** Cancel a pending job. */
  async cancel(job) {
    try {
      await api('DELETE', `/api/jobs/${job.id}`);
      notify(`Job #${job.id} cancelled`, 'info');
      this.patch(job.id, { status: 'cancelled' });
    } catch (err) {
      reportError(`Cancel of job #${job.id} failed`, err);
    }
  }

  /** Merge fields into one job and redraw. */
  patch(id, fields) {
    const job = this.jobs.get(id);
    if (!job) return;
    this.jobs.set(id, { ...job, ...fields });
    this.render();
  }

  /** Redraw the table body from this.jobs (newest first, at most LIMIT rows). */
  render() {
    const jobs = [...this.jobs.values()].sort((a, b) => b.id - a.id).slice(0, LIMIT);
    this.jobs = new Map(jobs.map((job) => [job.id, job]));
    const rows = jobs.map((job) => this.row(job));
    if (!rows.length) {
      rows.push(el('tr', { class: 'empty' }, el('td', { colspan: 7, text: 'No jobs.' })));
    }
    keepFocus(this.tbody, () => replaceChildren(this.tbody, rows));
    this.summary.textContent = `Showing ${jobs.length} of ${Math.max(this.total, jobs.length)}`;
  }

  /** One table row for a job. */
  row(job) {
    const status = job.status || 'pending';
    const progress = typeof job.progress === 'number' ? Math.max(0, Math.min(1, job.progress)) : 0;
    const actions = [];
    if (status === 'failed' || status === 'cancelled') {
      actions.push(el('button', {
        type: 'button', 'data-testid': `retry-${job.id}`, 'aria-label': `Retry job ${job.id}`,
        text: 'Retry', onclick: () => this.retry(job),
      }));
    }
    if (status === 'pending') {
      actions.push(el('button', {
        type: 'button', 'data-testid': `cancel-${job.id}`, 'aria-label': `Cancel job ${job.id}`,
        text: 'Cancel', onclick: () => this.cancel(job),
      }));
    }
    const attempts = job.attempts === undefined ? '—'
      : `${job.attempts}${typeof job.max_retries === 'number' ? ` of ${job.max_retries + 1}` : ''}`;
    const detail = [];
    if (status === 'running' || (progress > 0 && status !== 'completed')) {
      detail.push(el('progress', { max: 1, value: progress, 'aria-label': `Job ${job.id} progress` }));
    }
    if (job.message) detail.push(el('span', { class: 'job-message', text: job.message }));
    if (job.error) detail.push(el('span', { class: 'job-error', title: job.error, text: job.error }));
    return el('tr', { 'data-testid': `job-${job.id}`, 'data-status': status },
      cell('ID', { text: `#${job.id}` }),
      cell('Type', { text: job.type || '—' }),
      cell('Status', {}, el('span', { class: `badge ${status}`, 'data-testid': `job-status-${job.id}`, text: status })),
      cell('Progress', { class: 'job-detail' }, detail),
      cell('Attempts', { text: attempts }),
      cell('Created', { text: formatTime(job.created_at) }),
      cell('Actions', { class: 'actions' }, actions),
    );
  }
}
