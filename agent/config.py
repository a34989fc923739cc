"""Load, expand and validate the YAML config into frozen dataclasses; errors name the key and line."""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from agent.config_checks import check_config, mask_url
from agent.config_model import (
    ART_TYPES,
    CENTURY_DAYS,
    DAY,
    JOB_TYPES,
    LOG_LEVELS,
    SOURCES,
    AgentConfig,
    ArtworkConfig,
    Config,
    FanartConfig,
    JobsConfig,
    LibraryConfig,
    NfoConfig,
    PathMappingConfig,
    PlaybackConfig,
    PlayerConfig,
    ProbeConfig,
    ProvidersConfig,
    PublishConfig,
    ServerConfig,
    SourceConfig,
    StoreConfig,
    TmdbConfig,
    WatcherConfig,
)
from agent.errors import ConfigError
from agent.paths import validate_mapping
from agent.yamlreader import Reader, compose_document, fields_of, in_file_order, read_document, shown

T = TypeVar("T")


def _path(base: Path, text: str) -> Path:
    """Resolve a path relative to the config file's folder."""
    p = Path(os.path.expanduser(text))
    return (p if p.is_absolute() else base / p).resolve()


def _path_key(r: Reader, key: str, base: Path, default: str | None = None) -> Path | None:
    """A path value resolved against the config's folder; one the OS cannot use is noted (None)."""
    text = r.get(key, str, default) if default is not None else r.get(key, str)
    try:
        return _path(base, text)
    except (ValueError, OSError) as exc:  # an embedded NUL byte, a loop of links
        r.problem(key, f"not a usable path: {exc}")
        return None


def _safely(r: Reader, build: Callable[[], T]) -> T | None:
    """Run one entry's builder; a ConfigError it raises is noted and the entry skipped (None)."""
    try:
        return build()
    except ConfigError as exc:
        r.note(exc.message)
        return None


def _mappings(reader: Reader, key: str) -> tuple[PathMappingConfig, ...]:
    """Read a path_mappings list of {remote, local}."""
    def one(r: Reader) -> PathMappingConfig | None:
        """One {remote, local} pair, or None when it is noted as wrong."""
        remote, local = r.get("remote", str), r.get("local", str)
        r.done()
        problem = validate_mapping(remote, local) or _missing_local(remote, local)
        if problem:
            r.note(f"{r.path}: {problem} (line {r.node.line})")
            return None
        return PathMappingConfig(remote=remote, local=local)

    out = [_safely(r, lambda r=r: one(r))
           for _, r in reader.each(key, reader._key(key), fields_of(PathMappingConfig))]
    return tuple(m for m in out if m is not None)


def _missing_local(remote: str, local: str) -> str | None:
    """Why a mapping's local side is not a folder on this machine, or None when it is one.

    A mapping to a folder that is not there (a typo, a share not mounted) would turn every webhook
    and notification through it into a job failing on a path; the config says so up front instead.
    """
    try:
        folder = Path(local)
        if folder.is_dir():
            return None
        what = "is not a folder" if folder.exists() else "does not exist"
    except (OSError, ValueError) as exc:
        what = f"cannot be used ({exc})"
    return f"the mapping {remote} -> {local}: local folder {local} {what} on this machine"


def load_config(path: Path) -> Config:
    """Read and validate the config file at `path` (UTF-8 text, a regular file of at most 1 MiB)."""
    return parse_config(read_document(path), path)


def parse_config(text: str, path: Path | None) -> Config:
    """Parse config text; relative paths resolve against the config file's folder.

    Every problem found is reported at once: the ConfigError's message has one line per problem, in file order.
    """
    base = (path.parent if path else Path.cwd()).resolve()
    root = Reader(compose_document(text, str(path or "config")), "")
    cfg = _build(root, base, path)
    root.done()
    check_config(cfg, root)  # values already found wrong were replaced by their defaults
    if root.problems:
        raise ConfigError("\n".join(in_file_order(root.problems)))
    return cfg


