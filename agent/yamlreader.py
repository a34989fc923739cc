"""YAML read with line numbers: every value keeps its line, readers track key paths and unknown keys."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from typing import Any

import yaml

from agent.errors import ConfigError

ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Node:
    """A YAML value with the line it came from."""

    __slots__ = ("expanded", "line", "value")

    def __init__(self, value: Any, line: int, expanded: bool = False) -> None:
        self.value = value
        self.line = line
        self.expanded = expanded


def convert(node: yaml.Node) -> Node:
    """Turn a composed YAML node into nested Node values, keeping line numbers."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node)) if not isinstance(key_node, yaml.ScalarNode) \
                else key_node.value
            if str(key) in out:
                raise ConfigError(f"duplicate key '{key}' at line {key_node.start_mark.line + 1}")
            child = convert(value_node)
            child.line = key_node.start_mark.line + 1  # messages point at the key, not a block value below it
            out[str(key)] = child
        return Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([convert(n) for n in node.value], line)
    value = yaml.safe_load(yaml.serialize(node))
    if isinstance(value, str) and ENV_RE.search(value):
        return Node(expand_env(value), line, expanded=True)
    return Node(value, line)


def expand_env(text: str) -> str:
    """Replace ${NAME} and ${NAME:-default} from the environment (unset -> empty, or the default)."""
    return ENV_RE.sub(lambda m: os.environ.get(m.group(1)) or m.group(2) or "", text)


def scalar(text: str) -> Any:
    """What an unquoted YAML scalar with this text would be (int, float, bool, null or the string)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, int | float | bool) or value is None else text


def plain(value: Any) -> Any:
    """A converted value as plain Python again (for messages)."""
    if isinstance(value, Node):
        return plain(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


class Reader:
    """Walks a mapping, tracking the key path for messages and flagging unknown keys."""

    def __init__(self, node: Node, path: str, known: tuple[str, ...] = ()) -> None:
        if not isinstance(node.value, dict):
            raise ConfigError(f"{path or 'config'}: expected a mapping (line {node.line})")
        self.node, self.path, self.used = node, path, set()
        if known:  # report a typo ("pth") before the required key it hides ("path")
            for key, child in node.value.items():
                if key not in known:
                    hint = did_you_mean(key, known)
                    raise ConfigError(f"{self._key(key)}: unknown key (line {child.line}){hint}")

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        """Whether the key is present and not null."""
        child = self.node.value.get(key)
        return child is not None and child.value is not None

    def raw(self, key: str) -> Node | None:
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
            value = scalar(value)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(TYPE_NAMES.get(k, k.__name__) for k in kinds)
            quoted = isinstance(value, str) and not child.expanded and isinstance(scalar(value), kinds) \
                and not isinstance(scalar(value), str)
            hint = " (remove the quotes)" if quoted else ""
            got = plain(value)
            raise ConfigError(f"{self._key(key)}: expected {names}, got {got!r} (line {child.line}){hint}")
        return value

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError for this key with its line."""
        child = self.node.value.get(key)
        line = child.line if child is not None else self.node.line
        return ConfigError(f"{self._key(key)}: {message} (line {line})")

    def child(self, key: str) -> Reader | None:
        """A nested mapping reader, or None when absent."""
        node = self.raw(key)
        return None if node is None else Reader(node, self._key(key))

    def items(self, key: str) -> list[Node]:
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
                hint = did_you_mean(key, tuple(self.used))
                raise ConfigError(f"{self._key(key)}: unknown key (line {child.line}){hint}")


def did_you_mean(key: str, known: tuple[str, ...]) -> str:
    """A '; did you mean ...?' suffix naming the closest known key, or ''."""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def fields_of(cls: type) -> tuple[str, ...]:
    """The field names of a config dataclass: the keys its YAML mapping may have."""
    return tuple(f.name for f in dataclasses.fields(cls))
