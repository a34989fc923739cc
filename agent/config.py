"""Load, expand and validate the YAML config into frozen dataclasses; errors name the key and line."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.errors import ConfigError

ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
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


class _Node:
    """A YAML value with the line it came from."""

    __slots__ = ("expanded", "line", "value")

    def __init__(self, value: Any, line: int, expanded: bool = False) -> None:
        self.value = value
        self.line = line
        self.expanded = expanded


def _convert(node: yaml.Node) -> _Node:
    """Turn a composed YAML node into nested _Node values, keeping line numbers."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, _Node] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node)) if not isinstance(key_node, yaml.ScalarNode) \
                else key_node.value
            if str(key) in out:
                raise ConfigError(f"duplicate key '{key}' at line {key_node.start_mark.line + 1}")
            child = _convert(value_node)
            child.line = key_node.start_mark.line + 1  # messages point at the key, not a block value below it
            out[str(key)] = child
        return _Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_convert(n) for n in node.value], line)
    value = yaml.safe_load(yaml.serialize(node))
    if isinstance(value, str) and ENV_RE.search(value):
        return _Node(_expand_env(value), line, expanded=True)
    return _Node(value, line)


def _expand_env(text: str) -> str:
    """Replace ${NAME} and ${NAME:-default} from the environment (unset -> empty, or the default)."""
    return ENV_RE.sub(lambda m: os.environ.get(m.group(1)) or m.group(2) or "", text)


def _scalar(text: str) -> Any:
    """What an unquoted YAML scalar with this text would be (int, float, bool, null or the string)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, int | float | bool) or value is None else text


def _plain(value: Any) -> Any:
    """A converted value as plain Python again (for messages)."""
    if isinstance(value, _Node):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


class _Reader:
    """Walks a mapping, tracking the key path for messages and flagging unknown keys."""

    def __init__(self, node: _Node, path: str, known: tuple[str, ...] = ()) -> None:
        if not isinstance(node.value, dict):
            raise ConfigError(f"{path or 'config'}: expected a mapping (line {node.line})")
        self.node, self.path, self.used = node, path, set()
        if known:  # report a typo ("pth") before the required key it hides ("path")
            for key, child in node.value.items():
                if key not in known:
                    hint = _did_you_mean(key, known)
                    raise ConfigError(f"{self._key(key)}: unknown key (line {child.line}){hint}")

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        """Whether the key is present and not null."""
        child = self.node.value.get(key)
        return child is not None and child.value is not None

    def raw(self, key: str) -> _Node | None:
        """The child node, marking it used."""
        self.used.add(key)
        child = self.node.value.get(key)
        return None if child is None or child.value is None else child

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = dataclasses.MISSING) -> Any:
        """A scalar of the given type, or the default; missing required keys are errors."""
        child = self.raw(key)
        if child is None:
            if default is dataclasses.MISSING:
                raise ConfigError(
                    f"{self._key(key)}: required key is missing (in the mapping at line {self.node.line})")
            return default
        value = child.value
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if child.expanded and str not in kinds:  # port: ${PORT:-7979} is a number once expanded
            value = _scalar(value)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(TYPE_NAMES.get(k, k.__name__) for k in kinds)
            quoted = isinstance(value, str) and not child.expanded and isinstance(_scalar(value), kinds) \
                and not isinstance(_scalar(value), str)
            hint = " (remove the quotes)" if quoted else ""
            got = _plain(value)
            raise ConfigError(f"{self._key(key)}: expected {names}, got {got!r} (line {child.line}){hint}")
        return value

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError for this key with its line."""
        child = self.node.value.get(key)
        line = child.line if child is not None else self.node.line
        return ConfigError(f"{self._key(key)}: {message} (line {line})")

    def child(self, key: str) -> _Reader | None:
        """A nested mapping reader, or None when absent."""
        node = self.raw(key)
        return None if node is None else _Reader(node, self._key(key))

    def items(self, key: str) -> list[_Node]:
        """A list value (empty when absent)."""
        node = self.raw(key)
        if node is None:
            return []
        if not isinstance(node.value, list):
            raise ConfigError(f"{self._key(key)}: expected a list (line {node.line})")
        return node.value

    def done(self) -> None:
        """Raise on keys that were never read: typos must not pass silently."""
        for key, child in self.node.value.items():
            if key not in self.used:
                hint = _did_you_mean(key, tuple(self.used))
                raise ConfigError(f"{self._key(key)}: unknown key (line {child.line}){hint}")