def _build(root: Reader, base: Path, path: Path | None) -> Config:
    """Build every section from the root mapping; a section that is not a mapping is noted and defaulted."""

    def section(build: Callable[[Reader | None], T], key: str, default: T) -> T:
        """One section built, or its default when it is not a mapping (noted)."""
        result = _safely(root, lambda: build(root.child(key)))
        return default if result is None else result

    log_level = root.get("log_level", str, "info").lower()
    if log_level not in LOG_LEVELS:
        root.problem("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        log_level = "info"
    return Config(
        path=path, server=section(_server, "server", ServerConfig()),
        data_dir=_path_key(root, "data_dir", base, "./data") or base / "data",
        log_level=log_level, jobs=section(_jobs, "jobs", JobsConfig()), libraries=_libraries(root, base),
        providers=section(_providers, "providers", ProvidersConfig()),
        artwork=section(_artwork, "artwork", ArtworkConfig()),
        nfo=section(lambda r: _nfo(r, base), "nfo", NfoConfig()),
        sources=section(_sources, "sources", {name: SourceConfig() for name in SOURCES}),
        players=_players(root), watcher=section(_watcher, "watcher", WatcherConfig()),
        playback=section(_playback, "playback", PlaybackConfig()),
        publish=section(_publish, "publish", PublishConfig()),
        probe=section(lambda r: _probe(r, base), "probe", ProbeConfig()),
        store=section(_store, "store", StoreConfig()),
        agent=section(_agent, "agent", AgentConfig(name=_host_name())),
    )


def _server(s: Reader | None) -> ServerConfig:
    """The server section: host, port (1-65535) and key."""
    if s is None:
        return ServerConfig()
    server = ServerConfig(host=s.get("host", str, "127.0.0.1"), port=s.integer("port", 7979, 1, 65535),
                          api_key=s.get("api_key", str, ""))
    s.done()
    return server


def _jobs(r: Reader | None) -> JobsConfig:
    """The jobs section: workers, per-type limits, retries and the time limits."""
    if r is None:
        return JobsConfig()
    limits = dict(JobsConfig().limits)
    lim = r.child("limits")
    if lim:
        for key in list(lim.node.value):
            if key not in JOB_TYPES:
                lim.problem(key, f"unknown job type (known: {', '.join(JOB_TYPES)})")
                lim.used.add(key)
                continue
            limits[key] = lim.integer(key, limits.get(key, 1), 1, 64)
        lim.done()
    cfg = JobsConfig(workers=r.integer("workers", JobsConfig.workers, 1, 64), limits=limits,
                     max_retries=r.integer("max_retries", 3, 0, 100),
                     timeout_seconds=r.number("timeout_seconds", 600.0, 0, 7 * DAY, above=True),
                     prune_completed_days=r.number("prune_completed_days", 7.0, 0, CENTURY_DAYS),
                     grace_seconds=r.number("grace_seconds", 10.0, 0, 3600),
                     lease_seconds=r.number("lease_seconds", JobsConfig.lease_seconds, 3, 3600))
    r.done()
    return cfg


def _libraries(root: Reader, base: Path) -> tuple[LibraryConfig, ...]:
    """Every library; a broken entry is noted and skipped so the others are still checked."""
    libs: list[LibraryConfig] = []

    def one(r: Reader) -> LibraryConfig | None:
        """One library entry (None when its path is unusable)."""
        name = r.get("name", str).strip()
        if not name or "/" in name:
            r.problem("name", "must be a non-empty name without '/'")
        elif any(lib.name.lower() == name.lower() for lib in libs):
            r.problem("name", f"duplicate library name {name!r}")
        kind = r.get("kind", str)
        if kind not in ("movies", "series"):
            r.problem("kind", f"must be 'movies' or 'series', got {kind!r}")
        p = _path_key(r, "path", base)
        if p is not None and not p.exists():
            r.problem("path", f"folder does not exist: {p}")
        elif p is not None and not p.is_dir():
            r.problem("path", f"not a folder: {p}")
        watch = r.get("watch", (str, bool), "auto")
        watch = "off" if watch is False else watch
        if watch not in ("auto", "poll", "off"):
            r.problem("watch", f"must be auto, poll or off, got {watch!r}")
        r.done()
        return LibraryConfig(name=name, kind=kind, path=p, watch=watch) if p is not None else None

    for _, r in root.each("libraries", "libraries", fields_of(LibraryConfig)):
        lib = _safely(r, lambda r=r: one(r))
        if lib is not None:
            libs.append(lib)
    return tuple(libs)


def _providers(r: Reader | None) -> ProvidersConfig:
    """TMDB and fanart.tv settings."""
    if r is None:
        return ProvidersConfig()
    tmdb, fanart = TmdbConfig(), FanartConfig()
    t = _safely(r, lambda: r.child("tmdb"))
    if t:
        tmdb = TmdbConfig(api_key=t.get("api_key", str, ""), language=t.get("language", str, "en-US"),
                          country=t.get("country", str, "US"),
                          base_url=t.get("base_url", str, tmdb.base_url).rstrip("/"),
                          image_base_url=t.get("image_base_url", str, tmdb.image_base_url).rstrip("/"),
                          ttl_days=t.number("ttl_days", 7.0, 0, CENTURY_DAYS),
                          rate_limit=t.get("rate_limit", int, TmdbConfig.rate_limit))
        if not 1 <= tmdb.rate_limit <= 100000:
            t.problem("rate_limit", f"must be between 1 and 100000 requests per 10 s, got {tmdb.rate_limit}")
        t.done()
    f = _safely(r, lambda: r.child("fanart"))
    if f:
        fanart = FanartConfig(api_key=f.get("api_key", str, ""),
                              base_url=f.get("base_url", str, fanart.base_url).rstrip("/"))
        f.done()
    r.done()
    return ProvidersConfig(tmdb=tmdb, fanart=fanart)


def _artwork(r: Reader | None) -> ArtworkConfig:
    """Artwork types, extra fanarts, the asset size cap and the cache grace period."""
    if r is None:
        return ArtworkConfig()
    types = []
    for node in _safely(r, lambda: r.items("types")) or []:
        if node.value not in ART_TYPES:
            r.note(f"artwork.types: unknown artwork type {shown(node.value)} (line {node.line}; "
                   f"known: {', '.join(ART_TYPES)})")
            continue
        types.append(node.value)
    cfg = ArtworkConfig(types=tuple(types) if r.has("types") else ArtworkConfig().types,
                        extrafanart=r.integer("extrafanart", 0, 0, 100),
                        max_asset_mb=r.number("max_asset_mb", 25.0, 0, 10_000, above=True),
                        gc_grace_days=r.number("gc_grace_days", 7.0, 0, CENTURY_DAYS))
    r.done()
    return cfg


def _nfo(r: Reader | None, base: Path) -> NfoConfig:
    """NFO naming and the templates folder."""
    if r is None:
        return NfoConfig()
    name = r.get("movie_filename", str, "basename")
    if name not in ("basename", "movie"):
        r.problem("movie_filename", f"must be 'basename' or 'movie', got {name!r}")
    tpath = _path_key(r, "templates", base) if r.has("templates") else None
    if tpath is not None and not tpath.is_dir():
        r.problem("templates", f"folder does not exist: {tpath}")
    existing = r.get("existing", str, "keep")
    if existing not in ("keep", "refresh"):
        r.problem("existing", f"must be 'keep' or 'refresh', got {existing!r}")
    r.done()
    return NfoConfig(movie_filename=name, templates=tpath, existing=existing)


def _sources(r: Reader | None) -> dict[str, SourceConfig]:
    """Each webhook sender's path mappings."""
    out = {name: SourceConfig() for name in SOURCES}
    if r is None:
        return out
    for key in list(r.node.value):
        if key not in SOURCES:
            r.problem(key, f"unknown source (known: {', '.join(SOURCES)})")
            r.used.add(key)
            continue
        sub = _safely(r, lambda key=key: r.child(key))
        if sub:
            out[key] = SourceConfig(path_mappings=_mappings(sub, "path_mappings"))
            sub.done()
    r.done()
    return out


def _players(root: Reader) -> tuple[PlayerConfig, ...]:
    """Every player; a broken entry is noted and skipped so the others are still checked."""
    players: list[PlayerConfig] = []

    def one(r: Reader) -> PlayerConfig:
        """One player entry."""
        name = r.get("name", str).strip()
        if any(x.name == name for x in players):
            r.problem("name", f"duplicate player name {name!r}")
        kind = r.get("type", str)
        if kind not in ("kodi", "jellyfin", "plex"):
            r.problem("type", f"must be 'kodi', 'jellyfin' or 'plex', got {kind!r}")
        token = r.get("token", str, "")
        if kind == "plex" and not token:
            r.problem("token", "a Plex player needs its token (the server owner's X-Plex-Token)")
        elif kind != "plex" and token:
            r.problem("token", f"only a Plex player takes a token; a {kind} player uses "
                               + ("api_key" if kind == "jellyfin" else "username and password"))
        if kind == "plex" and r.get("api_key", str, ""):
            r.problem("api_key", "a Plex player takes a token, not an api_key")
        url = r.get("url", str)
        if not re.match(r"^https?://[^/\s]+", url):
            r.problem("url", f"must be an http:// or https:// URL, got {mask_url(url)!r}")
        p = PlayerConfig(name=name, type=kind, url=url.rstrip("/"), username=r.get("username", str, ""),
                         password=str(r.get("password", (str, int), "")), api_key=r.get("api_key", str, ""),
                         token=token, group=r.get("group", str, ""), ws_port=r.integer("ws_port", 9090, 1, 65535),
                         defer_while_playing=r.get("defer_while_playing", bool, False),
                         path_mappings=_mappings(r, "path_mappings"))
        r.done()
        return p

    for _, r in root.each("players", "players", fields_of(PlayerConfig)):
        player = _safely(r, lambda r=r: one(r))
        if player is not None:
            players.append(player)
    return tuple(players)


def _watcher(r: Reader | None) -> WatcherConfig:
    """Folder watching intervals and the missing grace period."""
    if r is None:
        return WatcherConfig()
    cfg = WatcherConfig(quiet_seconds=r.number("quiet_seconds", 5.0, 0, DAY),
                        poll_interval=r.number("poll_interval", 30.0, 0, DAY, above=True),
                        missing_grace_days=r.number("missing_grace_days", 30.0, 0, CENTURY_DAYS))
    r.done()
    return cfg


def _playback(r: Reader | None) -> PlaybackConfig:
    """How long a captured playback state is kept."""
    if r is None:
        return PlaybackConfig()
    cfg = PlaybackConfig(expire_hours=r.number("expire_hours", 24.0, 0, CENTURY_DAYS * 24, above=True))
    r.done()
    return cfg


def _publish(r: Reader | None) -> PublishConfig:
    """publish.umask: octal digits in quotes ('022', '0o002'); a bare number is refused as ambiguous."""
    if r is None:
        return PublishConfig()
    value = r.get("umask", (str, int), None)
    umask = None
    if isinstance(value, int):
        r.problem("umask", f"write it as octal digits in quotes, e.g. umask: '022' (got the number {value})")
    elif value is not None:
        digits = value.strip().lower().removeprefix("0o")
        if re.fullmatch(r"[0-7]{1,4}", digits) and int(digits, 8) <= 0o777:
            umask = int(digits, 8)
        else:
            r.problem("umask", f"must be octal digits such as '022' or '002', got {value!r}")
    r.done()
    return PublishConfig(umask=umask)


def _probe(r: Reader | None, base: Path) -> ProbeConfig:
    """probe.ffprobe: auto (ffprobe on PATH, if any), off, or the path of an ffprobe that must exist; its time limit."""
    if r is None:
        return ProbeConfig()
    value = r.get("ffprobe", (str, bool), "auto")
    ffprobe = "off" if value is False else str(value).strip()
    if ffprobe not in ("auto", "off"):
        if "/" not in ffprobe:
            found = shutil.which(ffprobe) if ffprobe else None
            if found is None:
                r.problem("ffprobe", f"must be auto, off or the path of ffprobe; {ffprobe!r} is not a command "
                                     "on PATH")
            ffprobe = found or "auto"
        else:
            path = _path_key(r, "ffprobe", base)
            if path is not None and not (path.is_file() and os.access(path, os.X_OK)):
                r.problem("ffprobe", f"{path} is not an executable file (use auto, off or the path of ffprobe)")
            ffprobe = str(path) if path is not None else "auto"
    cfg = ProbeConfig(ffprobe=ffprobe, timeout_seconds=r.number("timeout_seconds", 30.0, 0, 3600, above=True))
    r.done()
    return cfg


# ---------------------------------------------------------------- output


def _store(r: Reader | None) -> StoreConfig:
    """store.url: empty (SQLite in data_dir) or a postgresql:// URL."""
    if r is None:
        return StoreConfig()
    url = r.get("url", str, "").strip()
    if url and not url.startswith(("postgresql://", "postgres://")):
        r.problem("url", f"must be empty (SQLite in data_dir) or a postgresql:// URL, got {mask_url(url)!r}")
    r.done()
    return StoreConfig(url=url)


_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _host_name() -> str:
    """The default agent name: this machine's host name (its first label)."""
    name = socket.gethostname().split(".")[0] or "agent"
    return name if _AGENT_NAME.match(name) else "agent"


def _agent(r: Reader | None) -> AgentConfig:
    """agent.name: letters, digits, '.', '_' and '-' (it names the agent in the dashboard and in the queue)."""
    if r is None:
        return AgentConfig(name=_host_name())
    name = r.get("name", str, "").strip() or _host_name()
    if not _AGENT_NAME.match(name):
        r.problem("name", f"must be 1-63 letters, digits, '.', '_' or '-' (starting with a letter or digit),"
                          f" got {name!r}")
    r.done()
    return AgentConfig(name=name)


def default_config_path() -> Path:
    """./config/agent.yaml if present, else the example config."""
    own = Path("config/agent.yaml")
    return own if own.exists() else Path("config/agent.example.yaml")
