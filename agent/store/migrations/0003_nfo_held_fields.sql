-- 0003: fields held from an NFO another tool wrote. With `nfo.existing: keep` the values such an NFO
-- carried when the agent first saw it are the item's starting data: providers fill only the fields it
-- lacks. A JSON list of field names, distinct from `locked_fields` (a user's locks); the per-item
-- refresh action (POST /api/{movies,series,episodes}/{id}/refresh) empties it.
ALTER TABLE movies ADD COLUMN nfo_held_fields TEXT NOT NULL DEFAULT '[]';
ALTER TABLE series ADD COLUMN nfo_held_fields TEXT NOT NULL DEFAULT '[]';
ALTER TABLE episodes ADD COLUMN nfo_held_fields TEXT NOT NULL DEFAULT '[]';
