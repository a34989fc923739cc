"""JSON from outside (HTTP bodies, webhook payloads, /ws frames) decoded strictly, with the bad value named.

Python's json accepts what no other JSON reader does, and what later breaks a reply or a write:
NaN and Infinity (a reply holding them is not JSON to a browser), 1e999 (read as infinity),
integers of any size (SQLite holds 64 bits), lone UTF-16 surrogates such as "\\ud800" (not text:
they cannot be written as UTF-8) and nesting deep enough to raise RecursionError. All are refused here
with a UserError naming where in the document the value is, e.g. `movie.tmdbId: ...`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from agent.errors import UserError

MAX_DEPTH: Final = 64  # real payloads nest five or six levels
MAX_INT: Final = 2**63 - 1  # SQLite INTEGER
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class _Constant:
    """A NaN / Infinity / -Infinity token, kept until the walk can say where it was."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def loads(text: str | bytes, what: str = "body") -> Any:
    """Decode JSON strictly; a UserError names the problem and the key path (`what` names the document)."""
    try:
        value = json.loads(text, parse_constant=_Constant)
    except RecursionError:
        raise UserError(f"{what} is nested too deeply (more than {MAX_DEPTH} levels)") from None
    check(value, what)
    return value


def where(path: str, key: str | int) -> str:
    """The key path of a child: `movie.title`, `actors[0]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check(value: Any, what: str = "body") -> None:
    """Refuse non-finite numbers, out-of-range integers, lone surrogates, NUL and deep nesting anywhere in `value`."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UserError(f"{what} is nested too deeply (more than {MAX_DEPTH} levels, at {path or 'the top'})")
        problem = problem_of(item)
        if problem:
            raise UserError(f"{path}: {problem}" if path else f"{what}: {problem}", detail={"field": path})
        if isinstance(item, dict):
            for key, child in item.items():
                if (problem := text_problem(key)) is not None:
                    raise UserError(f"{where(path, key[:40])}: the key {problem}", detail={"field": path})
                stack.append((child, where(path, key), depth + 1))
        elif isinstance(item, list):
            stack.extend((child, where(path, i), depth + 1) for i, child in enumerate(item))


def problem_of(value: Any) -> str | None:
    """What is wrong with one scalar (None when it is fine)."""
    if isinstance(value, _Constant):
        return f"{value.name} is not a number JSON allows (numbers must be finite)"
    if isinstance(value, float) and not math.isfinite(value):
        return "number is too large (numbers must be finite)"
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT - 1 <= value <= MAX_INT:
        return "integer is out of range (at most 2^63 - 1 in size)"
    if isinstance(value, str):
        return text_problem(value)
    return None


def text_problem(text: str) -> str | None:
    """Why a string is not text we can keep (a lone surrogate, a NUL character), or None."""
    if _SURROGATE.search(text):
        return "text contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not a character"
    if "\x00" in text:
        return "text contains a NUL character (\\u0000)"
    return None
