"""The store's SQL is written once, in SQLite's dialect; this module turns it into PostgreSQL's.

Every statement in `store/` runs on both backends. Most of it is already common SQL; what differs is
rewritten here, once per distinct statement (the result is cached):

- placeholders: `?` and `:name` become `%s` and `%(name)s` (a literal `%` becomes `%%`);
- `INSERT OR IGNORE INTO t ...` becomes `INSERT INTO t ... ON CONFLICT DO NOTHING`;
- `INDEXED BY ix` (a SQLite planner hint) is dropped;
- `LIKE` becomes `ILIKE` (SQLite's LIKE ignores ASCII case; PostgreSQL's does not);
- `x IS ?` / `x IS NOT ?` become `IS [NOT] DISTINCT FROM` (PostgreSQL's IS takes only NULL, TRUE, FALSE);
- `json_extract(col, '$.key')` becomes `(col::jsonb ->> 'key')`, and `json_each(p)` over a JSON array
  becomes `json_array_elements_text(p::json)`;
- an INSERT into a table with an `id` key gets `RETURNING id`, so `cursor.lastrowid` works as in SQLite.

The words are matched outside string literals, quoted names and comments only. Statements that
cannot be rewritten this way (`INSERT OR REPLACE`, `PRAGMA`) are refused with a clear error, so a new
one is found by the contract suite (tests/test_store_contract.py) rather than in a user's log.

Migrations are DDL: `ddl_to_postgres` maps SQLite's column types to PostgreSQL's (INTEGER -> BIGINT,
REAL -> DOUBLE PRECISION, BLOB -> BYTEA, `INTEGER PRIMARY KEY` -> an identity column; a column SQLite lets
hold numbers and text, playback_state.player_item_id, is TEXT), so both backends are built from the same
numbered files.
"""

from __future__ import annotations

import functools
import re
from typing import Final

# Tables whose `id` is an INTEGER PRIMARY KEY (an identity column on PostgreSQL).
ID_TABLES: Final = frozenset({
    "libraries", "movies", "series", "seasons", "episodes", "asset_references", "job_queue", "webhook_events",
    "media_player_groups", "media_players", "path_mappings", "playback_state",
})


class UnportableSql(ValueError):
    """A statement uses SQLite-only SQL this module does not rewrite."""


_TOKEN = re.compile(
    r"""('(?:[^']|'')*')        # a string literal
      |("(?:[^"]|"")*")         # a quoted name
      |(--[^\n]*)               # a comment
      |(\?)                     # a positional placeholder
      |(?<!:):([A-Za-z_]\w*)    # a named placeholder (not a :: cast)
      |(%)                      # a literal percent sign
    """,
    re.VERBOSE,
)
_WORDS: Final = (
    (re.compile(r"\bINDEXED\s+BY\s+\w+", re.I), ""),
    (re.compile(r"\bNOT\s+LIKE\b", re.I), "NOT ILIKE"),
    (re.compile(r"(?<!NOT )\bLIKE\b", re.I), "ILIKE"),
    (re.compile(r"\bIS\s+NOT\s+(?=%)", re.I), "IS DISTINCT FROM "),
    (re.compile(r"\bIS\s+(?=%)", re.I), "IS NOT DISTINCT FROM "),
    (re.compile(r"\bjson_each\(\s*(%(?:\(\w+\))?s)\s*\)", re.I), r"json_array_elements_text(\1::json) AS value"),
)
_JSON_EXTRACT = re.compile(r"json_extract\(\s*([\w.]+)\s*,\s*'\$\.(\w+)'\s*\)", re.I)
_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.I)
_INSERT_INTO = re.compile(r"^\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+(\w+)", re.I)
_RETURNING = re.compile(r"\bRETURNING\b", re.I)
_REFUSED = re.compile(r"^\s*(?:INSERT\s+OR\s+REPLACE|REPLACE\s+INTO|UPDATE\s+OR\s+\w+|PRAGMA)\b", re.I)


@functools.lru_cache(maxsize=4096)
def to_postgres(sql: str, many: bool = False) -> tuple[str, bool]:
    """The statement in PostgreSQL's dialect, and whether it returns the new row's id (for lastrowid)."""
    if _REFUSED.match(sql):
        raise UnportableSql(f"SQLite-only statement, not rewritten for PostgreSQL: {sql.strip()[:80]}")
    sql = _JSON_EXTRACT.sub(r"(\1::jsonb ->> '\2')", sql)
    parts: list[str] = []
    last = 0
    for m in _TOKEN.finditer(sql):
        parts.append(_rewrite_words(sql[last:m.start()]))
        if m.group(1) or m.group(2):
            parts.append(m.group(0).replace("%", "%%"))  # psycopg reads every % of the statement
        elif m.group(3):
            pass  # comments are dropped: they could hold a % or a ? of their own
        elif m.group(4):
            parts.append("%s")
        elif m.group(5):
            parts.append(f"%({m.group(5)})s")
        else:
            parts.append("%%")
        last = m.end()
    parts.append(_rewrite_words(sql[last:]))
    out = "".join(parts)
    # words that name a placeholder (IS ?) are rewritten once the placeholders exist
    for pattern, repl in _WORDS[3:]:
        out = _outside_literals(out, pattern, repl)
    if _OR_IGNORE.match(out):
        out = _OR_IGNORE.sub("INSERT INTO", out, count=1)
        out = _before_returning(out, " ON CONFLICT DO NOTHING")
    insert = _INSERT_INTO.match(out)
    returns_id = bool(insert and not many and insert.group(1).lower() in ID_TABLES and not _RETURNING.search(out))
    if returns_id:
        out = out.rstrip().rstrip(";") + " RETURNING id"
    return out, returns_id


def _rewrite_words(text: str) -> str:
    """The word rewrites that do not involve placeholders, on text outside literals."""
    for pattern, repl in _WORDS[:3]:
        text = pattern.sub(repl, text)
    return text


_LITERAL = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def _outside_literals(sql: str, pattern: re.Pattern[str], repl: str) -> str:
    """pattern.sub on the parts of sql outside string literals and quoted names."""
    parts, last = [], 0
    for m in _LITERAL.finditer(sql):
        parts.append(pattern.sub(repl, sql[last:m.start()]))
        parts.append(m.group(0))
        last = m.end()
    parts.append(pattern.sub(repl, sql[last:]))
    return "".join(parts)


def _before_returning(sql: str, clause: str) -> str:
    """Insert a clause before a trailing RETURNING (or at the end)."""
    m = _RETURNING.search(sql)
    if m is None:
        return sql.rstrip().rstrip(";") + clause
    return sql[:m.start()].rstrip() + clause + " " + sql[m.start():]


_DDL_TYPES: Final = (
    # a player's item id is Kodi's number or Jellyfin's and Plex's string: SQLite keeps each as given,
    # PostgreSQL needs one type that holds both
    (re.compile(r"\bplayer_item_id\s+INTEGER\b", re.I), "player_item_id TEXT"),
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\b", re.I), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
)


def ddl_to_postgres(sql: str) -> str:
    """A migration statement with SQLite's column types mapped to PostgreSQL's."""
    for pattern, repl in _DDL_TYPES:
        sql = _outside_literals(sql, pattern, repl)
    return sql
