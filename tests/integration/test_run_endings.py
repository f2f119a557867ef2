"""Every run ends: a REST run that fails after it began publishing ends with aborted markers, so
the middle stages commit past it (their offsets never freeze), the writer ends it ``failed``
without removals, and the next runs of other tenants complete (real Kafka and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from rostersync_fetcher.leases import RunLeases
from rostersync_fetcher.publisher import RunPublisher
from rostersync_libs.db import create_pool
from rostersync_libs.events import EntityType, FileFacts
from rostersync_libs.ids import new_run_id
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.runs import RunPhase
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.tenants import load_tenants
from rostersync_oneroster_server import OneRosterServer

from tests import districts
from tests.bundles import write_bundle, write_tenants
from tests.e2e import ids, sealing_producer
from tests.integration.test_rest_deltas_and_faults import api_tenant, oauth1, request
from tests.pipeline import running_pipeline

pytestmark = pytest.mark.integration


async def lag(settings: ServiceSettings, group: str, topic: str) -> int:
    """Messages of ``topic`` the consumer group has not committed past."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group(group),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer.topics()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
        ends = await consumer.end_offsets(partitions)
        behind = 0
        for tp in partitions:
            committed = await consumer.committed(tp)
            behind += ends[tp] - (committed or 0)
        return behind
    finally:
        await consumer.stop()


async def status_of(db: asyncpg.Connection, run_id: object) -> tuple[str | None, str | None]:
    try:
        row = await db.fetchrow(
            "SELECT r.status, o.status AS outcome FROM sync_runs r LEFT JOIN run_outcomes o"
            " ON o.tenant_id = r.tenant_id AND o.run_id = r.run_id WHERE r.run_id = $1",
            run_id,
        )
    except asyncpg.UndefinedTableError:  # the writer has not created its tables yet
        return (None, None)
    return (row["status"], row["outcome"]) if row else (None, None)


async def test_a_rest_run_failing_midway_ends_failed_and_releases_every_stage(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROSTERSYNC_TEST_O1", "secret")
    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1())
    async with OneRosterServer(bundle, oauth1={"key": "secret"}) as server:
        common = {"page_size": 2, "timeout_seconds": 5, "max_attempts": 2}
        tenants = tmp_path / "t.toml"
        tenants.write_text(
            api_tenant("broken", server, oauth1(), **common)
            + api_tenant("fine", server, oauth1(), **common)
        )
        async with running_pipeline(settings, tenants):
            # Orgs, sessions, courses, classes and users are published, then enrollments fail.
            server.faults.add("500", 100, path_contains="/enrollments")
            failed = await request(settings, "broken")
            async with asyncio.timeout(90):
                while (await status_of(db, failed))[1] is None:
                    await asyncio.sleep(0.2)
            assert await status_of(db, failed) == ("failed", "aborted")
            reason = await db.fetchval(
                "SELECT fetch_error FROM sync_runs WHERE run_id = $1", failed
            )
            assert "/enrollments" in reason
            # What was valid and published before the failure landed; nothing was swept.
            assert await ids(db, "users", "broken") == {"u-t1", "u-s1", "u-s2", "u-p1"}
            assert await ids(db, "enrollments", "broken") == set()

            server.faults.rules.clear()
            fine = await request(settings, "fine")
            async with asyncio.timeout(90):
                while (await status_of(db, fine))[0] != "completed":
                    await asyncio.sleep(0.2)
            assert await ids(db, "enrollments", "fine") == {"e1", "e2", "e3"}
            # The middle stages committed past the failed run: nothing is held back.
            async with asyncio.timeout(30):
                while await lag(settings, "validator", settings.topics.fetched) or await lag(
                    settings, "mapper", settings.topics.validated
                ):
                    await asyncio.sleep(0.5)