def _did_you_mean(key: str, known: tuple[str, ...]) -> str:
    """A '; did you mean ...?' suffix naming the closest known key, or ''."""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _fields(cls: type) -> tuple[str, ...]:
    """The field names of a config dataclass: the keys its YAML mapping may have."""
    return tuple(f.name for f in dataclasses.fields(cls))


def _path(base: Path, text: str) -> Path:
    """Resolve a path relative to the config file's folder."""
    p = Path(os.path.expanduser(text))
    return (p if p.is_absolute() else base / p).resolve()


def _mappings(reader: _Reader, key: str) -> tuple[PathMappingConfig, ...]:
    """Read a path_mappings list of {remote, local}."""
    from agent.paths import validate_mapping

    out = []
    for i, node in enumerate(reader.items(key)):
        r = _Reader(node, f"{reader._key(key)}[{i}]", _fields(PathMappingConfig))
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
    root = _Reader(_convert(node) if node is not None else _Node({}, 1), "")
    cfg = _build(root, base, path)
    root.done()
    return cfg


def _build(root: _Reader, base: Path, path: Path | None) -> Config:
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


def _jobs(r: _Reader | None) -> JobsConfig:
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


def _libraries(root: _Reader, base: Path) -> tuple[LibraryConfig, ...]:
    libs: list[LibraryConfig] = []
    for i, node in enumerate(root.items("libraries")):
        r = _Reader(node, f"libraries[{i}]", _fields(LibraryConfig))
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


def _providers(r: _Reader | None) -> ProvidersConfig:
    if r is None:
        return ProvidersConfig()
    tmdb, fanart = TmdbConfig(), FanartConfig()
    t = r.child("tmdb")
    if t:
        tmdb = TmdbConfig(api_key=t.get("api_key", str, ""), language=t.get("language", str, "en-US"),
                          country=t.get("country", str, "US"),
                          base_url=t.get("base_url", str, tmdb.base_url).rstrip("/"),
                          image_base_url=t.get("image_base_url", str, tmdb.image_base_url).rstrip("/"),
                          ttl_days=t.get("ttl_days", float, 7.0))
        t.done()
    f = r.child("fanart")
    if f:
        fanart = FanartConfig(api_key=f.get("api_key", str, ""),
                              base_url=f.get("base_url", str, fanart.base_url).rstrip("/"))
        f.done()
    r.done()
    return ProvidersConfig(tmdb=tmdb, fanart=fanart)


def _artwork(r: _Reader | None) -> ArtworkConfig:
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


def _nfo(r: _Reader | None, base: Path) -> NfoConfig:
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


def _sources(r: _Reader | None) -> dict[str, SourceConfig]:
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


def _players(root: _Reader) -> tuple[PlayerConfig, ...]:
    players: list[PlayerConfig] = []
    for i, node in enumerate(root.items("players")):
        r = _Reader(node, f"players[{i}]", _fields(PlayerConfig))
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


def _watcher(r: _Reader | None) -> WatcherConfig:
    if r is None:
        return WatcherConfig()
    cfg = WatcherConfig(quiet_seconds=r.get("quiet_seconds", float, 5.0),
                        poll_interval=r.get("poll_interval", float, 30.0),
                        missing_grace_days=r.get("missing_grace_days", float, 30.0))
    r.done()
    return cfg


def _playback(r: _Reader | None) -> PlaybackConfig:
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
