"""Load, expand and validate the YAML config into frozen dataclasses; errors name the key and line."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.errors import ConfigError
from agent.yamlreader import Node, Reader, convert, fields_of

SECRET_KEYS = {"api_key", "password"}
ART_TYPES = ("poster", "fanart", "clearlogo", "clearart", "banner", "landscape", "discart", "keyart", "thumb")
LOG_LEVELS = ("debug", "info", "warning", "error")
JOB_TYPES = (
    "webhook", "scan", "enrich", "publish", "notify_players", "playback_capture",
    "playback_restore", "cleanup", "cache_gc",
)
SOURCES = ("radarr", "sonarr", "jellyfin", "plex")


@dataclass(frozen=True)
class PathMappingConfig:
    """One remote <-> local prefix pair."""

    remote: str
    local: str


@dataclass(frozen=True)
class ServerConfig:
    """Where the HTTP server listens and its key."""

    host: str = "127.0.0.1"
    port: int = 7979
    api_key: str = ""


@dataclass(frozen=True)
class JobsConfig:
    """Queue workers, per-type limits, retries and pruning."""

    workers: int = 2
    limits: dict[str, int] = field(default_factory=lambda: {"scan": 1, "enrich": 4})
    max_retries: int = 3
    timeout_seconds: float = 600.0
    prune_completed_days: float = 7.0
    grace_seconds: float = 10.0


@dataclass(frozen=True)
class LibraryConfig:
    """One media library folder."""

    name: str
    kind: str
    path: Path
    watch: str = "auto"


@dataclass(frozen=True)
class TmdbConfig:
    """TMDB credentials and endpoints."""

    api_key: str = ""
    language: str = "en-US"
    country: str = "US"
    base_url: str = "https://api.themoviedb.org/3"
    image_base_url: str = "https://image.tmdb.org/t/p/original"
    ttl_days: float = 7.0
    rate_limit: int = 40  # requests per 10 s (TMDB's documented limit); a local mirror or test fake may allow more


@dataclass(frozen=True)
class FanartConfig:
    """fanart.tv credentials."""

    api_key: str = ""
    base_url: str = "https://webservice.fanart.tv/v3"


@dataclass(frozen=True)
class ProvidersConfig:
    """Metadata providers."""

    tmdb: TmdbConfig = field(default_factory=TmdbConfig)
    fanart: FanartConfig = field(default_factory=FanartConfig)


@dataclass(frozen=True)
class ArtworkConfig:
    """Which artwork types to fetch and how many extra fanarts."""

    types: tuple[str, ...] = ("poster", "fanart", "clearlogo", "clearart", "banner", "landscape", "discart")
    extrafanart: int = 0
    max_asset_mb: float = 25.0
    gc_grace_days: float = 7.0


@dataclass(frozen=True)
class NfoConfig:
    """NFO naming and templates."""

    movie_filename: str = "basename"
    templates: Path | None = None


@dataclass(frozen=True)
class SourceConfig:
    """A webhook sender and how its paths map to ours."""

    path_mappings: tuple[PathMappingConfig, ...] = ()


@dataclass(frozen=True)
class WatcherConfig:
    """Folder watching: quiet period before a folder is rescanned, poll interval."""

    quiet_seconds: float = 5.0
    poll_interval: float = 30.0
    missing_grace_days: float = 30.0


@dataclass(frozen=True)
class PlaybackConfig:
    """How long a captured playback state waits to be restored."""

    expire_hours: float = 24.0


@dataclass(frozen=True)
class PlayerConfig:
    """A Kodi or Jellyfin instance to notify."""

    name: str
    type: str
    url: str
    username: str = ""
    password: str = ""
    api_key: str = ""
    group: str = ""
    ws_port: int = 9090
    defer_while_playing: bool = False
    path_mappings: tuple[PathMappingConfig, ...] = ()


@dataclass(frozen=True)
class Config:
    """The whole effective configuration."""

    path: Path | None
    server: ServerConfig
    data_dir: Path
    log_level: str
    jobs: JobsConfig
    libraries: tuple[LibraryConfig, ...]
    providers: ProvidersConfig
    artwork: ArtworkConfig
    nfo: NfoConfig
    sources: dict[str, SourceConfig]
    players: tuple[PlayerConfig, ...]
    watcher: WatcherConfig
    playback: PlaybackConfig

    def library(self, name: str) -> LibraryConfig | None:
        """Find a library by name (case-insensitive)."""
        for lib in self.libraries:
            if lib.name.lower() == name.lower():
                return lib
        return None


# ---------------------------------------------------------------- loading


def _path(base: Path, text: str) -> Path:
    """Resolve a path relative to the config file's folder."""
    p = Path(os.path.expanduser(text))
    return (p if p.is_absolute() else base / p).resolve()


