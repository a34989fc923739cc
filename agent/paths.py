"""Path mappings between a sender's or player's view of the media and ours, and the write-guard."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from agent.errors import ConfigError, PathError

_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://(.*)$", re.DOTALL)
_DRIVE_RE = re.compile(r"^([A-Za-z]):(?:[\\/](.*))?$", re.DOTALL)
_ABSOLUTE_HINT = r"expected /path, D:\path, \\server\share or smb://host/path"


class Style(StrEnum):
    """How a path is spelled: which root, which separator, which case rule."""

    POSIX = "posix"
    DRIVE = "drive"
    UNC = "unc"
    URL = "url"


@dataclass(frozen=True)
class ParsedPath:
    """An absolute path split into a style, a root and its segments (`.` and `..` already applied)."""

    style: Style
    root: str
    segments: tuple[str, ...]
    trailing: bool

    @property
    def case_insensitive(self) -> bool:
        """Windows paths (drive letter or UNC) compare without regard to case."""
        return self.style in (Style.DRIVE, Style.UNC)

    def key(self) -> tuple[str, tuple[str, ...]]:
        """Return the comparison key: root plus segments, case-folded where the style says so."""
        if self.case_insensitive:
            return self.root.casefold(), tuple(s.casefold() for s in self.segments)
        if self.style is Style.URL:
            return self.root.casefold(), self.segments
        return self.root, self.segments

    def render(self, segments: Sequence[str] | None = None, trailing: bool | None = None) -> str:
        """Spell the path (or this root with other segments) in this style's separators."""
        segs = tuple(self.segments if segments is None else segments)
        slash = self.trailing if trailing is None else trailing
        if self.style is Style.POSIX:
            text = "/" + "/".join(segs)
            sep = "/"
        elif self.style is Style.DRIVE:
            text = self.root + "\\" + "\\".join(segs)
            sep = "\\"
        elif self.style is Style.UNC:
            text = "\\\\" + "\\".join(segs)
            sep = "\\"
        else:
            text = self.root + "/".join(segs)
            sep = "/"
            if not segs:
                return text
        if slash and segs and not text.endswith(sep):
            text += sep
        return text


def parse_path(path: str) -> ParsedPath:
    """Split an absolute path of any supported style; raise PathError for a relative or empty one."""
    if not isinstance(path, str) or not path.strip():
        raise PathError(f"empty path ({_ABSOLUTE_HINT})")
    text = path
    url = _URL_RE.match(text)
    drive = _DRIVE_RE.match(text)
    if url:
        host, _, rest = url.group(2).partition("/")
        style, root, seps = Style.URL, f"{url.group(1).lower()}://{host}/", "/"
    elif text.startswith("\\\\"):
        style, root, rest, seps = Style.UNC, "\\\\", text[2:], "\\/"
    elif drive:
        style, root, rest, seps = Style.DRIVE, drive.group(1).upper() + ":", drive.group(2) or "", "\\/"
    elif text.startswith("/"):
        style, root, rest, seps = Style.POSIX, "/", text, "/"
    else:
        raise PathError(f"path '{path}' is not absolute ({_ABSOLUTE_HINT})")
    trailing = bool(rest) and rest[-1] in seps
    raw = re.split("[" + re.escape(seps) + "]", rest)
    segments: list[str] = []
    for seg in raw:
        if seg in ("", "."):
            continue
        if seg == "..":
            if not segments:
                raise PathError(f"path '{path}' climbs above its root with '..'")
            segments.pop()
            continue
        segments.append(seg)
    if style is Style.UNC and len(segments) < 2:
        raise PathError(f"UNC path '{path}' needs a server and a share (\\\\server\\share)")
    return ParsedPath(style, root, tuple(segments), trailing)


def join_remote(folder: str, relative: str) -> str:
    """Join a sender's folder and a relative path ("Season 01/x.mkv") in the folder's own style."""
    base = parse_path(folder)
    seps = "/" if base.style in (Style.POSIX, Style.URL) else "\\/"
    parts = [p for p in re.split("[" + re.escape(seps) + "]", relative) if p not in ("", ".")]
    if ".." in parts:
        raise PathError(f"relative path '{relative}' contains '..'")
    return base.render((*base.segments, *parts), trailing=False)


def _is_prefix(prefix: ParsedPath, path: ParsedPath) -> bool:
    """True when `prefix` covers `path` on whole segments, honouring the style's case rule."""
    if prefix.style is not path.style:
        return False
    p_root, p_segs = prefix.key()
    root, segs = path.key()
    return p_root == root and segs[: len(p_segs)] == p_segs


@dataclass(frozen=True)
class Mapping:
    """One mapping: `remote` is the sender's or player's spelling, `local` is ours."""

    remote: str
    local: str

    def __str__(self) -> str:
        """Render as `remote -> local` for error messages."""
        return f"{self.remote} -> {self.local}"


