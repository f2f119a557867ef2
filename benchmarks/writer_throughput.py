"""The writer's throughput on a large load: N enrollments with what they point at (issue: mapper
and writer; referential integrity).

Method: one run of mapped events (as the mapper emits them: ``map_event(record_event(...))``) is
produced to the mapped topic first, in the order the fetcher publishes files — one org
``school-1``, one academic session ``term-1``, one course ``course-1``, N/25 classes, N users
(students of school-1), then N enrollments (25 students per class) — with the run's end markers.
Then the real writer starts as its own process and the clock runs from its start until the run
is complete in PostgreSQL (every row committed with its positions, parked records settled, the
completion's checks done). A second pass re-sends the same records, whole, as a new run:
unchanged rows (the writer's hash guard; a re-sync through the pipeline sends lists instead).

What is counted: records of the run (org + session + course + classes + users + enrollments =
2N + N/25 + 3), each one row of its table; the link rows that users (user_orgs) and classes
(class_terms) also write are not counted. Two rates: from the writer's start (process start,
migrations and group join included) and from its first committed batch to the completed run;
and the writer process's CPU seconds (less sensitive than wall time to other work on the
machine; PostgreSQL's share is not in it).

Also printed: how many records the writer parked (inserts into ``parked_records``: records whose
target had no verdict yet when they were read), how many it refused (``rejected_records`` with
stage ``writer``; 0 in a clean run), and the time of the integrity check a run's completion ends
with (``count_dangling``) alone on the loaded schema. The last three need a writer that has them
(they print ``n/a`` against an older one).

    .venv/bin/python -m benchmarks.writer_throughput [N]      # default 1,000,000

Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL if set, else the local stack.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from rostersync_cli.processes import service_environment
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.events import (
    EntityType,
    Origin,
    RecordEvent,
    batches_of,
    encode,
    framed,
    partitioned,
    record_event,
)
from rostersync_libs.ids import new_run_id
from rostersync_libs.kafka import ensure_topics, make_producer, partitions_of
from rostersync_libs.markers import run_end_event
from rostersync_libs.partitioning import key_partition
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate
from rostersync_mapper.mapping import map_event

from benchmarks.csv_memory import cleanup, settings_for

TENANT = "bench"
E = EntityType
STUDENTS_PER_CLASS = 25


def mapped(
    run_id: uuid.UUID, entity: EntityType, row: int, sourced_id: str, payload: dict[str, Any]
) -> RecordEvent:
    """A mapped event as the fetcher and mapper make it (default ids: no identity decisions)."""
    event = record_event(
        tenant=TENANT, source="csv", run_id=run_id, entity=entity, sourced_id=sourced_id,
        payload={"sourcedId": sourced_id, **payload}, mode="bulk", oneroster_version="1.1",
        origin=Origin(file=f"{entity.value}.csv", row=row),
    )  # fmt: skip
    forward = map_event(event).forward
    assert forward is not None
    return forward


def classes(count: int) -> int:
    return (count + STUDENTS_PER_CLASS - 1) // STUDENTS_PER_CLASS


def groups(count: int) -> list[tuple[str, int]]:
    """(entity group, records), in the order they are produced."""
    return [
        ("orgs", 1),
        ("academic sessions", 1),
        ("courses", 1),
        ("classes", classes(count)),
        ("users", count),
        ("enrollments", count),
    ]


def run_events(run_id: uuid.UUID, count: int) -> Iterator[RecordEvent]:
    """The run's records, targets first (as the fetcher publishes files in order)."""
    yield mapped(run_id, E.ORG, 2, "school-1", {"name": "School 1", "type": "school"})
    yield mapped(run_id, E.ACADEMIC_SESSION, 2, "term-1", {
        "title": "Fall", "type": "term", "startDate": "2025-08-15", "endDate": "2025-12-19",
        "schoolYear": "2026",
    })  # fmt: skip
    yield mapped(run_id, E.COURSE, 2, "course-1", {
        "title": "Course 1", "courseCode": "C1", "orgSourcedId": "school-1",
    })  # fmt: skip
    for k in range(classes(count)):
        yield mapped(run_id, E.CLASS, k + 2, f"class-{k}", {
            "title": f"Class {k}", "classCode": f"C1-{k}", "classType": "scheduled",
            "courseSourcedId": "course-1", "schoolSourcedId": "school-1",
            "termSourcedIds": ["term-1"],
        })  # fmt: skip
    for n in range(count):
        yield mapped(run_id, E.USER, n + 2, f"user-{n}", {
            "enabledUser": "true", "orgSourcedIds": ["school-1"], "role": "student",
            "username": f"student{n}", "givenName": f"Given{n}", "familyName": f"Family{n % 997}",
        })  # fmt: skip
    for n in range(count):
        yield mapped(run_id, E.ENROLLMENT, n + 2, f"enr-{n:08d}", {
            "classSourcedId": f"class-{n // STUDENTS_PER_CLASS}", "schoolSourcedId": "school-1",
            "userSourcedId": f"user-{n}", "role": "student", "primary": "false",
        })  # fmt: skip