def _mappings(reader: Reader, key: str) -> tuple[PathMappingConfig, ...]:
    """Read a path_mappings list of {remote, local}."""
    from agent.paths import validate_mapping

    out = []
    for i, node in enumerate(reader.items(key)):
        r = Reader(node, f"{reader._key(key)}[{i}]", fields_of(PathMappingConfig))
        remote, local = r.get("remote", str), r.get("local", str)
        r.done()
        problem = validate_mapping(remote, local)
        if problem:
            raise ConfigError(f"{r.path}: {problem} (line {node.line})")
        out.append(PathMappingConfig(remote=remote, local=local))
    return tuple(out)


def load_config(path: Path) -> Config:
    """Read and validate the config file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | None) -> Config:
    """Parse config text; relative paths resolve against the config file's folder."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path or 'config'}: not valid YAML{where}: {problem}") from None
    base = (path.parent if path else Path.cwd()).resolve()
    root = Reader(convert(node) if node is not None else Node({}, 1), "")
    cfg = _build(root, base, path)
    root.done()
    return cfg


def _build(root: Reader, base: Path, path: Path | None) -> Config:
    """Build every section from the root mapping."""
    s = root.child("server")
    server = ServerConfig()
    if s:
        server = ServerConfig(host=s.get("host", str, "127.0.0.1"), port=s.get("port", int, 7979),
                              api_key=s.get("api_key", str, ""))
        if not 1 <= server.port <= 65535:
            raise s.error("port", f"must be between 1 and 65535, got {server.port}")
        s.done()
    log_level = root.get("log_level", str, "info").lower()
    if log_level not in LOG_LEVELS:
        raise root.error("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    return Config(
        path=path, server=server, data_dir=_path(base, root.get("data_dir", str, "./data")),
        log_level=log_level, jobs=_jobs(root.child("jobs")), libraries=_libraries(root, base),
        providers=_providers(root.child("providers")), artwork=_artwork(root.child("artwork")),
        nfo=_nfo(root.child("nfo"), base), sources=_sources(root.child("sources")), players=_players(root),
        watcher=_watcher(root.child("watcher")), playback=_playback(root.child("playback")),
    )


def _jobs(r: Reader | None) -> JobsConfig:
    if r is None:
        return JobsConfig()
    workers = r.get("workers", int, 2)
    if not 1 <= workers <= 64:
        raise r.error("workers", f"must be between 1 and 64, got {workers}")
    limits = dict(JobsConfig().limits)
    lim = r.child("limits")
    if lim:
        for key in list(lim.node.value):
            if key not in JOB_TYPES:
                raise lim.error(key, f"unknown job type (known: {', '.join(JOB_TYPES)})")
            limits[key] = lim.get(key, int)
            if limits[key] < 1:
                raise lim.error(key, "must be at least 1")
        lim.done()
    cfg = JobsConfig(workers=workers, limits=limits, max_retries=r.get("max_retries", int, 3),
                     timeout_seconds=r.get("timeout_seconds", float, 600.0),
                     prune_completed_days=r.get("prune_completed_days", float, 7.0),
                     grace_seconds=r.get("grace_seconds", float, 10.0))
    if cfg.max_retries < 0:
        raise r.error("max_retries", "must not be negative")
    r.done()
    return cfg


def _libraries(root: Reader, base: Path) -> tuple[LibraryConfig, ...]:
    libs: list[LibraryConfig] = []
    for i, node in enumerate(root.items("libraries")):
        r = Reader(node, f"libraries[{i}]", fields_of(LibraryConfig))
        name = r.get("name", str).strip()
        if not name or "/" in name:
            raise r.error("name", "must be a non-empty name without '/'")
        kind = r.get("kind", str)
        if kind not in ("movies", "series"):
            raise r.error("kind", f"must be 'movies' or 'series', got {kind!r}")
        p = _path(base, r.get("path", str))
        if not p.exists():
            raise r.error("path", f"folder does not exist: {p}")
        if not p.is_dir():
            raise r.error("path", f"not a folder: {p}")
        watch = r.get("watch", (str, bool), "auto")
        watch = "off" if watch is False else watch
        if watch not in ("auto", "poll", "off"):
            raise r.error("watch", f"must be auto, poll or off, got {watch!r}")
        r.done()
        if any(lib.name.lower() == name.lower() for lib in libs):
            raise r.error("name", f"duplicate library name {name!r}")
        libs.append(LibraryConfig(name=name, kind=kind, path=p, watch=watch))
    return tuple(libs)


def _providers(r: Reader | None) -> ProvidersConfig:
    if r is None:
        return ProvidersConfig()
    tmdb, fanart = TmdbConfig(), FanartConfig()
    t = r.child("tmdb")
    if t:
        tmdb = TmdbConfig(api_key=t.get("api_key", str, ""), language=t.get("language", str, "en-US"),
                          country=t.get("country", str, "US"),
                          base_url=t.get("base_url", str, tmdb.base_url).rstrip("/"),
                          image_base_url=t.get("image_base_url", str, tmdb.image_base_url).rstrip("/"),
                          ttl_days=t.get("ttl_days", float, 7.0), rate_limit=t.get("rate_limit", int, 40))
        if not 1 <= tmdb.rate_limit <= 100000:
            raise t.error("rate_limit", f"must be between 1 and 100000 requests per 10 s, got {tmdb.rate_limit}")
        t.done()
    f = r.child("fanart")
    if f:
        fanart = FanartConfig(api_key=f.get("api_key", str, ""),
                              base_url=f.get("base_url", str, fanart.base_url).rstrip("/"))
        f.done()
    r.done()
    return ProvidersConfig(tmdb=tmdb, fanart=fanart)


