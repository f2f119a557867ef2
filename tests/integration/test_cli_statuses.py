"""The operator's command tells the truth: a run's status and exit code (held, discarded, failed,
not finished), refusals of decisions that must not be sent, and a CSV export that a spreadsheet
cannot execute. The command runs as the operator runs it (a process: ``python -m
rostersync_cli``) against the real Kafka and PostgreSQL, with the services as tasks here."""

from __future__ import annotations

import asyncio
import csv
import re
import shutil
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiokafka import TopicPartition
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.operations import on_connection
from rostersync_libs.commands import COMMAND, HoldDecision
from rostersync_libs.kafka import ensure_topics, make_consumer
from rostersync_libs.run_reports.status import (
    EXIT_DISCARDED,
    EXIT_FAILED,
    EXIT_HELD,
    EXIT_NOT_FINISHED,
    EXIT_OK,
)
from rostersync_libs.run_reports.validation import export_csv
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate

from tests.bundles import write_tenants
from tests.cli_process import cli, refused
from tests.e2e import data_keys, sync
from tests.pipeline import running_pipeline

pytestmark = pytest.mark.integration

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EVIL_ID = "@u-evil"
EVIL_ROLE = '=HYPERLINK("http://example.invalid","click")'


def requested_run(out: str) -> UUID:
    found = re.search(r"sync requested: tenant \S+, run ([0-9a-f-]{36})", out)
    assert found is not None, out
    return UUID(found.group(1))


def run_line(out: str, run_id: UUID) -> list[str]:
    (line,) = [line for line in out.splitlines() if line.startswith(str(run_id))]
    return line.split()


async def hold_decisions_sent(settings: ServiceSettings) -> list[HoldDecision]:
    """Every hold decision on the command topic (one partition), from the beginning."""
    topic = settings.topics.commands
    async with data_keys(settings) as keys:
        consumer = make_consumer(settings, None, keys=keys)
        await consumer.start()
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            end = (await consumer.end_offsets([partition]))[partition]
            messages = []
            async with asyncio.timeout(30):
                while await consumer.position(partition) < end:
                    batch = await consumer.getmany(partition, timeout_ms=500)
                    messages += batch.get(partition, [])
        finally:
            await consumer.stop()
    commands = [COMMAND.validate_json(m.value) for m in messages if m.value is not None]
    return [c for c in commands if isinstance(c, HoldDecision)]


