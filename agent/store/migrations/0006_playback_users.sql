-- 0006: per-user playback captures, and Plex as a player type. Jellyfin (and Plex) keep watched state per user, so one old file can
-- have one capture row per user: `player_user` is the player's user id (NULL for Kodi and for a capture
-- of a live session only) and `played` the user's played flag (Jellyfin's Played; NULL when unknown).
ALTER TABLE playback_state ADD COLUMN player_user TEXT;
ALTER TABLE playback_state ADD COLUMN played INTEGER;

-- Plex joins as a player type: SQLite cannot change a CHECK, so media_players is rebuilt with its rows
-- (no table references it; it mirrors the config and keeps connection state).
CREATE TABLE media_players_new (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL CHECK (type IN ('kodi', 'jellyfin', 'plex')),
    group_id      INTEGER REFERENCES media_player_groups(id) ON DELETE SET NULL,
    position      INTEGER NOT NULL DEFAULT 0,
    url           TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'unknown',
    last_seen_at  REAL,
    last_error    TEXT,
    now_playing   TEXT
);
INSERT INTO media_players_new (id, name, type, group_id, position, url, state, last_seen_at, last_error,
                               now_playing)
    SELECT id, name, type, group_id, position, url, state, last_seen_at, last_error, now_playing
    FROM media_players;
DROP TABLE media_players;
ALTER TABLE media_players_new RENAME TO media_players;
