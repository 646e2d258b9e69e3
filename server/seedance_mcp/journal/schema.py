"""The journal's schema: numbered SQL files, one scheme for both databases.

`migrations/sqlite/` and `migrations/postgres/` hold the same versions (`NNNN_name.sql`, applied in name order),
each in its database's dialect. A store applies, once each, the versions its database lacks, and records them in its
`schema_migrations` table (`sqlite.migrate`, `postgres.migrate`). A change of schema is a new version in both
folders (tests/contract/test_journal_schema.py checks that they list the same versions).
"""

from __future__ import annotations

import importlib.resources
from typing import Literal

Database = Literal["sqlite", "postgres"]


def migrations(database: Database) -> list[tuple[str, str]]:
    """The schema's SQL files for `database`, `(version, sql)` in the order they apply: `0001_jobs.sql` is version
    `0001_jobs`."""
    folder = importlib.resources.files("seedance_mcp.journal").joinpath("migrations", database)
    files = sorted((entry for entry in folder.iterdir() if entry.name.endswith(".sql")), key=lambda entry: entry.name)
    return [(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8")) for entry in files]
