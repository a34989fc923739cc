// Players table: connection state and what is playing, live from player:activity.

import { api } from './api.js';
import { baseName, cell, el, formatDuration, keepFocus, replaceChildren } from './dom.js';
import { reportError } from './status.js';

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

/** The players table. */
export class PlayersView {
  /** tbody: the table body to fill. */
  constructor(tbody) {
    this.tbody = tbody;
    this.players = [];
  }

  /** Fetch the configured players. */
  async load() {
    try {
      const reply = await api('GET', '/api/players');
      this.players = reply.items || [];
      this.render();
    } catch (err) {
      reportError(`Could not load players`, err);
    }
  }

  /** Apply a player:activity frame {player, state, file?, position?, total?}. */
  applyActivity(data) {
    if (!data || !data.player) return;
    const player = this.players.find((p) => p.name === data.player);
    if (!player) return;
    player.now_playing = data.state === 'idle' ? null : { ...data };
    if (!player.state || player.state === 'unreachable') player.state = 'connected';
    this.render();
  }

  /** Redraw the table body. */
  render() {
    const rows = this.players.map((player) => el('tr', { 'data-testid': `player-${player.name}` },
      cell('Name', { text: player.name }),
      cell('Type', { text: player.type || '—' }),
      cell('Group', { text: player.group || '—' }),
      cell('State', {}, el('span', { class: `badge ${player.state || 'unknown'}`, text: player.state || 'unknown' })),
      cell('Now playing', { 'data-testid': `player-activity-${player.name}`, text: describeActivity(player.now_playing) }),
    ));
    if (!rows.length) rows.push(el('tr', { class: 'empty' }, el('td', { colspan: 5, text: 'No players configured.' })));
    keepFocus(this.tbody, () => replaceChildren(this.tbody, rows));
  }
}
