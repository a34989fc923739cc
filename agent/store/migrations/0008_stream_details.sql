-- 0008: what ffprobe said about each media file (Kodi's fileinfo/streamdetails), keyed by the file and
-- valid while its signature (size, mtime_ns, inode) is the same: a rescan or a re-enrich of an unchanged
-- file never runs ffprobe again, and a replaced file (an upgrade) is probed afresh. `streamdetails` is
-- JSON ({"video": [...], "audio": [...], "subtitle": [...]}); NULL with `error` when ffprobe could not
-- read the file (a broken or partial download), so the same bytes are not probed again. Rows of files
-- no item holds any more go with cache_gc.
CREATE TABLE media_probes (
    file           TEXT PRIMARY KEY,
    size           INTEGER NOT NULL,
    mtime_ns       INTEGER NOT NULL,
    inode          INTEGER NOT NULL,
    streamdetails  TEXT,
    error          TEXT,
    probed_at      REAL NOT NULL
);
