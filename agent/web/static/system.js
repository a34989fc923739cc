// System: health warnings (as Radarr's System > Health) and the players with a Test button each.

import { api } from './api.js';
import { baseName, cell, el, formatDuration, formatTime, keepFocus, replaceChildren } from './dom.js';
import { notify, reportError } from './status.js';

const TITLES = {
  provider_key_missing: 'No metadata provider key',
  library_root_missing: 'Library folder missing',
  library_root_empty: 'Library folder empty',
  player_unreachable: 'Player unreachable',
  ffprobe_missing: 'ffprobe missing',
  disk_low: 'Disk nearly full',
  database_disk_full: 'Database disk full',
  health_check_slow: 'Health check slow',
};

/** "Playing Movie.mkv 0:12:03 / 2:01:00" from a now_playing object or text. */
function describeActivity(activity) {
  if (!activity) return 'Idle';
  if (typeof activity === 'string') return activity;
  const state = activity.state || (activity.file || activity.title ? 'playing' : 'idle');
  if (state === 'idle') return 'Idle';
  const what = activity.title || baseName(activity.file) || '';
  const where = typeof activity.position === 'number'
    ? ` ${formatDuration(activity.position)}${typeof activity.total === 'number' ? ` / ${formatDuration(activity.total)}` : ''}`
    : '';
  return `${state[0].toUpperCase()}${state.slice(1)} ${what}${where}`.trim();
}

/** Ask the agent to call a player now; returns the reply {ok, message, player}. */
export async function testPlayer(name) {
  return api('POST', `/api/players/${encodeURIComponent(name)}/test`);
}

/** The health list and the warning strip above the library. */
export class HealthView {
  /** list: the <ul data-testid="health">; strip: the box above the library; count: the tab badge;
   *  onTested(name, reply): called after a Test so the players table shows it too. */
  constructor(list, strip, count, onTested) {
    this.list = list;
    this.strip = strip;
    this.count = count;
    this.onTested = onTested;
    this.warnings = [];
    this.loaded = false;
    this.results = new Map(); // player name -> {ok, message}
  }

  /** Show the warnings of a /api/health reply. */
  show(health) {
    this.warnings = Array.isArray(health.warnings) ? health.warnings : [];
    this.loaded = true;
    this.render();
  }

  /** Run a player's Test from a warning. */
  async test(name, button) {
    button.disabled = true;
    try {
      const reply = await testPlayer(name);
      this.results.set(name, reply);
      notify(`${name}: ${reply.message}`, reply.ok ? 'info' : 'error');
      await this.onTested(name, reply);
    } catch (err) {
      reportError(`Test of ${name} failed`, err);
    } finally {
      button.disabled = false;
    }
  }

  /** Redraw list, strip and badge. */
  render() {
    const items = this.warnings.map((warning) => {
      const isPlayer = warning.code === 'player_unreachable' && warning.subject;
      const result = isPlayer ? this.results.get(warning.subject) : null;
      let test = null;
      if (isPlayer) {
        test = el('button', {
          type: 'button', class: 'small', 'data-testid': `health-test-${warning.subject}`, text: 'Test',
          'aria-label': `Test player ${warning.subject}`,
        });
        test.addEventListener('click', () => this.test(warning.subject, test));
      }
      return el('li', { class: 'warning', 'data-testid': `health-${warning.code}`, 'data-subject': warning.subject ?? '' },
        el('span', { class: 'warning-icon', 'aria-hidden': 'true', text: '!' }),
        el('div', { class: 'warning-text' },
          el('strong', { text: `${TITLES[warning.code] || warning.code}${warning.subject ? ` · ${warning.subject}` : ''}` }),
          el('p', { text: warning.message }),
          result ? el('p', { class: result.ok ? 'ok' : 'job-error', text: `Last test: ${result.message}` }) : null),
        test,
      );
    });
    if (!items.length && this.loaded) {
      items.push(el('li', { class: 'ok-line', 'data-testid': 'health-ok', text: 'No issues: every check passed.' }));
    }
    keepFocus(this.list, () => replaceChildren(this.list, items));
    this.count.hidden = this.warnings.length === 0;
    this.count.textContent = String(this.warnings.length);
    this.renderStrip();
  }

  /** The first warning above the library, with a link to the rest. */
  renderStrip() {
    const first = this.warnings[0];
    this.strip.hidden = !first;
    if (!first) return;
    const more = this.warnings.length - 1;
    replaceChildren(this.strip,
      el('span', { class: 'warning-icon', 'aria-hidden': 'true', text: '!' }),
      el('span', { class: 'strip-text', text: first.message }),
      el('a', { href: '#/system', 'data-testid': 'health-strip-more',
        text: more > 0 ? `${more} more in System` : 'System' }));
  }
}

/** The players table with a Test button each. */
export class PlayersView {
  /** tbody: the table body to fill; onTested(): called after a Test (health reloads). */
  constructor(tbody, onTested) {
    this.tbody = tbody;
    this.onTested = onTested;
    this.players = [];
    this.loaded = false;
    this.results = new Map();
  }

