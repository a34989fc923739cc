"""YAML read with line numbers: every value keeps its line, readers track key paths and unknown keys."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
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


MAX_VALUES = 20_000  # a real config has a few hundred; YAML aliases must not expand past this
MAX_DEPTH = 40  # a real config nests four or five levels


class Budget:
    """How many values a document may still expand to, so an alias bomb stops early."""

    def __init__(self, limit: int = MAX_VALUES) -> None:
        self.left = limit
        self.limit = limit

    def spend(self, node: yaml.Node, depth: int) -> None:
        """Count one value; a ConfigError once the document is too large or too deep."""
        self.left -= 1
        line = node.start_mark.line + 1
        if self.left < 0:
            raise ConfigError(f"config: more than {self.limit} values once YAML aliases are expanded "
                              f"(line {line}); anchors and aliases (&name / *name) nest too much")
        if depth > MAX_DEPTH:
            raise ConfigError(f"config: values nested more than {MAX_DEPTH} levels deep (line {line})")


def convert(node: yaml.Node, budget: Budget | None = None, depth: int = 0) -> Node:
    """Turn a composed YAML node into nested Node values, keeping line numbers; aliases count every use."""
    budget = budget or Budget()
    budget.spend(node, depth)
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"config: a key must be plain text, not a list or mapping (line {key_line})")
            key = key_node.value
            if key in out:
                raise ConfigError(f"duplicate key '{key}' at line {key_line}")
            child = convert(value_node, budget, depth + 1)
            child.line = key_line  # messages point at the key, not a block value below it
            out[key] = child
        return Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([convert(n, budget, depth + 1) for n in node.value], line)
    try:
        value = yaml.constructor.SafeConstructor().construct_object(node)  # the tag compose resolved
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config: value at line {line} cannot be read: {problem}") from None
    if isinstance(value, str) and ENV_RE.search(value):
        return Node(expand_env(value), line, expanded=True)
    return Node(value, line)


MAX_DOCUMENT_BYTES = 1024 * 1024  # a config is a few kilobytes


def read_document(path: Path) -> str:
    """A YAML file's text: a regular file of at most 1 MiB, UTF-8 (a bad byte is named with its line)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ConfigError(f"config file {path} is not a regular file")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ConfigError(f"config file {path} is larger than 1 MiB; is it the right file?")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{path}: not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}, column {column} "
                          f"(offset {exc.start}); save the file as UTF-8") from None


