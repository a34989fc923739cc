"""The store: schema, migrations, and every SQL statement; on SQLite (one box) or PostgreSQL (several agents)."""

from __future__ import annotations

from pathlib import Path

from agent.store.base import Database
from agent.store.db import DatabaseTooNew, SqliteDatabase, migrate_file, schema_version
from agent.store.pg import PgDatabase, check_url

__all__ = ["Database", "DatabaseTooNew", "PgDatabase", "SqliteDatabase", "check_store", "is_url", "migrate_file",
           "open_database", "schema_version"]


def is_url(target: str) -> bool:
    """Whether a store target names a PostgreSQL server rather than an SQLite file."""
    return target.startswith(("postgresql://", "postgres://"))


def open_database(target: str | Path) -> Database:
    """The store at `target`: a postgresql:// URL, else the path of an SQLite file."""
    if isinstance(target, str) and is_url(target):
        return PgDatabase(target)
    return SqliteDatabase(Path(target))


def check_store(target: str, check: bool = True) -> tuple[int, int]:
    """Migrate the store at `target` before the agent starts; (schema before, after).

    A store that cannot be used (a damaged or read-only SQLite file, an unreachable PostgreSQL, a newer
    schema) raises a UserError that says what to do. With `check`, an SQLite file is also checked for damage.
    """
    if is_url(target):
        return check_url(target)
    return migrate_file(Path(target), check=check)