  /** Fetch the configured players. */
  async load() {
    try {
      const reply = await api('GET', '/api/players');
      this.players = reply.items || [];
      this.loaded = true;
      this.render();
    } catch (err) {
      reportError('Could not load players', err);
    }
  }

  /** Apply a player:activity frame {player, state, file?, position?, total?}. */
  applyActivity(data) {
    if (!data || !data.player) return;
    const player = this.players.find((p) => p.name === data.player);
    if (!player) return;
    player.now_playing = data.state === 'idle' ? null : { ...data };
    player.state = 'connected';
    player.last_error = null;
    this.render();
  }

  /** Call one player now and show the outcome beside it. */
  async test(player, button) {
    button.disabled = true;
    this.results.set(player.name, { ok: null, message: 'Testing…' });
    this.render();
    try {
      const reply = await testPlayer(player.name);
      this.results.set(player.name, reply);
      if (reply.player) Object.assign(player, reply.player);
      this.render();
      await this.onTested();
    } catch (err) {
      this.results.delete(player.name);
      reportError(`Test of ${player.name} failed`, err);
      this.render();
    } finally {
      button.disabled = false;
    }
  }

  /** Redraw the table body. */
  render() {
    const rows = this.players.map((player) => {
      const state = player.state || 'unknown';
      const button = el('button', {
        type: 'button', class: 'small', 'data-testid': `test-${player.name}`, text: 'Test',
        'aria-label': `Test player ${player.name}`,
      });
      button.addEventListener('click', () => this.test(player, button));
      const result = this.results.get(player.name);
      const stateCell = [el('span', { class: `badge ${state}`, 'data-testid': `player-state-${player.name}`, text: state })];
      // The last error, unless the Test result below says the same.
      if (player.last_error && !(result && result.message === player.last_error)) {
        stateCell.push(el('span', { class: 'job-error', 'data-testid': `player-error-${player.name}`, text: player.last_error }));
      }
      if (player.last_seen_at) stateCell.push(el('span', { class: 'muted small-text', text: `Last answered ${formatTime(player.last_seen_at)}` }));
      if (result) {
        stateCell.push(el('span', {
          class: result.ok === false ? 'job-error' : 'ok', 'data-testid': `player-test-${player.name}`,
          text: result.ok === null ? result.message : `Test ${result.ok ? 'passed' : 'failed'}: ${result.message}`,
        }));
      }
      // Only a player that answers can say what it plays: an unreachable one shows no stale "Idle".
      const playing = state === 'unreachable' ? '—' : describeActivity(player.now_playing);
      return el('tr', { 'data-testid': `player-${player.name}` },
        cell('Name', { text: player.name }),
        cell('Type', { text: player.type || '—' }),
        cell('Group', { text: player.group || '—' }),
        cell('State', { class: 'player-state' }, stateCell),
        cell('Now playing', { 'data-testid': `player-activity-${player.name}`, text: playing }),
        cell('Actions', { class: 'actions' }, button),
      );
    });
    if (!rows.length && this.loaded) {
      rows.push(el('tr', { class: 'empty' }, el('td', {
        colspan: 6, 'data-testid': 'players-empty',
        text: 'No players configured: add one under players: in config/agent.yaml (type: kodi with its JSON-RPC url,'
          + ' or type: jellyfin with an API key) so they rescan after every change.',
      })));
    }
    keepFocus(this.tbody, () => replaceChildren(this.tbody, rows));
  }
}

/** The agents sharing the store (one on SQLite): their libraries, heartbeat and running jobs. */
export class AgentsView {
  /** tbody: the table body to fill; section: the panel, shown only when another agent shares the store. */
  constructor(tbody, section) {
    this.tbody = tbody;
    this.section = section;
    this.agents = [];
  }

  /** Fetch the agents. */
  async load() {
    try {
      const reply = await api('GET', '/api/agents');
      this.agents = reply.items || [];
      this.section.hidden = !reply.shared && this.agents.length <= 1;
      this.render();
    } catch (err) {
      reportError('Could not load agents', err);
    }
  }

  /** Redraw the table body. */
  render() {
    const rows = this.agents.map((agent) => el('tr', { 'data-testid': `agent-${agent.name}` },
      cell('Name', { text: agent.self ? `${agent.name} (this one)` : agent.name }),
      cell('Libraries', { text: (agent.libraries || []).join(', ') || '—' }),
      cell('State', {}, [el('span', {
        class: `badge ${agent.state === 'up' ? 'connected' : 'unreachable'}`, 'data-testid': `agent-state-${agent.name}`,
        text: agent.state,
      })]),
      cell('Last seen', { text: agent.last_seen ? formatTime(agent.last_seen) : '—' }),
      cell('Running', { text: String(agent.running ?? 0) }),
    ));
    keepFocus(this.tbody, () => replaceChildren(this.tbody, rows));
  }
}
