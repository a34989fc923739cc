"""SQLite store: schema, migrations and the connection pair."""

from agent.store.db import Database, DatabaseTooNew, migrate_file, schema_version

__all__ = ["Database", "DatabaseTooNew", "migrate_file", "schema_version"]
