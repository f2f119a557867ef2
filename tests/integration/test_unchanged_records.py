"""Unchanged records of a re-sync travel as compact lists, end to end on Kafka + Postgres."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from rostersync_cli.actions import print_run_report, print_runs
from rostersync_libs.events import EntityType, unchanged_list
from rostersync_libs.ids import new_run_id
from rostersync_libs.settings import ServiceSettings
from rostersync_writer.batch import apply_records

from tests import districts
from tests.bundles import write_bundle, write_tenants
from tests.e2e import cli_settings, ids, replay_differences, sync

pytestmark = pytest.mark.integration

TABLES = ("orgs", "academic_sessions", "courses", "classes", "users", "enrollments")


async def snapshot(db: asyncpg.Connection) -> dict[str, set[tuple[Any, ...]]]:
    """Every row's content and its last change, per table."""
    return {
        t: {
            tuple(r)
            for r in await db.fetch(
                f"SELECT sourced_id, internal_id, content_hash, payload, updated_at, archived_at"
                f" FROM {t}"
            )
        }
        for t in TABLES
    }


async def run_row(db: asyncpg.Connection, run_id: object) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT status, file_counts, unchanged_counts FROM sync_runs WHERE run_id = $1", run_id
    )
    assert row is not None
    return row


async def test_unchanged_resync_sends_lists_keeps_rows_and_reports_warnings_again(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Sam's enabledUser is "TRUE": kept by the lenient profile, with a warning.
    users = [districts.USERS_1_1[0], districts.USERS_1_1[1] | {"enabledUser": "TRUE"},
             *districts.USERS_1_1[2:]]  # fmt: skip
    full = districts.bundle_1_1() | {"users": users}
    tenants = write_tenants(tmp_path / "t.toml", "d1", write_bundle(tmp_path / "b1", full))
    first = await sync(settings, tenants, "d1")
    before = await snapshot(db)
    total = sum(len(rows) for rows in full.values())
    assert orjson.loads((await run_row(db, first))["unchanged_counts"]) == {}

    second = await sync(settings, tenants, "d1")
    row = await run_row(db, second)
    assert row["status"] == "completed"
    unchanged = orjson.loads(row["unchanged_counts"])
    # Every record but Sam (he has a warning) was listed, not sent whole.
    assert sum(unchanged.values()) == total - 1
    assert unchanged["users"] == len(users) - 1
    # Nothing changed, not even updated_at; every record counts as seen by the second run.
    assert await snapshot(db) == before
    for table in TABLES:
        stale = await db.fetchval(
            f"SELECT count(*) FROM {table} WHERE last_seen_run <> $1 OR archived_at IS NOT NULL",
            second,
        )
        assert stale == 0, table
    # The operator sees it: in the run's report and in the list of runs.
    await print_run_report(cli_settings(settings, tenants), "d1", second, limit=5)
    await print_runs(cli_settings(settings, tenants), "d1", 5)
    printed = capsys.readouterr().out
    assert (
        "already held unchanged (sent as lists, rows not rewritten): academicSessions 3" in printed
    )
    assert f"users {len(users) - 1}" in printed
    assert any(str(second) in line and f" {total - 1} " in line for line in printed.splitlines())

    # Sam travelled whole, so his warning is in the second run's report too.
    warned = await db.fetch(
        "SELECT DISTINCT run_id FROM findings WHERE sourced_id = 'u-s1' AND severity = 'warning'"
    )
    assert {r["run_id"] for r in warned} == {first, second}

    # A third snapshot renames Tina and drops Kim: Tina is sent whole, Kim is archived.
    renamed = full | {
        "users": [users[0] | {"givenName": "Tine"}, users[1], users[3]],
        "enrollments": [e for e in districts.ENROLLMENTS if e["userSourcedId"] != "u-s2"],
    }
    tenants3 = write_tenants(tmp_path / "t3.toml", "d1", write_bundle(tmp_path / "b3", renamed))
    third = await sync(settings, tenants3, "d1")
    assert orjson.loads((await run_row(db, third))["unchanged_counts"])["users"] == 1  # Pat
    assert await db.fetchval("SELECT given_name FROM users WHERE sourced_id = 'u-t1'") == "Tine"
    assert await ids(db, "users") == {"u-t1", "u-s1", "u-p1"}

    # Asked to, the fetcher sends everything whole (e.g. after a new crosswalk).
    fourth = await sync(settings, tenants3, "d1", resend_unchanged=True)
    assert orjson.loads((await run_row(db, fourth))["unchanged_counts"]) == {}
    assert await ids(db, "users") == {"u-t1", "u-s1", "u-p1"}

    # The lists are on the topics like the records: a replay rebuilds the same roster.
    differences = await replay_differences(settings, db)
    assert "users" in differences
    assert {t: d for t, d in differences.items() if d != (0, 0)} == {}


async def test_a_listed_record_that_changed_meanwhile_is_kept_and_resent_next_run(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    tenants = write_tenants(
        tmp_path / "t.toml", "d1", write_bundle(tmp_path / "b1", districts.bundle_1_1())
    )
    await sync(settings, tenants, "d1")
    tina = await db.fetchrow(
        "SELECT content_hash, last_seen_run FROM users WHERE sourced_id = 'u-t1'"
    )
    assert tina is not None
    # A list whose hash no longer matches the row (an event in between changed it).
    late = new_run_id()
    listed = unchanged_list(tenant="d1", source="csv", run_id=late, entity=EntityType.USER,
                             listed={"u-t1": "not-" + tina["content_hash"]})  # fmt: skip
    async with db.transaction():
        await apply_records(db, [listed])
    row = await db.fetchrow(
        "SELECT content_hash, last_seen_run FROM users WHERE sourced_id = 'u-t1'"
    )
    assert row is not None
    assert (row["content_hash"], row["last_seen_run"]) == ("", late)  # seen, marked stale

    # The next run sends Tina whole (her stored hash matches nothing) and the row catches up.
    again = await sync(settings, tenants, "d1")
    counts = orjson.loads((await run_row(db, again))["unchanged_counts"])
    assert counts["users"] == len(districts.USERS_1_1) - 1
    assert (
        await db.fetchval("SELECT content_hash FROM users WHERE sourced_id = 'u-t1'")
        == tina["content_hash"]
    )