async def send_batches(
    producer: Any, topic: str, parts: list[int], records: list[RecordEvent]
) -> list[Any]:
    """The records as v2 batch messages on the partitions their keys pick (as the mapper sends)."""
    sent = []
    for p, part in partitioned(records, parts, key_partition).items():
        for batch in batches_of(part):
            for frame, data in framed(batch):
                sent.append(await producer.send(topic, data, key=frame.key(p), partition=p))
    return sent


async def produce(settings: ServiceSettings, count: int) -> uuid.UUID:
    run_id = new_run_id()
    pool = await create_pool(settings, max_size=1)
    producer = make_producer(settings, "bench", DataKeys(pool, settings))  # sealed, as live
    await producer.start()
    topic = settings.topics.mapped
    pending = []
    parts = await partitions_of(producer, topic)
    chunk: list[RecordEvent] = []
    for event in run_events(run_id, count):
        chunk.append(event)
        if len(chunk) >= 20_000:
            pending += await send_batches(producer, topic, parts, chunk)
            chunk = []
    pending += await send_batches(producer, topic, parts, chunk)
    marker = run_end_event(tenant=TENANT, source="csv", run_id=run_id, fanout=len(parts), counts={})
    for p in parts:
        pending.append(await producer.send(topic, encode(marker), key=marker.key(), partition=p))
    # The writer completes a run only on the fetcher's word that publishing ended (run_ends.py).
    fetched = RunEvent(tenant=TENANT, run_id=run_id, source="csv", phase=RunPhase.FETCHED,
                       file_counts={}, bulk_entities=[], fanout=len(parts))  # fmt: skip
    pending.append(
        await producer.send(
            settings.topics.runs, fetched.model_dump_json().encode(), key=fetched.key()
        )
    )
    await asyncio.gather(*pending)
    await producer.stop()
    await close_pool(pool)
    return run_id


@dataclass
class Timing:
    total: float  # writer process start → run completed
    busy: float  # first committed batch → run completed
    rss_mb: int
    cpu: float  # the writer process's CPU seconds (user + system), PostgreSQL's not included


async def timed_write(settings: ServiceSettings, run_id: uuid.UUID, env: dict[str, str]) -> Timing:
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    started = time.perf_counter()
    first_batch: float | None = None
    writer = subprocess.Popen([sys.executable, "-m", "rostersync_writer"], env=env)  # noqa: ASYNC220
    try:
        while True:
            try:
                status = await conn.fetchval(
                    f"SELECT status FROM {settings.db_schema}.sync_runs WHERE run_id = $1", run_id
                )
            except asyncpg.UndefinedTableError:
                status = None
            if status is not None and first_batch is None:
                first_batch = time.perf_counter()  # the run's row comes with its first batch
            if status == "completed":
                break
            if writer.poll() is not None:
                raise RuntimeError(f"the writer exited ({writer.returncode})")
            await asyncio.sleep(0.1)
        ended = time.perf_counter()
    finally:
        if writer.poll() is None:
            writer.send_signal(signal.SIGTERM)
            _, _, usage = os.wait4(writer.pid, 0)  # noqa: ASYNC222  (the child has been told to stop)
            writer.returncode = 0
            rss, cpu = usage.ru_maxrss // 1024, usage.ru_utime + usage.ru_stime
        else:
            rss, cpu = 0, 0.0
        await conn.close()
    assert first_batch is not None
    return Timing(ended - started, ended - first_batch, rss, cpu)