def validate_mapping(remote: object, local: object) -> str | None:
    """Return why a mapping is unusable (empty side, relative local path ...), or None when it is fine."""
    for side, value in (("remote", remote), ("local", local)):
        if not isinstance(value, str):
            return f"{side} must be a string, got {type(value).__name__}"
        if not value.strip():
            return f"{side} path is empty"
    assert isinstance(remote, str) and isinstance(local, str)
    try:
        parse_path(remote)
    except PathError as exc:
        return f"remote {exc.message}"
    try:
        parsed_local = parse_path(local)
    except PathError as exc:
        return f"local {exc.message}"
    if parsed_local.style is Style.URL:
        return f"local path '{local}' is a URL; it must be a folder on this machine"
    return None


def _coerce(item: Mapping | AbcMapping[str, object], where: str) -> Mapping:
    """Turn a Mapping or a {remote, local} dict into a validated Mapping; ConfigError otherwise."""
    if isinstance(item, Mapping):
        remote, local = item.remote, item.local
    elif isinstance(item, AbcMapping):
        extra = sorted(set(item) - {"remote", "local"})
        if extra:
            raise ConfigError(f"{where}: unknown key '{extra[0]}' (a mapping has 'remote' and 'local')")
        remote, local = item.get("remote"), item.get("local")
    else:
        kind = type(item).__name__
        raise ConfigError(f"{where}: a mapping must be {{remote: ..., local: ...}}, got {kind}")
    problem = validate_mapping(remote, local)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    assert isinstance(remote, str) and isinstance(local, str)
    return Mapping(remote, local)


class PathMapper:
    """Translate paths both ways with a list of mappings; longest whole-segment prefix wins.

    With an empty mapping list and `identity_if_empty=True` (the default) the sender is taken to
    see the same paths as we do, so both directions only normalise the path. Pass
    `identity_if_empty=False` to make an empty list cover nothing.
    """

    def __init__(
        self,
        mappings: Sequence[Mapping | AbcMapping[str, object]] = (),
        name: str = "",
        identity_if_empty: bool = True,
    ) -> None:
        label = f"{name} path_mappings" if name else "path_mappings"
        self.name = name
        self.mappings: tuple[Mapping, ...] = tuple(
            _coerce(m, f"{label}[{i}]") for i, m in enumerate(mappings)
        )
        self.identity = identity_if_empty and not self.mappings
        self._parsed = [(m, parse_path(m.remote), parse_path(m.local)) for m in self.mappings]

    def to_local(self, remote_path: str) -> str:
        """Map a sender's path to ours (webhooks); PathError when no mapping covers it."""
        return self._map(remote_path, to_local=True)

    def to_remote(self, local_path: str) -> str:
        """Map one of our paths to the player's spelling; PathError when no mapping covers it."""
        return self._map(local_path, to_local=False)

    def covers_remote(self, remote_path: str) -> bool:
        """True when `to_local` would succeed for this path."""
        try:
            self.to_local(remote_path)
        except PathError:
            return False
        return True

    def _map(self, path: str, to_local: bool) -> str:
        """Find the longest matching prefix on the source side and graft the rest onto the target."""
        try:
            src = parse_path(path)
        except PathError as exc:
            raise PathError(self._prefix() + exc.message, detail={"path": path}) from None
        if self.identity:
            return src.render()
        best: tuple[ParsedPath, ParsedPath] | None = None
        for _, remote, local in self._parsed:
            frm, to = (remote, local) if to_local else (local, remote)
            if _is_prefix(frm, src) and (best is None or len(frm.segments) > len(best[0].segments)):
                best = (frm, to)
        if best is None:
            tried = ", ".join(
                str(m) if to_local else f"{m.local} -> {m.remote}" for m in self.mappings
            ) or "none"
            raise PathError(
                f"{self._prefix()}no path mapping covers '{path}' (tried: {tried})",
                detail={"path": path, "mappings": [vars(m) for m in self.mappings]},
            )
        frm, to = best
        rest = src.segments[len(frm.segments) :]
        return to.render((*to.segments, *rest), trailing=src.trailing)

    def _prefix(self) -> str:
        """Name the mapper in messages when it has a name."""
        return f"{self.name}: " if self.name else ""

    def __repr__(self) -> str:
        """Show the name and mappings."""
        return f"PathMapper({self.name!r}, {[str(m) for m in self.mappings]})"


def resolve_inside(path: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]]) -> Path:
    """Resolve `..` and symlinks and return the path if it lies inside one of `roots`, else PathError."""
    text = os.fspath(path)
    if not text:
        raise PathError("empty path")
    if not os.path.isabs(text):
        raise PathError(f"path '{text}' is not absolute")
    resolved = Path(os.path.realpath(text))
    real_roots = [Path(os.path.realpath(os.fspath(r))) for r in roots if os.fspath(r)]
    for root in real_roots:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    shown = ", ".join(os.fspath(r) for r in roots) or "none"
    raise PathError(
        f"path '{text}' resolves to '{resolved}', outside every allowed folder ({shown})",
        detail={"path": text, "resolved": str(resolved), "roots": [os.fspath(r) for r in roots]},
    )
