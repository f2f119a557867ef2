"""Nothing decisive trusts the message (issue 19: trust).

Reproductions: one forged end-of-run marker on the mapped topic, for a run nobody fetched,
declaring users and enrollments complete bulk snapshots with a threshold of 1.0, archived every
user and enrollment of a district; a hold decision with ``decided_by="anyone"`` approved a held
wipe, and the name was kept. Now a run completes only with the fetcher's run events, sweeps what
they declared, and a decision is applied only when the operator audit vouches for it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.operations import send_command
from rostersync_libs.commands import HoldDecision, SyncRequested
from rostersync_libs.events import EntityType, RunEnd, encode
from rostersync_libs.ids import new_run_id
from rostersync_libs.markers import marker_event, run_end_event
from rostersync_libs.settings import ServiceSettings

from tests.bundles import write_tenants
from tests.e2e import cli_settings, sealing_producer, send_unaudited, sync
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration

ACTIVE = "SELECT count(*) FROM {} WHERE tenant_id = 'd1' AND archived_at IS NULL"
WIPE = [EntityType.USER, EntityType.ENROLLMENT]


def loose_tenants(path: Path, bundle: Path) -> Path:
    """A tenant whose own threshold lets any removal through: the hold masks nothing here."""
    tenants = write_tenants(path, "d1", bundle)
    tenants.write_text(tenants.read_text().replace("\n\n", "\nhold_threshold = 1.0\n\n", 1))
    return tenants


def forged_markers(run_id: UUID, claims: list[EntityType], partitions: int = 3) -> list[RunEnd]:
    """A whole set of end markers for a run, as the mapper would send them (every partition,
    every origin), claiming ``claims`` bulk with the loosest hold."""
    fetcher = run_end_event(
        tenant="d1", source="csv", run_id=run_id, fanout=partitions, counts={},
        bulk_entities=claims, hold_threshold=1.0, hold_min_records=0,
    )  # fmt: skip
    return [
        marker_event(fetcher, origin_partition=o, origin_count=partitions, fanout=partitions)
        for o in range(partitions)
    ]


async def forge(settings: ServiceSettings, markers: list[RunEnd], partitions: int = 3) -> None:
    """Sealed with the tenant's data key: a forger who stole it too (without it, nothing opens:
    test_unsealed_messages.py)."""
    async with sealing_producer(settings, "forger") as producer:
        for p in range(partitions):
            for m in markers:
                await producer.send_and_wait(
                    settings.topics.mapped, encode(m), key=m.key(), partition=p
                )


async def counts(db: asyncpg.Connection) -> tuple[int, int]:
    return await db.fetchval(ACTIVE.format("users")), await db.fetchval(
        ACTIVE.format("enrollments")
    )


async def test_a_forged_run_end_for_a_run_nobody_fetched_never_completes(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=60))
    tenants = loose_tenants(tmp_path / "t.toml", tmp_path / "bundle")
    await sync(settings, tenants, "d1")
    before = await counts(db)
    assert before[0] > 60
    assert before[1] > 100

    nobody = new_run_id()
    await forge(settings, forged_markers(nobody, WIPE))
    # A real run after it: its markers are behind the forged ones on every partition, so once
    # it completes the writer has read (and judged) every forged marker.
    await sync(settings, tenants, "d1")
    assert await db.fetchval("SELECT count(*) FROM run_markers WHERE run_id = $1", nobody) == 9
    run = await db.fetchrow("SELECT status, fetch_status FROM sync_runs WHERE run_id = $1", nobody)
    assert (run["status"], run["fetch_status"]) == ("running", None)  # waits, never acted on
    assert await db.fetchval("SELECT count(*) FROM run_outcomes WHERE run_id = $1", nobody) == 0
    assert await counts(db) == before


async def test_a_forged_marker_for_a_real_run_sweeps_only_what_the_fetcher_declared(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "full", DistrictShape(students=60))
    tenants = loose_tenants(tmp_path / "t.toml", tmp_path / "full")
    await sync(settings, tenants, "d1")
    before = await counts(db)

    # The next bundle leaves enrollments out (absent: not read, so not a bulk snapshot).
    shutil.copytree(tmp_path / "full", tmp_path / "no-enrollments")
    (tmp_path / "no-enrollments" / "enrollments.csv").unlink()
    manifest = tmp_path / "no-enrollments" / "manifest.csv"
    manifest.write_text(
        manifest.read_text().replace("file.enrollments,bulk", "file.enrollments,absent")
    )
    tenants = loose_tenants(tmp_path / "t2.toml", tmp_path / "no-enrollments")

    # Markers for the run are on the topic before the run even starts, claiming users and
    # enrollments: trusted, they completed it at once and archived both (nothing seen yet).
    command = SyncRequested(tenant="d1", run_id=new_run_id())
    await forge(settings, forged_markers(command.run_id, WIPE))
    async with running_pipeline(settings, tenants):
        await send_command(cli_settings(settings, tenants), command)
        await wait_for_run(settings, "d1", command.run_id)
    outcome = await db.fetchrow(
        "SELECT status, bulk_entities FROM run_outcomes WHERE run_id = $1", command.run_id
    )
    declared = await db.fetchval(
        "SELECT declared_bulk FROM sync_runs WHERE run_id = $1", command.run_id
    )
    assert outcome["status"] == "applied"
    assert outcome["bulk_entities"] == declared  # the fetcher's list, swept
    assert '"users"' in declared
    assert '"enrollments"' not in declared
    assert await counts(db) == before  # users all seen again; enrollments not swept


async def test_a_forged_hold_decision_is_refused_and_a_real_one_names_the_login(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "full", DistrictShape(students=120))
    shutil.copytree(tmp_path / "full", tmp_path / "few")
    users = tmp_path / "few" / "users.csv"
    lines = users.read_text().splitlines(keepends=True)
    users.write_text("".join(lines[: len(lines) // 3]))  # most users gone: over 10%, held
    full = write_tenants(tmp_path / "full.toml", "d1", tmp_path / "full")
    few = write_tenants(tmp_path / "few.toml", "d1", tmp_path / "few")
    await sync(settings, full, "d1")
    before = await counts(db)
    held = await sync(settings, few, "d1")
    assert await db.fetchval("SELECT status FROM run_outcomes WHERE run_id = $1", held) == "held"

    forged = HoldDecision(tenant="d1", run_id=held, approve=True, decided_by="anyone")
    async with running_pipeline(settings, few):
        await send_unaudited(settings, forged)
        async with asyncio.timeout(60):
            while not await db.fetchval("SELECT count(*) FROM refused_commands"):
                await asyncio.sleep(0.2)
    refused = await db.fetchrow("SELECT * FROM refused_commands")
    assert (refused["command_id"], refused["run_id"], refused["reason"]) == (
        forged.command_id, held, "not_audited",
    )  # fmt: skip
    assert await db.fetchval("SELECT status FROM run_outcomes WHERE run_id = $1", held) == "held"
    assert await db.fetchval("SELECT count(*) FROM hold_decisions") == 0
    assert await db.fetchval("SELECT count(*) FROM operator_audit") == 2  # the two syncs, no more
    assert await counts(db) == before

    # The operator's own approval, through the CLI: audited under the login, then applied.
    async with running_pipeline(settings, few):
        approved = await rostersync(settings, few, "holds", "approve", "d1", str(held), "--by", "x")
        assert approved.returncode == 0, approved
        async with asyncio.timeout(60):
            while (
                await db.fetchval("SELECT status FROM run_outcomes WHERE run_id = $1", held)
                == "held"
            ):
                await asyncio.sleep(0.2)
    login = await db.fetchval("SELECT session_user")
    audited = await db.fetchrow("SELECT * FROM operator_audit WHERE action = 'hold_approve'")
    assert (audited["actor"], audited["label"], audited["run_id"]) == (login, "x", held)
    decision = await db.fetchrow("SELECT * FROM hold_decisions WHERE run_id = $1", held)
    assert (decision["decided_by"], decision["command_id"]) == (login, audited["command_id"])
    assert (
        await db.fetchval("SELECT status FROM run_outcomes WHERE run_id = $1", held) == "approved"
    )
    assert (await counts(db))[0] < before[0]


async def test_audit_rows_cannot_be_changed_or_removed_and_the_server_names_the_actor(
    settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    from rostersync_libs.store.migrate import migrate

    await db.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.db_schema}"')
    await migrate(db)
    await db.execute(
        "INSERT INTO operator_audit (command_id, tenant_id, run_id, action, actor, recorded_at)"
        " VALUES (gen_random_uuid(), 'd1', gen_random_uuid(), 'cancel', 'the boss', '2001-01-01')"
    )
    row = await db.fetchrow("SELECT actor, recorded_at FROM operator_audit")
    assert row["actor"] == await db.fetchval("SELECT session_user")  # not "the boss"
    assert row["recorded_at"].year > 2001
    # Not even the owner (here a superuser) may rewrite or remove the audit.
    for statement in (
        "UPDATE operator_audit SET actor = 'the boss'",
        "DELETE FROM operator_audit",
        "TRUNCATE operator_audit",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(statement)
    assert await db.fetchval("SELECT count(*) FROM operator_audit") == 1


async def rostersync(
    settings: ServiceSettings, tenants: Path, *args: str
) -> asyncio.subprocess.Process:
    """``rostersync ARGS`` in its own process (the operator's CLI), waited for."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "ROSTERSYNC_DB_SCHEMA": settings.db_schema,
        "ROSTERSYNC_TOPIC_PREFIX": settings.topic_prefix,
        "ROSTERSYNC_TENANTS_FILE": str(tenants),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rostersync_cli", *args, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.wait_for(proc.wait(), 120)
    return proc