async def test_a_run_whose_fetcher_died_is_ended_failed_and_asked_again(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1())
    tenants = write_tenants(tmp_path / "t.toml", "d1", bundle)
    tenant = load_tenants(tenants).get("d1")
    await ensure_topics(settings)
    # A fetcher began run R (its started event and a file's facts are out), took the run's
    # lease, then died: the lease was last renewed two minutes ago.
    dead = new_run_id()
    async with sealing_producer(settings, "dead-fetcher") as producer:
        out = RunPublisher(
            producer=producer, topics=settings.topics, tenant=tenant, source_id="csv", run_id=dead
        )
        await out.run_event(RunPhase.STARTED, version="1.1")
        facts = FileFacts(file="orgs.csv", entity=EntityType.ORG, mode="bulk", header=["sourcedId"])
        await out.file_facts(facts)
        await out.flush()
    async with running_pipeline(
        settings, tenants, lease_renew_seconds=0.2, lease_stale_seconds=2, lease_check_seconds=0.3
    ):
        async with asyncio.timeout(60):  # the writer creates the lease table
            while not await db.fetchval("SELECT to_regclass('fetch_leases') IS NOT NULL"):
                await asyncio.sleep(0.2)
        await db.execute(
            "INSERT INTO fetch_leases (tenant_id, run_id, source, owner, renewed_at)"
            " VALUES ('d1', $1, 'csv', 'dead:1', now() - interval '2 minutes')",
            dead,
        )
        async with asyncio.timeout(60):
            while (await status_of(db, dead))[1] is None:
                await asyncio.sleep(0.2)
        assert await status_of(db, dead) == ("failed", "aborted")
        reason = await db.fetchval("SELECT fetch_error FROM sync_runs WHERE run_id = $1", dead)
        assert "its lease was not renewed" in reason
        # Asked again once, as a new run that completes and gives its lease back.
        async with asyncio.timeout(60):
            while not await db.fetchval(
                "SELECT count(*) FROM sync_runs WHERE tenant_id = 'd1' AND run_id <> $1"
                " AND status = 'completed'",
                dead,
            ):
                await asyncio.sleep(0.2)
        assert await ids(db, "enrollments") == {"e1", "e2", "e3"}
        assert await db.fetchval("SELECT count(*) FROM fetch_leases") == 0
        async with asyncio.timeout(30):
            while await lag(settings, "validator", settings.topics.fetched):
                await asyncio.sleep(0.5)


