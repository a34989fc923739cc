// Dashboard entry point: API key handling, /ws wiring, the views and the #/ router.
// Routes: #/library (default), #/activity, #/system, #/movie/ID, #/series/ID, #/episode/ID.

import { api, clearKey, getKey, onUnauthorized, setKey, takeKeyFromUrl } from './api.js';
import { debounce, throttle } from './dom.js';
import { ActivityView, QueueFigures } from './activity.js';
import { ItemPage } from './item.js';
import { LibrariesView } from './libraries.js';
import { LibraryView } from './library.js';
import { clearStatus, initStatus, reportError } from './status.js';
import { AgentsView, HealthView, PlayersView } from './system.js';
import { CONNECTED, DISCONNECTED, LiveSocket } from './ws.js';

const $ = (id) => document.getElementById(id);
const HEALTH_EVERY_MS = 60000; // health checks (disks, players) are re-read this often while the page is open

initStatus($('status'));

const queue = new QueueFigures({ pending: $('queue-pending'), running: $('queue-running'), failed: $('queue-failed') },
  (stats) => {
    const busy = (stats.running || 0) + (stats.pending || 0);
    $('activity-count').hidden = busy === 0 && !stats.failed;
    $('activity-count').textContent = stats.failed ? `${stats.failed} failed` : String(busy);
    $('activity-count').classList.toggle('warn', Boolean(stats.failed));
  });
const activity = new ActivityView($('jobs-body'), $('jobs-summary'), $('jobs-filter'));
const libraries = new LibrariesView($('libraries-list'), (id) => activity.get(id));
const library = new LibraryView({
  boxes: { movies: $('movies-box'), series: $('series-box') },
  totals: { movies: $('movies-total'), series: $('series-total') },
  tabs: { movies: $('kind-movies'), series: $('kind-series') },
  search: $('lib-search'), status: $('lib-status'), locked: $('filter-locked'), artworkError: $('filter-artwork-error'),
  filtersCount: $('filters-count'), grid: $('layout-grid'), table: $('layout-table'),
  prev: $('lib-prev'), next: $('lib-next'), range: $('lib-range'),
}, () => libraries.kinds());
const item = new ItemPage($('detail'), $('match-dialog'), (kind, id) => {
  if (kind === 'movie') library.itemUpdated('movies', id);
  if (kind === 'series') library.itemUpdated('series', id);
});
const players = new PlayersView($('players-body'), () => loadHealth());
const agents = new AgentsView($('agents-body'), $('agents-panel'));
const health = new HealthView($('health'), $('health-strip'), $('health-count'), (name, reply) => {
  players.results.set(name, reply);
  return Promise.all([loadHealth(), players.load()]);
});

const socket = new LiveSocket({
  keyFor: getKey,
  onFrame: handleFrame,
  onState: showConnection,
  onOpen: (isReconnect) => { if (isReconnect) loadAll(); },
  onFailedOpen: checkKey,
});

// --- routing -------------------------------------------------------------------------------------

/** Show the view the address names. */
function route() {
  const hash = window.location.hash.replace(/^#\/?/, '');
  const [name, rawId] = hash.split('/');
  const id = Number(rawId);
  let view = ['library', 'activity', 'system'].includes(name) ? name : 'library';
  if (['movie', 'series', 'episode'].includes(name) && Number.isInteger(id) && id > 0) view = 'item';
  for (const section of document.querySelectorAll('[data-view]')) section.hidden = section.dataset.view !== view;
  for (const tab of document.querySelectorAll('[data-tab]')) {
    const current = tab.dataset.tab === view || (view === 'item' && tab.dataset.tab === 'library');
    if (current) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  if (view === 'item') {
    if (getKey()) item.open(name, id);
    window.scrollTo(0, 0);
  } else {
    item.close();
  }
}

// --- connection and loading ----------------------------------------------------------------------

/** Show the /ws state; the stale banner only once a connection was made and then lost. */
function showConnection(state) {
  const indicator = $('connection');
  indicator.textContent = state;
  indicator.dataset.state = state.toLowerCase();
  $('stale-banner').hidden = state === CONNECTED || !socket.everOpened;
  $('reconnect').hidden = state !== DISCONNECTED || !socket.gaveUp;
}

/** Load health: queue figures, version and warnings (no key needed). */
async function loadHealth() {
  try {
    const reply = await api('GET', '/api/health');
    queue.show(reply.queue);
    if (reply.version) $('version').textContent = `v${reply.version}`;
    health.show(reply);
    item.providerKeyMissing = (reply.warnings || []).some((w) => w.code === 'provider_key_missing');
  } catch (err) {
    reportError('Could not load health', err);
  }
}

/** Reload every view (first start, reconnect, resync). */
async function loadAll() {
  loadHealth();
  activity.load();
  players.load();
  agents.load();
  await libraries.load();
  library.load();
  if (item.current) item.reload();
}

const reloadLibrariesSoon = debounce(() => { libraries.load(); loadHealth(); }, 500);
const reloadHealthSoon = debounce(() => loadHealth(), 2000);
// Items published of items found, while a first run publishes dozens a second: at most once a second.
const reloadPublishedSoon = throttle(() => libraries.load(), 1000);

/** Route one server frame to the views. */
function handleFrame(frame) {
  const data = frame.data || {};
  const type = frame.type;
  if (type.startsWith('job:')) {
    activity.applyFrame(frame);
    if (libraries.applyJobFrame(frame)) reloadLibrariesSoon();
    else if (type === 'job:completed' && data.type === 'publish') reloadPublishedSoon();
    if (type === 'job:failed' || type === 'job:completed') reloadHealthSoon();
  } else if (type === 'queue:stats') {
    queue.show(data);
  } else if (type === 'scan:progress') {
    libraries.applyProgress(data);
  } else if (type === 'movie:updated') {
    library.itemUpdated('movies', data.id);
    item.refreshIf('movie', data.id);
  } else if (type === 'series:updated') {
    library.itemUpdated('series', data.id);
    item.refreshIf('series', data.id);
  } else if (type === 'episode:updated') {
    item.refreshIf('episode', data.id);
    if (data.series_id !== undefined) item.refreshIf('series', data.series_id);
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
  route();
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

$('health-refresh').addEventListener('click', () => { loadHealth(); players.load(); agents.load(); });
$('reconnect').addEventListener('click', () => socket.start());
window.addEventListener('online', () => { if (getKey() && socket.state !== CONNECTED) socket.start(); });
window.addEventListener('hashchange', route);
setInterval(() => { if (getKey() && !document.hidden) loadHealth(); }, HEALTH_EVERY_MS);

showConnection(DISCONNECTED);
takeKeyFromUrl();
if (getKey()) start();
else {
  route();
  loadHealth();
  showKeyForm('');
}
