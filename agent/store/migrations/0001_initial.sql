-- 0001: the initial schema (DESIGN section 9). Times are epoch seconds (REAL).
-- JSON columns hold TEXT produced by json.dumps.

CREATE TABLE libraries (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('movies', 'series')),
    path          TEXT NOT NULL,
    last_scan_at  REAL,
    last_scan_job_id INTEGER,
    created_at    REAL NOT NULL
);

-- One row per movie. `path` is the movie's folder, `file` the main video (absolute).
-- `details` holds list-like fields (genres, actors, ratings, set, ...) as JSON.
-- `locked_fields` is a JSON list of field names and artwork types ("art:poster").
CREATE TABLE movies (
    id              INTEGER PRIMARY KEY,
    library_id      INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
    path            TEXT NOT NULL,
    file            TEXT NOT NULL UNIQUE,
    title           TEXT,
    original_title  TEXT,
    sort_title      TEXT,
    year            INTEGER,
    premiered       TEXT,
    plot            TEXT,
    outline         TEXT,
    tagline         TEXT,
    runtime         INTEGER,
    mpaa            TEXT,
    tmdb_id         INTEGER,
    imdb_id         TEXT,
    tvdb_id         INTEGER,
    status          TEXT NOT NULL DEFAULT 'unidentified'
                    CHECK (status IN ('unidentified', 'identified', 'enriched')),
    details         TEXT NOT NULL DEFAULT '{}',
    locked_fields   TEXT NOT NULL DEFAULT '[]',
    artwork_found   TEXT NOT NULL DEFAULT '{}',
    nfo_path        TEXT,
    nfo_error       TEXT,
    nfo_hash        TEXT,
    file_size       INTEGER,
    file_hash       TEXT,
    missing_since   REAL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX ix_movies_library ON movies(library_id);
CREATE INDEX ix_movies_tmdb ON movies(tmdb_id);
CREATE INDEX ix_movies_imdb ON movies(imdb_id);
CREATE INDEX ix_movies_path ON movies(path);

CREATE TABLE series (
    id              INTEGER PRIMARY KEY,
    library_id      INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
    path            TEXT NOT NULL UNIQUE,
    title           TEXT,
    original_title  TEXT,
    sort_title      TEXT,
    year            INTEGER,
    premiered       TEXT,
    plot            TEXT,
    outline         TEXT,
    tagline         TEXT,
    runtime         INTEGER,
    mpaa            TEXT,
    tmdb_id         INTEGER,
    imdb_id         TEXT,
    tvdb_id         INTEGER,
    status          TEXT NOT NULL DEFAULT 'unidentified'
                    CHECK (status IN ('unidentified', 'identified', 'enriched')),
    details         TEXT NOT NULL DEFAULT '{}',
    locked_fields   TEXT NOT NULL DEFAULT '[]',
    artwork_found   TEXT NOT NULL DEFAULT '{}',
    nfo_path        TEXT,
    nfo_error       TEXT,
    nfo_hash        TEXT,
    missing_since   REAL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX ix_series_library ON series(library_id);
CREATE INDEX ix_series_tvdb ON series(tvdb_id);
CREATE INDEX ix_series_tmdb ON series(tmdb_id);

CREATE TABLE seasons (
    id            INTEGER PRIMARY KEY,
    series_id     INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
    season        INTEGER NOT NULL,
    path          TEXT,
    title         TEXT,
    artwork_found TEXT NOT NULL DEFAULT '{}',
    UNIQUE (series_id, season)
);

-- One row per episode; a multi-episode file has one row per episode with the same `file`.
CREATE TABLE episodes (
    id              INTEGER PRIMARY KEY,
    series_id       INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
    season_id       INTEGER REFERENCES seasons(id) ON DELETE SET NULL,
    season          INTEGER,
    episode         INTEGER,
    episode_end     INTEGER,
    aired           TEXT,
    file            TEXT NOT NULL,
    title           TEXT,
    original_title  TEXT,
    sort_title      TEXT,
    year            INTEGER,
    premiered       TEXT,
    plot            TEXT,
    outline         TEXT,
    tagline         TEXT,
    runtime         INTEGER,
    mpaa            TEXT,
    tmdb_id         INTEGER,
    imdb_id         TEXT,
    tvdb_id         INTEGER,
    status          TEXT NOT NULL DEFAULT 'unidentified'
                    CHECK (status IN ('unidentified', 'identified', 'enriched')),
    details         TEXT NOT NULL DEFAULT '{}',
    locked_fields   TEXT NOT NULL DEFAULT '[]',
    artwork_found   TEXT NOT NULL DEFAULT '{}',
    nfo_path        TEXT,
    nfo_error       TEXT,
    nfo_hash        TEXT,
    file_size       INTEGER,
    missing_since   REAL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    UNIQUE (file, season, episode)
);
CREATE INDEX ix_episodes_series ON episodes(series_id, season, episode);
CREATE INDEX ix_episodes_file ON episodes(file);

-- Incremental scans: a folder whose signature (names, sizes, mtimes) is unchanged is skipped.
CREATE TABLE folder_signatures (
    path        TEXT PRIMARY KEY,
    library_id  INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
    signature   TEXT NOT NULL,
    scanned_at  REAL NOT NULL
);

CREATE TABLE cache_assets (
    sha256        TEXT PRIMARY KEY,
    ext           TEXT NOT NULL,
    size          INTEGER NOT NULL,
    mime          TEXT NOT NULL,
    width         INTEGER,
    height        INTEGER,
    source_url    TEXT,
    created_at    REAL NOT NULL,
    unreferenced_since REAL,
    quarantined   INTEGER NOT NULL DEFAULT 0
);

-- An asset used by an entity as one artwork type; `library_path` is the file written beside media.
CREATE TABLE asset_references (
    id            INTEGER PRIMARY KEY,
    sha256        TEXT NOT NULL REFERENCES cache_assets(sha256),
    entity_type   TEXT NOT NULL CHECK (entity_type IN ('movie', 'series', 'season', 'episode')),
    entity_id     INTEGER NOT NULL,
    art_type      TEXT NOT NULL,
    position      INTEGER NOT NULL DEFAULT 0,
    source        TEXT NOT NULL DEFAULT 'provider',
    library_path  TEXT,
    created_at    REAL NOT NULL,
    UNIQUE (entity_type, entity_id, art_type, position)
);
CREATE INDEX ix_asset_refs_sha ON asset_references(sha256);

-- Every file the agent wrote beside media, with the hash of what it wrote.
CREATE TABLE published_files (
    path          TEXT PRIMARY KEY,
    entity_type   TEXT NOT NULL,
    entity_id     INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    written_at    REAL NOT NULL
);
CREATE INDEX ix_published_entity ON published_files(entity_type, entity_id);

-- Provider answers with a TTL, so a rescan does not refetch.
CREATE TABLE provider_cache (
    provider    TEXT NOT NULL,
    key         TEXT NOT NULL,
    fetched_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (provider, key)
);

CREATE TABLE job_queue (
    id            INTEGER PRIMARY KEY,
    type          TEXT NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 5,
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    payload       TEXT NOT NULL DEFAULT '{}',
    result        TEXT,
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_retries   INTEGER NOT NULL DEFAULT 3,
    run_after     REAL NOT NULL DEFAULT 0,
    dedupe_key    TEXT,
    lock_key      TEXT,
    progress      REAL NOT NULL DEFAULT 0,
    message       TEXT,
    worker        TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    started_at    REAL,
    completed_at  REAL,
    updated_at    REAL NOT NULL
);
-- The claim orders by (priority, id) among pending jobs: this index matches it exactly.
CREATE INDEX ix_job_claim ON job_queue(priority, id) WHERE status = 'pending';
CREATE INDEX ix_job_status ON job_queue(status, id);
CREATE INDEX ix_job_type ON job_queue(type, id);
-- Dedupe is enforced by the database, not only in Python.
CREATE UNIQUE INDEX ux_job_dedupe ON job_queue(dedupe_key) WHERE dedupe_key IS NOT NULL AND status = 'pending';
CREATE INDEX ix_job_lock ON job_queue(lock_key) WHERE status = 'running';

CREATE TABLE job_dependencies (
    job_id      INTEGER NOT NULL REFERENCES job_queue(id) ON DELETE CASCADE,
    depends_on  INTEGER NOT NULL REFERENCES job_queue(id) ON DELETE CASCADE,
    PRIMARY KEY (job_id, depends_on)
);
CREATE INDEX ix_job_deps_on ON job_dependencies(depends_on);

CREATE TABLE webhook_events (
    id            INTEGER PRIMARY KEY,
    source        TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    payload       TEXT NOT NULL,
    received_at   REAL NOT NULL,
    job_ids       TEXT NOT NULL DEFAULT '[]',
    ignored       TEXT
);
CREATE INDEX ix_webhook_events_time ON webhook_events(received_at);

CREATE TABLE media_player_groups (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE
);

CREATE TABLE media_players (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL CHECK (type IN ('kodi', 'jellyfin')),
    group_id      INTEGER REFERENCES media_player_groups(id) ON DELETE SET NULL,
    position      INTEGER NOT NULL DEFAULT 0,
    url           TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'unknown',
    last_seen_at  REAL,
    last_error    TEXT,
    now_playing   TEXT
);

-- Mappings from config, mirrored here so jobs and the API can show them.
CREATE TABLE path_mappings (
    id          INTEGER PRIMARY KEY,
    owner_kind  TEXT NOT NULL CHECK (owner_kind IN ('source', 'player')),
    owner_name  TEXT NOT NULL,
    position    INTEGER NOT NULL,
    remote      TEXT NOT NULL,
    local       TEXT NOT NULL,
    UNIQUE (owner_kind, owner_name, position)
);

-- Playback captured before an upgrade replaces a file, restored after the new one is scanned.
CREATE TABLE playback_state (
    id            INTEGER PRIMARY KEY,
    player        TEXT NOT NULL,
    entity_type   TEXT NOT NULL,
    entity_id     INTEGER,
    media_key     TEXT,
    old_file      TEXT NOT NULL,
    new_file      TEXT,
    player_item_id INTEGER,
    position      REAL,
    total         REAL,
    playcount     INTEGER,
    lastplayed    TEXT,
    was_playing   INTEGER NOT NULL DEFAULT 0,
    captured_at   REAL NOT NULL,
    expires_at    REAL NOT NULL,
    restored_at   REAL,
    restore_error TEXT
);
CREATE INDEX ix_playback_open ON playback_state(media_key) WHERE restored_at IS NULL;

CREATE TABLE meta (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);
