// Dashboard entry point: API key handling, /ws wiring and the views.

import { api, clearKey, getKey, onUnauthorized, setKey, takeKeyFromUrl } from './api.js';
import { debounce } from './dom.js';
import { DetailPanel } from './editor.js';
import { JobsView, QueueFigures } from './jobs.js';
import { LibrariesView } from './libraries.js';
import { MediaTable } from './media.js';
import { PlayersView } from './players.js';
import { clearStatus, initStatus, reportError } from './status.js';
import { CONNECTED, DISCONNECTED, LiveSocket } from './ws.js';

const $ = (id) => document.getElementById(id);

initStatus($('status'));

const queue = new QueueFigures({ pending: $('queue-pending'), running: $('queue-running'), failed: $('queue-failed') });
const jobs = new JobsView($('jobs-body'), $('jobs-summary'), $('jobs-filter'));
const libraries = new LibrariesView($('libraries-list'), (id) => jobs.get(id));
const players = new PlayersView($('players-body'));
const detail = new DetailPanel($('detail'), (kind, id) => {
  if (kind === 'movie') movies.itemUpdated(id);
  if (kind === 'series') series.itemUpdated(id);
});
const movies = new MediaTable({
  kind: 'movies', prefix: 'movie', poster: true, tbody: $('movies-body'), search: $('movies-search'),
  status: $('movies-status'), prev: $('movies-prev'), next: $('movies-next'), range: $('movies-range'),
  onOpen: (id) => detail.open('movie', id),
});
const series = new MediaTable({
  kind: 'series', prefix: 'series', poster: false, tbody: $('series-body'), search: $('series-search'),
  status: $('series-status'), prev: $('series-prev'), next: $('series-next'), range: $('series-range'),
  onOpen: (id) => detail.open('series', id),
});

const socket = new LiveSocket({
  keyFor: getKey,
  onFrame: handleFrame,
  onState: showConnection,
  onOpen: (isReconnect) => { if (isReconnect) loadAll(); },
  onFailedOpen: checkKey,
});

/** Show the /ws state in the indicator and the stale-data banner. */
function showConnection(state) {
  const indicator = $('connection');
  indicator.textContent = state;
  indicator.dataset.state = state.toLowerCase();
  $('stale-banner').hidden = state === CONNECTED;
  $('reconnect').hidden = state !== DISCONNECTED || !socket.gaveUp;
}

/** Load health (queue figures, version) from the unauthenticated health route. */
async function loadHealth() {
  try {
    const health = await api('GET', '/api/health');
    queue.show(health.queue);
    if (health.version) $('version').textContent = `v${health.version}`;
  } catch (err) {
    reportError(`Could not load health`, err);
  }
}

/** Reload every view (first start, reconnect, resync). */
function loadAll() {
  loadHealth();
  libraries.load();
  jobs.load();
  movies.load();
  series.load();
  players.load();
}

const reloadLibrariesSoon = debounce(() => libraries.load(), 500);

/** Route one server frame to the views. */
function handleFrame(frame) {
  const data = frame.data || {};
  const type = frame.type;
  if (type.startsWith('job:')) {
    jobs.applyFrame(frame);
    if (libraries.applyJobFrame(frame)) reloadLibrariesSoon();
  } else if (type === 'queue:stats') {
    queue.show(data);
  } else if (type === 'scan:progress') {
    libraries.applyProgress(data);
  } else if (type === 'movie:updated') {
    movies.itemUpdated(data.id);
    detail.refreshIf('movie', data.id);
  } else if (type === 'series:updated') {
    series.itemUpdated(data.id);
    detail.refreshIf('series', data.id);
  } else if (type === 'episode:updated') {
    detail.refreshIf('episode', data.id);
    if (data.series_id !== undefined) detail.refreshIf('series', data.series_id);
  } else if (type === 'player:activity') {
    players.applyActivity(data);
  } else if (type === 'resync') {
    loadAll();
  }
}

/** The socket could not open: ask an authenticated route whether the key is the reason. */
async function checkKey() {
  try {
    await api('GET', '/api/jobs?limit=1');
  } catch {
    // A 401 is handled by the unauthorized listener; anything else means the agent is down: keep retrying.
  }
}

/** Show the key form, optionally with a reason. */
function showKeyForm(message) {
  $('apikey-panel').hidden = false;
  $('apikey-message').textContent = message || '';
  $('apikey-message').hidden = !message;
  $('apikey-input').focus();
}

/** Start (or restart) with the known key. */
function start() {
  $('apikey-panel').hidden = true;
  clearStatus();
  loadAll();
  socket.start();
}

onUnauthorized(() => {
  socket.stop();
  showKeyForm('API key rejected. Paste the key printed at first start (also stored in data_dir/api_key).');
});

$('apikey-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const key = $('apikey-input').value.trim();
  if (!key) {
    showKeyForm('Enter an API key.');
    return;
  }
  setKey(key);
  $('apikey-input').value = '';
  socket.stop();
  start();
});

$('change-key').addEventListener('click', () => {
  clearKey();
  socket.stop();
  showKeyForm('');
});

$('reconnect').addEventListener('click', () => socket.start());
window.addEventListener('online', () => { if (getKey() && socket.state !== CONNECTED) socket.start(); });

showConnection(DISCONNECTED);
takeKeyFromUrl();
if (getKey()) start();
else {
  loadHealth();
  showKeyForm('');
}
