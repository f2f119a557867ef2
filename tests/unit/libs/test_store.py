"""The store's table registry matches its migrations; the migrations are where every process
finds them."""

from __future__ import annotations

import re
from pathlib import Path

from rostersync_libs.store.migrate import migration_files
from rostersync_libs.store.tables import ALL_TABLES, ENTITY_TABLES, ROSTER_TABLES

CREATED = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)", re.IGNORECASE)
DROPPED = re.compile(r"DROP TABLE (?:IF EXISTS )?([a-z_]+)", re.IGNORECASE)


def test_the_registry_lists_every_table_the_migrations_make_and_no_other() -> None:
    made: set[str] = set()
    for migration in migration_files():
        made |= set(CREATED.findall(migration.sql))
        made -= set(DROPPED.findall(migration.sql))
    assert sorted(ALL_TABLES) == sorted(made)
    assert len(set(ALL_TABLES)) == len(ALL_TABLES)


def test_entity_tables_are_the_roster_tables_by_entity_name() -> None:
    assert {e.value: t for e, t in ROSTER_TABLES.items()} == ENTITY_TABLES
    assert ENTITY_TABLES["roles"] == "user_roles"


def test_migrations_have_distinct_versions_and_checksums() -> None:
    files = migration_files()
    assert [m.version for m in files] == sorted({m.version for m in files})
    assert all(len(m.checksum) == 64 for m in files)
    assert files[0].name == "0001_initial.sql"


ROOT = Path(__file__).resolve().parents[3]


def test_no_migration_is_left_where_the_runner_does_not_look() -> None:
    # Migrations moved from the writer to the store: one added under the old folder (a merge of
    # a branch from before the move) would never run; `git mv` it to the store's folder.
    assert not list((ROOT / "services").rglob("*.sql"))


def test_every_service_migrates_at_start() -> None:
    for service in ("fetcher", "validator", "mapper", "writer", "api"):
        app = ROOT / "services" / service / f"rostersync_{service}" / "app.py"
        assert "migrate" in app.read_text(encoding="utf-8"), service
