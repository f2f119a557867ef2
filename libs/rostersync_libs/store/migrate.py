"""Versioned schema migrations: ``migrations/NNNN_name.sql``, applied once each, in order.

Every service, the CLI and the admin API migrate at start (:func:`migrate_at_start`): whichever
comes first applies what is missing, under an advisory lock, so none depends on another having
started. Each applied migration's SHA-256 is kept; a bundled file that no longer matches what was
applied stops the start (an applied migration must never be edited: add a new one).
"""

from __future__ import annotations

import hashlib
import logging
from importlib import resources
from typing import NamedTuple

import asyncpg

log = logging.getLogger(__name__)

# Serialises concurrent processes migrating the same database (any constant shared by all of them).
MIGRATION_LOCK = 0x726F7374

STATE_SQL = """
SELECT to_regclass('schema_migrations') IS NOT NULL AS has_table,
       EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('schema_migrations')
               AND attname = 'checksum' AND NOT attisdropped) AS has_checksum
"""
CREATE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version int PRIMARY KEY, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())"
)
# Schemas migrated before checksums were kept get the column; their rows are filled in below.
CHECKSUM_SQL = "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text"


class Migration(NamedTuple):
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


class MigrationChangedError(RuntimeError):
    """A migration file differs from the one this schema applied."""


def migration_files() -> list[Migration]:
    """Every bundled migration, by version."""
    folder = resources.files("rostersync_libs.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append(Migration(version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def _check(applied: dict[int, str | None], files: list[Migration]) -> None:
    for migration in files:
        kept = applied.get(migration.version)
        if kept is not None and kept != migration.checksum:
            raise MigrationChangedError(
                f"migration {migration.name} differs from the one this schema applied"
                " (an applied migration is never edited: add a new one)"
            )


async def _applied(conn: asyncpg.Connection) -> dict[int, str | None] | None:
    """version → checksum of what this schema applied; None: the table or its checksums are
    missing (only the locked path may create them)."""
    state = await conn.fetchrow(STATE_SQL)
    if not state["has_table"] or not state["has_checksum"]:
        return None
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations this schema lacks; returns the names applied."""
    files = migration_files()
    applied = await _applied(conn)
    if applied is not None:
        _check(applied, files)
        if all(applied.get(m.version) is not None for m in files):
            return []  # up to date: no lock taken, nothing written
    names: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(CREATE_SQL)
        await conn.execute(CHECKSUM_SQL)
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        applied = {r["version"]: r["checksum"] for r in rows}
        _check(applied, files)
        for migration in files:
            if migration.version not in applied:
                await conn.execute(migration.sql)
                names.append(migration.name)
            elif applied[migration.version] is not None:
                continue
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"
                " ON CONFLICT (version) DO UPDATE SET checksum = excluded.checksum",
                migration.version,
                migration.name,
                migration.checksum,
            )
    if names:
        log.info("applied migrations %s", names)
    return names


async def migrate_at_start(pool: asyncpg.Pool) -> list[str]:
    """What a process runs at start. A least-privilege role (db_roles.py) may not create tables:
    it goes on, and the schema owner's role migrates (its reads find what exists)."""
    async with pool.acquire() as conn:
        try:
            return await migrate(conn)
        except asyncpg.InsufficientPrivilegeError as exc:
            log.info("schema not migrated by this login (%s): its owner's role migrates", exc)
            return []