def compose_document(text: str, source: str) -> Node:
    """Parse YAML text into Nodes; broken YAML, deep nesting and alias bombs are ConfigErrors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: values nested too deeply (line {deepest_line(text)})") from None
    return convert(node) if node is not None else Node({}, 1)


def deepest_line(text: str) -> int:
    """The line where flow brackets nest deepest (where a too-deep document gave up)."""
    depth = best = 0
    line = best_line = 1
    for char in text:
        if char == "\n":
            line += 1
        elif char in "[{":
            depth += 1
            if depth > best:
                best, best_line = depth, line
        elif char in "]}":
            depth -= 1
    return best_line


def in_file_order(problems: list[str]) -> list[str]:
    """Problems sorted by the first `line N` each names (those naming none first), ties kept in order."""

    def line_of(message: str) -> int:
        """The line number a message names, or 0."""
        match = re.search(r"\bline (\d+)", message)
        return int(match.group(1)) if match else 0

    return sorted(problems, key=line_of)


def expand_env(text: str) -> str:
    """Expand ${NAME} and ${NAME:-default} with values of the environment (unset -> empty, or the default)."""
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
    """Walks a mapping, tracking the key path for messages; problems are collected, not raised one by one.

    `problems` is shared by every reader of one document, so a config with five mistakes reports all five.
    A wrong value of a key with a default is noted and the default used; a missing required key, or a
    wrong one without a default, raises (the caller skips that library or player and carries on).
    """

    def __init__(self, node: Node, path: str, known: tuple[str, ...] = (),
                 problems: list[str] | None = None) -> None:
        if not isinstance(node.value, dict):
            raise ConfigError(f"{path or 'config'}: expected a mapping (line {node.line})")
        self.node, self.path, self.used = node, path, set()
        self.problems: list[str] = [] if problems is None else problems
        self.reported: set[str] = set()
        if known:  # report a typo ("pth") before the required key it hides ("path")
            for key, child in node.value.items():
                if key not in known:
                    self.reported.add(key)
                    self.note(f"{self._key(key)}: unknown key (line {child.line}){did_you_mean(key, known)}")

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def note(self, message: str) -> None:
        """Record one problem (kept in order, each once)."""
        if message not in self.problems:
            self.problems.append(message)

    def problem(self, key: str, message: str) -> None:
        """Record a problem with this key, naming its path and line."""
        self.note(self.error(key, message).message)

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
        """A scalar of the given type, or the default; a wrong value is noted and the default returned."""
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
            got = shown(plain(value))
            error = ConfigError(f"{self._key(key)}: expected {names}, got {got} (line {child.line}){hint}")
            if default is dataclasses.MISSING:
                raise error
            self.note(error.message)
            return default
        return value

    def number(self, key: str, default: float, lo: float, hi: float, *, above: bool = False) -> float:
        """A finite number in [lo, hi] (or (lo, hi] with `above`); out of range is noted, the default used."""
        value = self.get(key, float, default)
        if value != value or value in (float("inf"), float("-inf")):
            self.problem(key, f"must be a finite number, got {value}")
        elif above and value <= lo:
            self.problem(key, f"must be greater than {lo:g}, got {value}")
        elif value < lo:
            self.problem(key, f"must be at least {lo:g}, got {value}")
        elif value > hi:
            self.problem(key, f"must be at most {hi:g}, got {value}")
        else:
            return value
        return default

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        """An integer in [lo, hi]; out of range is noted and the default used."""
        value = self.get(key, int, default)
        if not lo <= value <= hi:
            self.problem(key, f"must be between {lo} and {hi}, got {value}")
            return default
        return value

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError for this key with its line."""
        child = self.node.value.get(key)
        line = child.line if child is not None else self.node.line
        return ConfigError(f"{self._key(key)}: {message} (line {line})")

    def child(self, key: str) -> Reader | None:
        """A nested mapping reader sharing this one's problems, or None when absent."""
        node = self.raw(key)
        return None if node is None else Reader(node, self._key(key), problems=self.problems)

    def items(self, key: str) -> list[Node]:
        """A list value (empty when absent)."""
        node = self.raw(key)
        if node is None:
            return []
        if not isinstance(node.value, list):
            raise ConfigError(f"{self._key(key)}: expected a list (line {node.line})")
        return node.value

    def each(self, key: str, path: str, known: tuple[str, ...] = ()) -> Iterator[tuple[int, Reader]]:
        """A reader per mapping in a list; an entry that is not a mapping is noted and skipped."""
        try:
            nodes = self.items(key)
        except ConfigError as exc:
            self.note(exc.message)
            return
        for i, node in enumerate(nodes):
            try:
                reader = Reader(node, f"{path}[{i}]", known, self.problems)
            except ConfigError as exc:
                self.note(exc.message)
                continue
            yield i, reader

    def done(self) -> None:
        """Note keys that were never read: typos must not pass silently."""
        for key, child in self.node.value.items():
            if key not in self.used and key not in self.reported:
                self.reported.add(key)
                hint = did_you_mean(key, tuple(self.used))
                self.note(f"{self._key(key)}: unknown key (line {child.line}){hint}")


def shown(value: Any) -> str:
    """A value for a message: its repr, cut short (a list of a thousand aliases must not fill the screen)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def did_you_mean(key: str, known: tuple[str, ...]) -> str:
    """A '; did you mean ...?' suffix naming the closest known key, or ''."""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def fields_of(cls: type) -> tuple[str, ...]:
    """The field names of a config dataclass: the keys its YAML mapping may have."""
    return tuple(f.name for f in dataclasses.fields(cls))
