"""Checks across a whole config (data_dir against the libraries, server.host, secret lengths); what may be shown."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from agent.config_model import Config
    from agent.yamlreader import Reader

# A secret this short is ordinary text ("ab" is in "table"): it could not be kept out of the logs
# without mangling every line that happens to contain it, so config validation refuses it instead.
MIN_SECRET = 4
MASK: Final = "********"
SECRET_KEYS: Final = {"api_key", "password", "token"}
_URL_CREDENTIALS: Final = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@]*):([^/\s@]+)@")
_KEY_IN_QUERY: Final = re.compile(r"(?i)([?&](?:apikey|api_key|token|x-plex-token)=)[^&\s\"']+")


def mask_url(text: str) -> str:
    """Text with the password of every `scheme://user:password@` replaced by ********."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", text)


def mask_values(text: str) -> str:
    """Text with URL passwords and `?apikey=` / `&token=` query values masked, whatever their length."""
    return _KEY_IN_QUERY.sub(lambda m: m.group(1) + MASK, mask_url(text))


def url_password(url: str) -> str:
    """The password inside a URL's userinfo, or ''."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def line_of(root: Reader, *keys: str | int) -> int:
    """The line of a value by its key path from the root (the nearest existing parent's line otherwise)."""
    node = root.node
    for key in keys:
        value = node.value
        child = value.get(key) if isinstance(value, dict) else (
            value[key] if isinstance(value, list) and isinstance(key, int) and key < len(value) else None)
        if child is None:
            break
        node = child
    return node.line


def check_config(cfg: Config, root: Reader) -> None:
    """Note every cross-section problem on `root` (the config's own sections are already valid)."""
    _check_data_dir(cfg, root)
    _check_host(cfg, root)
    _check_secrets(cfg, root)


def _check_data_dir(cfg: Config, root: Reader) -> None:
    """data_dir must be (or become) a folder, and never hold or sit inside a library."""
    where = line_of(root, "data_dir")
    existing = cfg.data_dir
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file, not a folder" if existing == cfg.data_dir else f"cannot be created: {existing} is a file"
        root.note(f"data_dir: {cfg.data_dir} {what} (line {where})")
    for i, lib in enumerate(cfg.libraries):
        if cfg.data_dir == lib.path or cfg.data_dir.is_relative_to(lib.path):
            root.note(f"data_dir: {cfg.data_dir} is inside library '{lib.name}' ({lib.path}); the agent's own "
                      f"writes there would set off rescans without end: move data_dir out of every library "
                      f"(line {where})")
        elif lib.path.is_relative_to(cfg.data_dir):
            root.note(f"libraries[{i}].path: library '{lib.name}' ({lib.path}) is inside data_dir "
                      f"({cfg.data_dir}), where the agent keeps its database and cache: move one of them "
                      f"(line {line_of(root, 'libraries', i, 'path')})")


def _check_host(cfg: Config, root: Reader) -> None:
    """server.host must be an address of this machine's kind: an IP literal or a name that resolves."""
    host = cfg.server.host
    if host in ("", "localhost"):
        return
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        root.note(f"server.host '{host}' does not resolve ({reason}); use an IP address such as 127.0.0.1 "
                  f"or 0.0.0.0, or a name this machine knows (line {line_of(root, 'server', 'host')})")


def _check_secrets(cfg: Config, root: Reader) -> None:
    """Every non-empty secret is at least MIN_SECRET characters long."""
    found: list[tuple[str, tuple[Any, ...], str]] = [
        ("server.api_key", ("server", "api_key"), cfg.server.api_key),
        ("providers.tmdb.api_key", ("providers", "tmdb", "api_key"), cfg.providers.tmdb.api_key),
        ("providers.fanart.api_key", ("providers", "fanart", "api_key"), cfg.providers.fanart.api_key),
    ]
    for i, p in enumerate(cfg.players):
        found += [(f"players[{i}].password", ("players", i, "password"), p.password),
                  (f"players[{i}].api_key", ("players", i, "api_key"), p.api_key),
                  (f"players[{i}].token", ("players", i, "token"), p.token),
                  (f"players[{i}].url", ("players", i, "url"), url_password(p.url))]
    for name, keys, value in found:
        if value and len(value) < MIN_SECRET:
            what = "the password in this URL" if name.endswith(".url") else "this secret"
            root.note(f"{name}: {what} must be at least {MIN_SECRET} characters long, so that it can be kept "
                      f"out of the logs (line {line_of(root, *keys)})")



def effective(cfg: Config, mask: bool = True) -> dict[str, Any]:
    """The effective config as plain data (check-config's output), secrets and URL passwords masked."""

    def conv(value: Any, key: str = "") -> Any:
        """Plain data for one value, masked by its key."""
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: conv(getattr(value, f.name), f.name) for f in dataclasses.fields(value)}
        if isinstance(value, dict):
            return {k: conv(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [conv(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        if mask and key in SECRET_KEYS and value:
            return MASK
        if mask and key == "url" and isinstance(value, str):
            return mask_url(value)
        return value

    out = conv(cfg)
    out.pop("path", None)  # the config file itself, not a library's folder
    return out


def secrets(cfg: Config) -> list[str]:
    """Every secret value in the config (for log redaction)."""
    found = [cfg.server.api_key, cfg.providers.tmdb.api_key, cfg.providers.fanart.api_key]
    found.append(url_password(cfg.store.url))
    for p in cfg.players:
        found += [p.password, p.api_key, p.token, url_password(p.url)]
    return [s for s in found if s]  # validation refused any shorter than MIN_SECRET