def _artwork(r: Reader | None) -> ArtworkConfig:
    if r is None:
        return ArtworkConfig()
    types = []
    for node in r.items("types"):
        if node.value not in ART_TYPES:
            raise ConfigError(f"artwork.types: unknown artwork type {node.value!r} (line {node.line}; "
                              f"known: {', '.join(ART_TYPES)})")
        types.append(node.value)
    cfg = ArtworkConfig(types=tuple(types) if r.has("types") else ArtworkConfig().types,
                        extrafanart=r.get("extrafanart", int, 0),
                        max_asset_mb=r.get("max_asset_mb", float, 25.0),
                        gc_grace_days=r.get("gc_grace_days", float, 7.0))
    r.done()
    return cfg


def _nfo(r: Reader | None, base: Path) -> NfoConfig:
    if r is None:
        return NfoConfig()
    name = r.get("movie_filename", str, "basename")
    if name not in ("basename", "movie"):
        raise r.error("movie_filename", f"must be 'basename' or 'movie', got {name!r}")
    templates = r.get("templates", str, None)
    tpath = _path(base, templates) if templates else None
    if tpath is not None and not tpath.is_dir():
        raise r.error("templates", f"folder does not exist: {tpath}")
    r.done()
    return NfoConfig(movie_filename=name, templates=tpath)


def _sources(r: Reader | None) -> dict[str, SourceConfig]:
    out = {name: SourceConfig() for name in SOURCES}
    if r is None:
        return out
    for key in list(r.node.value):
        if key not in SOURCES:
            raise r.error(key, f"unknown source (known: {', '.join(SOURCES)})")
        sub = r.child(key)
        if sub:
            out[key] = SourceConfig(path_mappings=_mappings(sub, "path_mappings"))
            sub.done()
    r.done()
    return out


def _players(root: Reader) -> tuple[PlayerConfig, ...]:
    players: list[PlayerConfig] = []
    for i, node in enumerate(root.items("players")):
        r = Reader(node, f"players[{i}]", fields_of(PlayerConfig))
        name = r.get("name", str).strip()
        kind = r.get("type", str)
        if kind not in ("kodi", "jellyfin"):
            raise r.error("type", f"must be 'kodi' or 'jellyfin', got {kind!r}")
        url = r.get("url", str)
        if not re.match(r"^https?://[^/\s]+", url):
            raise r.error("url", f"must be an http:// or https:// URL, got {url!r}")
        p = PlayerConfig(name=name, type=kind, url=url.rstrip("/"), username=r.get("username", str, ""),
                         password=str(r.get("password", (str, int), "")), api_key=r.get("api_key", str, ""),
                         group=r.get("group", str, ""), ws_port=r.get("ws_port", int, 9090),
                         defer_while_playing=r.get("defer_while_playing", bool, False),
                         path_mappings=_mappings(r, "path_mappings"))
        r.done()
        if any(x.name == name for x in players):
            raise r.error("name", f"duplicate player name {name!r}")
        players.append(p)
    return tuple(players)


def _watcher(r: Reader | None) -> WatcherConfig:
    if r is None:
        return WatcherConfig()
    cfg = WatcherConfig(quiet_seconds=r.get("quiet_seconds", float, 5.0),
                        poll_interval=r.get("poll_interval", float, 30.0),
                        missing_grace_days=r.get("missing_grace_days", float, 30.0))
    r.done()
    return cfg


def _playback(r: Reader | None) -> PlaybackConfig:
    if r is None:
        return PlaybackConfig()
    cfg = PlaybackConfig(expire_hours=r.get("expire_hours", float, 24.0))
    r.done()
    return cfg


# ---------------------------------------------------------------- output


def effective(cfg: Config, mask: bool = True) -> dict[str, Any]:
    """The effective config as plain data, secrets masked."""

    def conv(value: Any, key: str = "") -> Any:
        if dataclasses.is_dataclass(value):
            skip = "path" if isinstance(value, Config) else ""  # the file itself, not a library's folder
            names = [f.name for f in dataclasses.fields(value) if f.name != skip]
            return {name: conv(getattr(value, name), name) for name in names}
        if isinstance(value, dict):
            return {k: conv(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [conv(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        if mask and key in SECRET_KEYS and value:
            return "********"
        return value

    return conv(cfg)


def secrets(cfg: Config) -> list[str]:
    """Every secret value in the config (for log redaction)."""
    found = [cfg.server.api_key, cfg.providers.tmdb.api_key, cfg.providers.fanart.api_key]
    for p in cfg.players:
        found += [p.password, p.api_key]
    return [s for s in found if s and len(s) >= 4]


def default_config_path() -> Path:
    """./config/agent.yaml if present, else the example config."""
    own = Path("config/agent.yaml")
    return own if own.exists() else Path("config/agent.example.yaml")
