"""The config's shape: one frozen dataclass per section, and the constants its values are checked against.
`agent.config` reads and validates a YAML file into these; everything else only reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ART_TYPES = ("poster", "fanart", "clearlogo", "clearart", "banner", "landscape", "discart", "keyart", "thumb")
LOG_LEVELS = ("debug", "info", "warning", "error")
JOB_TYPES = (
    "webhook", "scan", "enrich", "artwork", "publish", "notify_players", "playback_capture",
    "playback_restore", "cleanup", "cache_gc",
)
SOURCES = ("radarr", "sonarr", "jellyfin", "plex")
DAY = 86400.0
CENTURY_DAYS = 36500.0


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
    api_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class JobsConfig:
    """Queue workers, per-type limits, retries and pruning."""

    workers: int = 8  # lookups wait on the network: 8 at once keep TMDB's 40 requests/s busy
    limits: dict[str, int] = field(default_factory=lambda: {"scan": 1, "publish": 2})
    max_retries: int = 3
    timeout_seconds: float = 600.0
    prune_completed_days: float = 7.0
    grace_seconds: float = 10.0
    # a running job is its agent's while renewed (every third of this); on a shared store another agent puts
    # it back to pending once this long has passed without a renewal (the agent died)
    lease_seconds: float = 30.0


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

    api_key: str = field(default="", repr=False)
    language: str = "en-US"
    country: str = "US"
    base_url: str = "https://api.themoviedb.org/3"
    image_base_url: str = "https://image.tmdb.org/t/p/original"
    ttl_days: float = 7.0
    rate_limit: int = 400  # requests per 10 s: TMDB's ceiling today is about 40/s (429 + Retry-After above it)


@dataclass(frozen=True)
class FanartConfig:
    """fanart.tv credentials."""

    api_key: str = field(default="", repr=False)
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
    existing: str = "keep"  # another tool's NFO values: kept (providers fill gaps) or refreshed by providers


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
    """A Kodi, Jellyfin or Plex instance to notify (Plex: `token`, its X-Plex-Token)."""

    name: str
    type: str
    url: str = field(repr=False)  # may hold user:password@
    username: str = ""
    password: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    group: str = ""
    ws_port: int = 9090
    defer_while_playing: bool = False
    path_mappings: tuple[PathMappingConfig, ...] = ()


@dataclass(frozen=True)
class PublishConfig:
    """How new files and folders beside media are created: their umask (None: the agent's own umask)."""

    umask: int | None = None


@dataclass(frozen=True)
class ProbeConfig:
    """ffprobe for NFOs' fileinfo/streamdetails: "auto" (ffprobe on PATH), "off", or its path; its time limit."""

    ffprobe: str = "auto"
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class StoreConfig:
    """Where the store lives: empty for SQLite in data_dir, or a postgresql:// URL shared by several agents."""

    url: str = field(default="", repr=False)


@dataclass(frozen=True)
class AgentConfig:
    """This agent's name among the agents sharing a store (default: the host name)."""

    name: str = ""


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
    publish: PublishConfig = PublishConfig()
    probe: ProbeConfig = ProbeConfig()
    store: StoreConfig = StoreConfig()
    agent: AgentConfig = AgentConfig()

    @property
    def store_target(self) -> str:
        """The store: store.url when set, else the SQLite file in data_dir."""
        return self.store.url or str(self.data_dir / "metarr.sqlite")

    @property
    def shared_store(self) -> bool:
        """Whether other agents may share this store (PostgreSQL)."""
        return bool(self.store.url)

    @property
    def store_agent(self) -> str | None:
        """The name this agent's libraries and webhook events are stored under: its own on a shared store,
        None on SQLite (one agent owns everything)."""
        return self.agent.name if self.shared_store else None

    def library(self, name: str) -> LibraryConfig | None:
        """Find a library by name (case-insensitive)."""
        for lib in self.libraries:
            if lib.name.lower() == name.lower():
                return lib
        return None


# ---------------------------------------------------------------- loading