async def _scalar(conn: asyncpg.Connection, sql: str, *args: object) -> Any:
    """A value the older writer's schema may not have (then None)."""
    try:
        return await conn.fetchval(sql, *args)
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError):
        return None


async def parked_inserts(conn: asyncpg.Connection, schema: str) -> int | None:
    """Rows ever inserted into parked_records (cumulative; the statistics lag by up to a second)."""
    await asyncio.sleep(1.5)
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    inserted: int | None = await conn.fetchval(
        "SELECT n_tup_ins FROM pg_stat_user_tables WHERE schemaname = $1"
        " AND relname = 'parked_records'",
        schema,
    )
    return inserted


def show(label: str, records: int, t: Timing, parked: int | None, previous: int | None) -> None:
    new_parked = "n/a" if parked is None else f"{parked - (previous or 0):,}"
    print(
        f"{label:<20}{records / t.total:>9,.0f} records/s ({t.total:6.1f} s from start)"
        f"{records / t.busy:>9,.0f} records/s ({t.busy:6.1f} s from first batch)"
        f"  writer CPU {t.cpu:.1f} s, peak RSS {t.rss_mb} MB  parked {new_parked}"
    )


async def checks(conn: asyncpg.Connection, runs: list[uuid.UUID]) -> None:
    refused = await conn.fetchval("SELECT count(*) FROM rejected_records WHERE stage = 'writer'")
    print(f"records refused by the writer (rejected_records, stage writer): {refused}")
    dangling = [
        await _scalar(conn, "SELECT dangling FROM run_outcomes WHERE run_id = $1", r) for r in runs
    ]
    print(f"dangling per run (run_outcomes.dangling): {dangling}")
    left = await _scalar(conn, "SELECT count(*) FROM parked_records")
    print(f"records still parked: {'n/a' if left is None else left}")
    try:
        from rostersync_writer.dangling import count_dangling
    except ImportError:
        print("count_dangling: n/a (this writer has none)")
        return
    times = []
    for _ in range(3):
        started = time.perf_counter()
        found = await count_dangling(conn, TENANT)
        times.append(time.perf_counter() - started)
    print(
        "count_dangling alone on the loaded schema: "
        + " / ".join(f"{t:.2f}" for t in times)
        + f" s (3 runs), found {found or 'nothing'}"
    )


async def main(count: int) -> None:
    settings = settings_for(uuid.uuid4().hex[:8]).model_copy(update={"log_level": "WARNING"})
    await ensure_topics(settings)
    env = service_environment(settings)
    records = sum(n for _, n in groups(count))
    print(f"one run = {records:,} records: " + ", ".join(f"{n:,} {g}" for g, n in groups(count)))
    try:
        conn = await asyncpg.connect(
            settings.database_url.get_secret_value(),
            server_settings={"search_path": settings.db_schema},
        )
        try:
            # The schema first: producing seals with the tenant's data key, kept in its tables.
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.db_schema}"')
            await migrate(conn)
            t0 = time.perf_counter()
            first = await produce(settings, count)
            print(f"produced in {time.perf_counter() - t0:.1f} s")
            timing = await timed_write(settings, first, env)
            parked_first = await parked_inserts(conn, settings.db_schema)
            show("first load", records, timing, parked_first, 0)
            second = await produce(settings, count)
            timing = await timed_write(settings, second, env)
            parked_both = await parked_inserts(conn, settings.db_schema)
            show("unchanged re-sync", records, timing, parked_both, parked_first)
            await checks(conn, [first, second])
        finally:
            await conn.close()
    finally:
        await cleanup(settings)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
