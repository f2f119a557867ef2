"""The writer's throughput on a large enrollments load (issue: mapper and writer).

Method: N mapped enrollment events (as the mapper emits them) are produced to the mapped topic
first, with the run's end markers; then the real writer starts as its own process and the clock
runs from its start until the run is complete in PostgreSQL (every row committed, with its
positions). A second pass re-sends the same N events as a new run: unchanged rows (hash guard).

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

import asyncpg
from rostersync_cli.processes import service_environment
from rostersync_libs.envelope import EntityType, Envelope, record_event
from rostersync_libs.ids import internal_id, new_run_id
from rostersync_libs.kafka import ensure_topics, make_producer, partitions_of
from rostersync_libs.markers import run_end_event

from benchmarks.csv_memory import cleanup, settings_for

TENANT = "bench"


def enrollment(run_id: uuid.UUID, n: int) -> Envelope:
    klass, user = f"class-{n // 25}", f"user-{n}"
    payload = {
        "sourcedId": f"enr-{n:08d}", "classSourcedId": klass, "schoolSourcedId": "school-1",
        "userSourcedId": user, "role": "student", "primary": "false",
        "classInternalId": str(internal_id(TENANT, EntityType.CLASS, klass)),
        "schoolInternalId": str(internal_id(TENANT, EntityType.ORG, "school-1")),
        "userInternalId": str(internal_id(TENANT, EntityType.USER, user)),
    }  # fmt: skip
    event = record_event(tenant=TENANT, source="csv", run_id=run_id, entity=EntityType.ENROLLMENT,
                         sourced_id=payload["sourcedId"], payload=payload, mode="bulk")  # fmt: skip
    return event.model_copy(
        update={"internal_id": internal_id(TENANT, EntityType.ENROLLMENT, event.sourced_id or "")}
    )


async def produce(settings: object, count: int) -> uuid.UUID:
    from rostersync_libs.settings import ServiceSettings

    assert isinstance(settings, ServiceSettings)
    run_id = new_run_id()
    producer = make_producer(settings, "bench")
    await producer.start()
    topic = settings.topics.mapped
    pending = []
    for n in range(count):
        event = enrollment(run_id, n)
        pending.append(await producer.send(topic, event.to_bytes(), key=event.key()))
        if len(pending) >= 20_000:
            await asyncio.gather(*pending)
            pending.clear()
    parts = await partitions_of(producer, topic)
    marker = run_end_event(tenant=TENANT, source="csv", run_id=run_id, fanout=len(parts), counts={})
    for p in parts:
        pending.append(await producer.send(topic, marker.to_bytes(), key=marker.key(), partition=p))
    await asyncio.gather(*pending)
    await producer.stop()
    return run_id


async def timed_write(
    settings: object, run_id: uuid.UUID, env: dict[str, str]
) -> tuple[float, int]:
    from rostersync_libs.settings import ServiceSettings

    assert isinstance(settings, ServiceSettings)
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    started = time.perf_counter()
    writer = subprocess.Popen([sys.executable, "-m", "rostersync_writer"], env=env)  # noqa: ASYNC220
    try:
        while True:
            try:
                status = await conn.fetchval(
                    f"SELECT status FROM {settings.db_schema}.sync_runs WHERE run_id = $1", run_id
                )
            except asyncpg.UndefinedTableError:
                status = None
            if status == "completed":
                break
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
    finally:
        writer.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(writer.pid, 0)  # noqa: ASYNC222  (the child has been told to stop)
        writer.returncode = 0
        await conn.close()
    return elapsed, usage.ru_maxrss // 1024


async def main(count: int) -> None:
    settings = settings_for(uuid.uuid4().hex[:8]).model_copy(update={"log_level": "WARNING"})
    await ensure_topics(settings)
    env = service_environment(settings)
    try:
        t0 = time.perf_counter()
        first = await produce(settings, count)
        print(f"produced {count:,} mapped enrollments in {time.perf_counter() - t0:.1f} s")
        elapsed, rss = await timed_write(settings, first, env)
        print(
            f"{'first load':<24}{count / elapsed:>12,.0f} rows/s  {elapsed:>7.1f} s  writer peak RSS {rss} MB"
        )
        second = await produce(settings, count)
        elapsed, rss = await timed_write(settings, second, env)
        print(
            f"{'unchanged re-sync':<24}{count / elapsed:>12,.0f} rows/s  {elapsed:>7.1f} s  writer peak RSS {rss} MB"
        )
    finally:
        await cleanup(settings)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
