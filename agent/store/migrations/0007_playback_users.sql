-- 0007: per-user playback captures. Jellyfin (and Plex) keep watched state per user, so one old file can
-- have one capture row per user: `player_user` is the player's user id (NULL for Kodi and for a capture
-- of a live session only) and `played` the user's played flag (Jellyfin's Played; NULL when unknown).
ALTER TABLE playback_state ADD COLUMN player_user TEXT;
ALTER TABLE playback_state ADD COLUMN played INTEGER;