async def test_a_lease_is_given_back_at_the_end_and_kept_when_the_run_is_cancelled(
    settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    from rostersync_libs.store.migrate import migrate

    pool = await create_pool(settings)  # creates the test's schema
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        leases = RunLeases(pool, "me", renew_seconds=0.1)
        done, cancelled = new_run_id(), new_run_id()
        async with leases.held("d1", "csv", done, attempt=1):
            assert await db.fetchval("SELECT count(*) FROM fetch_leases WHERE run_id = $1", done)
        assert not await db.fetchval("SELECT count(*) FROM fetch_leases WHERE run_id = $1", done)

        started = asyncio.Event()

        async def publishing() -> None:
            async with leases.held("d1", "csv", cancelled, attempt=2, full=True):
                started.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(publishing())
        await started.wait()
        await asyncio.sleep(0.3)  # renewed meanwhile
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        kept = await db.fetchrow("SELECT * FROM fetch_leases WHERE run_id = $1", cancelled)
        assert (kept["attempt"], kept["full_sync"], kept["owner"]) == (2, True, "me")
        assert await leases.lapsed(3600) == []  # renewed recently: not lapsed
        # Late, but this fetcher is still publishing it (its renewals missed a database outage).
        assert await leases.lapsed(0, {cancelled}) == []
        [lapsed] = await leases.lapsed(0)
        assert (lapsed.run_id, lapsed.attempt, lapsed.full) == (cancelled, 2, True)
        assert await leases.lapsed(0) == []  # taken once
        assert not await leases.publishing_ended("d1", cancelled)  # no run event: it died
        # A run that published to its end, whose lease give-back failed (a database outage):
        # its lease is no sign of a dead fetcher.
        await db.execute(
            "INSERT INTO sync_runs (tenant_id, run_id, source, fetch_status)"
            " VALUES ('d1', $1, 'csv', 'fetched')",
            done,
        )
        assert await leases.publishing_ended("d1", done)
    finally:
        await pool.close()


async def test_sigterm_stops_a_fetcher_in_a_long_run_within_ten_seconds(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rostersync_cli.actions import request_sync
    from rostersync_cli.generate import DistrictShape, generate
    from rostersync_cli.processes import start_service
    from rostersync_libs.store.migrate import migrate

    from tests.e2e import cli_settings

    generate(tmp_path / "big", DistrictShape(students=30_000))  # a run of many seconds
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "big")
    cli = cli_settings(settings, tenants)
    pool = await create_pool(settings)
    async with pool.acquire() as conn:
        await migrate(conn)
    await pool.close()
    await ensure_topics(settings)
    monkeypatch.setenv("ROSTERSYNC_STOP_GRACE_SECONDS", "1")  # the child's environment
    fetcher = start_service("fetcher", cli)
    try:
        command = await request_sync(cli, "d1", None)
        async with asyncio.timeout(60):  # the run has begun: its lease is taken
            while not await db.fetchval(
                "SELECT count(*) FROM fetch_leases WHERE run_id = $1", command.run_id
            ):
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        assert fetcher.poll() is None  # still publishing
        stopping = asyncio.get_running_loop().time()
        fetcher.send_signal(signal.SIGTERM)
        await asyncio.to_thread(fetcher.wait, 30)
        took = asyncio.get_running_loop().time() - stopping
    finally:
        if fetcher.poll() is None:
            fetcher.kill()
            fetcher.wait()
    assert took < 10, took
    # The run was cut short: its lease stays for another fetcher to end it (tested above).
    assert await db.fetchval("SELECT count(*) FROM fetch_leases WHERE run_id = $1", command.run_id)


async def test_an_operator_cancels_a_run_and_a_run_over_its_time_limit_fails(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    from rostersync_cli.actions import request_sync
    from rostersync_cli.cancel import cancel_refusal, send_cancel, wait_for_end
    from rostersync_cli.generate import DistrictShape, generate
    from rostersync_libs.commands import CancelRun
    from rostersync_libs.run_reports.status import EXIT_CANCELLED, RunStatus

    from tests.e2e import cli_settings, send_unaudited

    generate(tmp_path / "big", DistrictShape(students=30_000))
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "big")
    cli = cli_settings(settings, tenants)
    async with running_pipeline(settings, tenants):
        command = await request_sync(cli, "d1", None)
        async with asyncio.timeout(60):  # the writer knows the run is running
            while (await status_of(db, command.run_id))[0] != "running":
                await asyncio.sleep(0.1)
        assert await cancel_refusal(cli, tenants, "d1", command.run_id) is None
        assert await cancel_refusal(cli, tenants, "nobody", command.run_id) is not None
        # A cancel nobody audited (written straight to the topic) is not acted on.
        forged = CancelRun(tenant="d1", run_id=command.run_id, requested_by="alice")
        await send_unaudited(settings, forged)
        await asyncio.sleep(3)
        assert (await status_of(db, command.run_id))[0] == "running"
        await send_cancel(cli, "d1", command.run_id, "alice")
        state = await wait_for_end(cli, "d1", command.run_id, 60)
        assert state is not None
        # Who cancelled is the login the CLI authenticated as, not the label "alice".
        login = await db.fetchval("SELECT session_user")
        assert (state.status, state.detail, state.exit_code) == (
            RunStatus.CANCELLED, f"cancelled by {login}", EXIT_CANCELLED,
        )  # fmt: skip
        async with asyncio.timeout(60):  # its aborted markers reached the writer
            while (await status_of(db, command.run_id))[1] is None:
                await asyncio.sleep(0.2)
        assert await status_of(db, command.run_id) == ("cancelled", "aborted")
        refused = await cancel_refusal(cli, tenants, "d1", command.run_id)
        assert refused is not None
        assert "is not running (status: cancelled)" in refused
        assert await db.fetchval("SELECT count(*) FROM fetch_leases") == 0  # not asked again
        async with asyncio.timeout(60):
            while await lag(settings, "validator", settings.topics.fetched):
                await asyncio.sleep(0.5)

    async def timed_out(**overrides: Any) -> str:
        """A run stopped by its time limit: ended failed with aborted markers; its reason."""
        async with running_pipeline(settings, tenants, **overrides):
            command = await request_sync(cli, "d1", None)
            async with asyncio.timeout(60):
                while (await status_of(db, command.run_id))[1] is None:
                    await asyncio.sleep(0.2)
            assert await status_of(db, command.run_id) == ("failed", "aborted")
            reason: str = await db.fetchval(
                "SELECT fetch_error FROM sync_runs WHERE run_id = $1", command.run_id
            )
            return reason

    reason = await timed_out(run_timeout_seconds=1)
    assert reason == "the run took longer than 1 s (run_timeout_seconds)"
    # A source's own limit, under the fetcher's default (6 h).
    with tenants.open("a") as toml:
        toml.write("run_timeout_seconds = 1.5\n")
    reason = await timed_out()
    assert reason == "the run took longer than 1.5 s (run_timeout_seconds)"


async def test_an_inbox_bundle_over_its_sources_time_limit_fails_and_moves_to_failed(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    import orjson
    from rostersync_cli.generate import DistrictShape, generate

    inbox = tmp_path / "sftp"
    inbox.mkdir()
    tenants = tmp_path / "t.toml"
    tenants.write_text(
        '[[tenants]]\nid = "d1"\nname = "D"\n[[tenants.sources]]\nid = "sftp"\nkind = "inbox"\n'
        f'path = "{inbox}"\nsettle_seconds = 0\nrun_timeout_seconds = 1\n'
    )
    generate(tmp_path / "staging" / "big", DistrictShape(students=30_000))
    async with running_pipeline(settings, tenants, inbox_poll_seconds=0.2):
        (tmp_path / "staging" / "big").rename(inbox / "big")
        async with asyncio.timeout(90):
            while not list(inbox.glob("failed/*_big.report.json")):
                await asyncio.sleep(0.2)
        (report_path,) = inbox.glob("failed/*_big.report.json")
        report = orjson.loads(report_path.read_text())
        run_id = UUID(report["run_id"])
        async with asyncio.timeout(60):  # its aborted markers reach the writer
            while (await status_of(db, run_id))[1] is None:
                await asyncio.sleep(0.2)
    assert report["phase"] == "failed"
    assert report["reason"] == "failed: the run took longer than 1 s (run_timeout_seconds)"
    assert await status_of(db, run_id) == ("failed", "aborted")
    assert list(inbox.glob("failed/*_big"))
    assert list((inbox / ".processing").iterdir()) == []
