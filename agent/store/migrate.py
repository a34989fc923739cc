"""The numbered migrations both backends are built from, and the errors a migration can end in."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

from agent.errors import UserError


class DatabaseTooNew(UserError):
    """The database was written by a newer agent than this one."""


class MigrationFailed(RuntimeError):
    """A migration raised; it was rolled back and the schema stays at the version before it."""


def migrations() -> list[tuple[int, str, str]]:
    """Return (version, name, sql) for every packaged migration, in order."""
    out = []
    for entry in resources.files("agent.store").joinpath("migrations").iterdir():
        match = re.match(r"^(\d{4})_(.+)\.sql$", entry.name)
        if match:
            out.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    out.sort()
    for expected, (version, name, _) in enumerate(out, start=1):
        if version != expected:
            raise RuntimeError(f"migration numbering has a gap at {version:04d}_{name}")
    return out


def schema_version() -> int:
    """The schema version this code expects."""
    return len(migrations())


def split_sql(sql: str) -> list[str]:
    """Split a migration into statements (executescript would commit implicitly)."""
    statements, buf = [], []
    for line in sql.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") or not stripped:
            continue
        buf.append(line)
        if sqlite3.complete_statement("\n".join(buf)):
            statements.append("\n".join(buf))
            buf = []
    if buf and "\n".join(buf).strip():
        statements.append("\n".join(buf))
    return statements
