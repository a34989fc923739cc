"""What the artwork cache hands out: cached assets, references to them, and GC and verify reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CachedAsset:
    """One image in the cache and where it lives on disk."""

    sha256: str
    ext: str
    size: int
    mime: str
    width: int | None
    height: int | None
    source_url: str | None
    created_at: float
    path: Path
    quarantined: bool = False


@dataclass(frozen=True)
class AssetReference:
    """An entity using a cached asset as one artwork type at one position."""

    id: int
    sha256: str
    ext: str
    entity_type: str
    entity_id: int
    art_type: str
    position: int
    source: str
    library_path: str | None
    created_at: float
    quarantined: bool


@dataclass
class GcReport:
    """What a GC pass deleted."""

    assets_deleted: int = 0
    orphans_deleted: int = 0
    temps_deleted: int = 0
    quarantine_deleted: int = 0
    baselines_deleted: int = 0  # copies of published NFOs whose file the agent no longer tracks
    bytes_freed: int = 0


@dataclass(frozen=True)
class VerifyProblem:
    """A cached asset whose file is missing or does not hash to its name."""

    sha256: str
    path: str
    actual_sha256: str | None = None
    quarantined_to: str | None = None


@dataclass
class VerifyReport:
    """Result of re-hashing every cached asset; `ok` is False if anything was missing or corrupt."""

    checked: int = 0
    mismatched: list[VerifyProblem] = field(default_factory=list)
    missing: list[VerifyProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every asset was present and intact."""
        return not self.mismatched and not self.missing
