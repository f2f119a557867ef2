"""A OneRoster REST source end to end on real Kafka and PostgreSQL, against the test OneRoster
server in process (no socket) serving given JSON collections: full sync, delta with deletes, the
full reconcile's sweep, and a failing source. (Over HTTP with a bundle: test_rest_end_to_end.py.)"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
from rostersync_libs.commands import SyncRequested
from rostersync_libs.settings import ServiceSettings
from rostersync_oneroster_server import OneRosterServer

from tests.e2e import ids, send_unaudited
from tests.pipeline import running_pipeline, wait_for_run
from tests.rest_district import district_1_1

pytestmark = pytest.mark.integration


def tenants_file(path: Path, **extra: str) -> Path:
    options = "".join(f"{k} = {v}\n" for k, v in extra.items())
    path.write_text(
        '[[tenants]]\nid = "d1"\nname = "D"\nvalidation = "strict"\n'
        "hold_threshold = 1.0\n"
        '[[tenants.sources]]\nid = "api"\nkind = "oneroster-api"\n'
        'base_url = "https://sis.example"\nversion = "1.1"\npage_size = 2\n'
        'auth = { kind = "oauth1", key = "k", secret_env = "ROSTERSYNC_TEST_SIS_SECRET" }\n'
        + options
    )
    return path


def pipeline(
    settings: ServiceSettings, tenants: Path, server: OneRosterServer
) -> contextlib.AbstractAsyncContextManager[None]:
    return running_pipeline(
        settings, tenants, http_transport=server.transport(), inbox_poll_seconds=0.5
    )


async def request(settings: ServiceSettings, *, full: bool = False) -> UUID:
    command = SyncRequested(tenant="d1", source="api", full=full)
    await send_unaudited(settings, command)
    return command.run_id


async def run_row(db: asyncpg.Connection, run_id: UUID, timeout: float = 30) -> asyncpg.Record:
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(asyncpg.UndefinedTableError):
                row = await db.fetchrow("SELECT * FROM sync_runs WHERE run_id = $1", run_id)
                if row is not None and row["fetch_status"] in ("fetched", "failed"):
                    return row
            await asyncio.sleep(0.2)


async def test_full_then_delta_then_reconcile_then_failure(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROSTERSYNC_TEST_SIS_SECRET", "s")
    data = district_1_1()
    server = OneRosterServer(collections=data)
    tenants = tenants_file(tmp_path / "t.toml")
    async with pipeline(settings, tenants, server):
        # 1. first sync: full
        full = await request(settings)
        await wait_for_run(settings, "d1", full)
        assert await db.fetch("SELECT code FROM findings WHERE run_id = $1", full) == []
        assert await ids(db, "orgs") == {"d1", "s1"}
        assert await ids(db, "academic_sessions") == {"y26", "t1"}
        assert await ids(db, "classes") == {"k-alg1"}
        assert await ids(db, "users") == {"u-t1", "u-s1"}
        assert await ids(db, "enrollments") == {"e1", "e2"}
        assert await ids(db, "demographics") == {"u-s1"}
        run = await run_row(db, full)
        assert run["oneroster_version"] == "1.1"

        # 2. delta: the student is deleted at the source, a new course appears
        data["users"][1] |= {"status": "tobedeleted", "dateLastModified": "2025-02-01T00:00:00Z"}
        data["courses"].append(
            {"sourcedId": "c-new", "status": "active", "dateLastModified": "2025-02-01T00:00:00Z",
             "title": "New", "org": {"sourcedId": "s1"}}
        )  # fmt: skip
        delta = await request(settings)
        await wait_for_run(settings, "d1", delta)
        assert "dateLastModified>'2024-12-31T23:55:00.000Z'" in server.filters("users")
        assert await ids(db, "users") == {"u-t1"}
        assert await ids(db, "courses") == {"c-alg", "c-new"}
        assert await ids(db, "enrollments") == {"e1"}  # archiving a user archives enrollments

        # 3. the source hard-deletes a class: invisible to deltas, swept by a full reconcile
        data["classes"].clear()
        data["enrollments"].clear()
        reconcile = await request(settings, full=True)
        await wait_for_run(settings, "d1", reconcile)
        assert await ids(db, "classes") == set()

        # 4. a broken endpoint fails the run cleanly: no markers, nothing swept
        server.faults.add("500", 1000, path_contains="/users")  # every attempt
        failed = await request(settings, full=True)
        row = await run_row(db, failed, timeout=60)
        assert row["fetch_status"] == "failed"
        assert "gave up after" in row["fetch_error"]
        assert await ids(db, "orgs") == {"d1", "s1"}


async def test_a_polling_schedule_syncs_without_commands(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROSTERSYNC_TEST_SIS_SECRET", "s")
    data = district_1_1()
    server = OneRosterServer(collections=data)
    tenants = tenants_file(tmp_path / "t.toml", schedule="{ every_seconds = 1 }")
    async with pipeline(settings, tenants, server):
        async with asyncio.timeout(60):
            while True:
                with contextlib.suppress(asyncpg.UndefinedTableError):
                    if await ids(db, "users") == {"u-t1", "u-s1"}:
                        break
                await asyncio.sleep(0.2)
        data["users"][0] |= {"givenName": "Renamed", "dateLastModified": "2025-03-01T00:00:00Z"}
        async with asyncio.timeout(60):
            while True:
                name = await db.fetchval("SELECT given_name FROM users WHERE sourced_id = 'u-t1'")
                if name == "Renamed":
                    break
                await asyncio.sleep(0.2)