def with_formula_user(bundle: Path) -> None:
    """Add a user whose sourcedId and role are spreadsheet formulas (the role is rejected)."""
    with (bundle / "users.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    evil = rows[-1] | {"sourcedId": EVIL_ID, "role": EVIL_ROLE, "username": "evil"}
    with (bundle / "users.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([*rows, evil])


def drop_every_other_student(source: Path, target: Path) -> None:
    shutil.copytree(source, target)
    with (source / "users.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    students = [r for r in rows if r["role"] == "student"]
    gone = {r["sourcedId"] for r in students[::2]}
    with (target / "users.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["sourcedId"] not in gone)


async def test_a_held_run_is_held_everywhere_then_discarded_and_decisions_are_refused_honestly(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "full", DistrictShape(students=120))
    with_formula_user(tmp_path / "full")
    drop_every_other_student(tmp_path / "full", tmp_path / "half")
    full = write_tenants(tmp_path / "full.toml", "d1", tmp_path / "full")
    half = write_tenants(tmp_path / "half.toml", "d1", tmp_path / "half")
    first = await sync(settings, full, "d1")
    active = await db.fetchval("SELECT count(*) FROM users WHERE archived_at IS NULL")

    async with running_pipeline(settings, half):
        waited = await cli(settings, half, "sync", "d1", "--wait", "--timeout", "150")
        assert waited.code == EXIT_HELD, waited
        held = requested_run(waited.out)
        assert f"Run {held} of tenant d1: held (fetch fetched" in waited.out
        assert re.search(r"held: would archive users: \d+ of \d+ \(\d+%\)", waited.out)
        assert f"rostersync holds approve|discard d1 {held}" in waited.out

        listed = await cli(settings, half, "runs", "--tenant", "d1")
        assert listed.code == EXIT_OK, listed
        assert run_line(listed.out, held)[3] == "held"
        assert run_line(listed.out, first)[3] == "completed"

        export = tmp_path / "findings.csv"
        report = await cli(settings, half, "report", "d1", str(held), "--csv", str(export))
        assert report.code == EXIT_HELD, report
        assert f"Run {held} of tenant d1: held" in report.out
        with export.open(newline="") as handle:
            exported = list(csv.DictReader(handle))
        evil = [r for r in exported if r["sourced_id"] == "'" + EVIL_ID]
        assert evil, exported
        assert {r["value"] for r in evil if r["column"] == "role"} == {"'" + EVIL_ROLE}
        cells = [cell for r in exported for cell in r.values() if cell]
        assert not [c for c in cells if c.startswith(FORMULA_STARTS)]

        # Refused, with one line each and nothing sent: unknown tenant, unknown run, not held.
        assert "unknown tenant 'nosuch'" in refused(
            await cli(settings, half, "holds", "approve", "nosuch", str(held))
        )
        stranger = uuid4()
        assert f"no run {stranger} for tenant d1" in refused(
            await cli(settings, half, "holds", "approve", "d1", str(stranger))
        )
        assert f"run {first} of tenant d1 is not held (status: completed)" in refused(
            await cli(settings, half, "holds", "discard", "d1", str(first))
        )
        assert await hold_decisions_sent(settings) == []

        discarded = await cli(settings, half, "holds", "discard", "d1", str(held), "--by", "alice")
        assert discarded.code == EXIT_OK, discarded
        async with asyncio.timeout(60):
            while (
                await db.fetchval("SELECT status FROM run_outcomes WHERE run_id = $1", held)
                != "discarded"
            ):
                await asyncio.sleep(0.2)

        # An earlier decision is named, with who took it; the second one is not sent.
        again = refused(await cli(settings, half, "holds", "approve", "d1", str(held)))
        # Who decided is the login the CLI authenticated as (the audit's), not the label "alice".
        login = await db.fetchval("SELECT session_user")
        assert f"run {held} of tenant d1 was already discarded by {login} at " in again
        assert [
            (d.run_id, d.approve, d.decided_by) for d in await hold_decisions_sent(settings)
        ] == [(held, False, "alice")]

    report = await cli(settings, half, "report", "d1", str(held))
    assert report.code == EXIT_DISCARDED, report
    assert f"Run {held} of tenant d1: discarded" in report.out
    assert f"removals discarded by {login} at " in report.out
    listed = await cli(settings, half, "runs", "--tenant", "d1")
    assert run_line(listed.out, held)[3] == "discarded"
    assert await db.fetchval("SELECT count(*) FROM users WHERE archived_at IS NULL") == active


async def test_failed_unfinished_and_unknown_runs_exit_non_zero_with_a_message(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "no-such-bundle")
    stranger = uuid4()

    # Before the writer ever ran: no tables yet, said in one line.
    assert "no rostersync tables in schema" in refused(
        await cli(settings, tenants, "report", "d1", str(stranger))
    )

    # Nobody serves the run: the wait ends at its time-out, with its own exit code. (The schema
    # is there: a command is audited in it first, rostersync_libs/audit.py.)
    await ensure_topics(settings)
    await on_connection(settings, migrate)
    waited = await cli(settings, tenants, "sync", "d1", "--wait", "--timeout", "2")
    assert waited.code == EXIT_NOT_FINISHED, waited
    assert "did not finish within 2 s" in waited.err

    # The source cannot be read: failed, with the reason, in sync --wait, report and runs.
    async with running_pipeline(settings, tenants):
        failed = await cli(settings, tenants, "sync", "d1", "--wait", "--timeout", "120")
    assert failed.code == EXIT_FAILED, failed
    run_id = requested_run(failed.out)
    assert f"Run {run_id} of tenant d1: failed" in failed.out
    assert "the source could not be read: " in failed.out
    assert "no-such-bundle" in failed.out
    report = await cli(settings, tenants, "report", "d1", str(run_id))
    assert report.code == EXIT_FAILED, report
    listed = await cli(settings, tenants, "runs", "--tenant", "d1")
    assert run_line(listed.out, run_id)[3] == "failed"
    assert "no-such-bundle" in " ".join(run_line(listed.out, run_id))

    # Unknown tenant, unknown run: one line, no traceback.
    assert "unknown tenant 'nosuch'" in refused(
        await cli(settings, tenants, "report", "nosuch", str(stranger))
    )
    assert f"no run {stranger} for tenant d1" in refused(
        await cli(settings, tenants, "report", "d1", str(stranger))
    )
    assert "unknown tenant 'nosuch'" in refused(await cli(settings, tenants, "sync", "nosuch"))


async def test_csv_export_neutralises_formulas_in_every_text_field(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await db.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.db_schema}"')
    await migrate(db)
    run_id = uuid4()
    dangerous = ["=1+2", "+1", "-2", "@SUM(A1)", "\tx", "\rx"]
    for n, bad in enumerate(dangerous):
        await db.execute(
            "INSERT INTO findings (finding_id, tenant_id, run_id, stage, entity, sourced_id,"
            " rejected, code, severity, file, row, column_name, value, message)"
            " VALUES ($1, 'd1', $2, $3, $3, $3, true, $3, $3, $3, $4, $3, $3, $3)",
            uuid4(), run_id, bad, n,
        )  # fmt: skip
    await db.execute(
        "INSERT INTO findings (finding_id, tenant_id, run_id, stage, rejected, code, severity,"
        " message, value) VALUES ($1, 'd1', $2, 'validator', false, 'boolean_case', 'warning',"
        " 'plain', 'a=b')",
        uuid4(),
        run_id,
    )
    path = tmp_path / "findings.csv"
    await export_csv(db, "d1", run_id, path)
    with path.open(newline="") as handle:
        rows = {r["row"]: r for r in csv.DictReader(handle)}
    text_fields = ["severity", "code", "file", "column", "value", "message", "entity"]
    text_fields += ["sourced_id", "stage"]
    assert {n: [rows[str(n)][f] for f in text_fields] for n in range(len(dangerous))} == {
        n: ["'" + bad] * len(text_fields) for n, bad in enumerate(dangerous)
    }
    plain = rows[""]  # no row number: NULL
    assert (plain["value"], plain["message"], plain["file"], plain["code"]) == (
        "a=b",
        "plain",
        "",
        "boolean_case",
    )
