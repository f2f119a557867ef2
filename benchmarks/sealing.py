"""What sealing every event costs (sealing.py, sealed_clients.py), per event and per record.

Events are a generated district's users and enrollments (the bulk of every run), built as the
fetcher builds them. Measured with the product's own code paths: the producer's seal (key from
the cache, as on every event but a tenant's first) and the consumer's batch open, against the
local stack's PostgreSQL for the key. Compared with what one hop already spends on the same
event (pydantic envelope encode + decode) and with the chain's ≈ 250 µs of Python per record
(docs/benchmarks.md): a record is sealed three times (fetcher, validator, mapper) and opened
three times (validator, mapper, writer).

    python -m benchmarks.sealing [STUDENTS]
"""

from __future__ import annotations

import asyncio
import csv
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from aiokafka import ConsumerRecord, TopicPartition
from rostersync_cli.generate import DistrictShape, generate
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.events import (
    EntityType,
    RecordEvent,
    batches_of,
    decode,
    framed,
    record_event,
    records_of,
)
from rostersync_libs.ids import new_run_id
from rostersync_libs.sealed_clients import OpeningConsumer
from rostersync_libs.sealing import seal
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate

CHAIN_US_PER_RECORD = 250.0  # docs/benchmarks.md, 1M students, before sealing
HOPS = 3


def events(folder: Path) -> list[RecordEvent]:
    run_id = new_run_id()
    found = []
    for name, entity in (
        ("users.csv", EntityType.USER),
        ("enrollments.csv", EntityType.ENROLLMENT),
    ):
        with (folder / name).open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                found.append(record_event(tenant="bench", source="csv", run_id=run_id,
                                          entity=entity, sourced_id=row["sourcedId"], payload=row))  # fmt: skip
    return found


def consumer_batches(
    tp: TopicPartition, keys: list[bytes], values: list[bytes], size: int = 2000
) -> Iterator[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]:
    """Batches as ``getmany`` returns them (max_poll_records 2,000)."""
    for start in range(0, len(values), size):
        chunk = zip(keys[start : start + size], values[start : start + size], strict=True)
        yield {
            tp: [
                ConsumerRecord("t", 0, start + i, 0, 0, k, v, None, len(k), len(v), ())
                for i, (k, v) in enumerate(chunk)
            ]
        }


def per_event(seconds: float, n: int) -> float:
    return seconds / n * 1e6


async def measure(students: int) -> None:
    settings = ServiceSettings(db_schema="bench_sealing")
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), DistrictShape(students=students))
        built = events(Path(tmp))
    # v2: records travel in batch messages (sealed once per message, not once per record).
    values = [(b.key(0), data) for batch in batches_of(built) for b, data in framed(batch)]
    n = len(built)
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        keys = DataKeys(pool, settings)
        await keys.for_sealing("bench")  # made, then cached

        started = time.perf_counter()
        for whole in batches_of(built):
            for _, data in framed(whole):
                records_of(decode(data))  # type: ignore[arg-type]
        codec = per_event(time.perf_counter() - started, n)

        # The producer's work per event (SealingProducer.send): the tenant from the key, the
        # cached key, the seal.
        started = time.perf_counter()
        sealed = []
        for key, value in values:
            tenant = key.partition(b":")[0].decode()
            sealed.append(seal(await keys.for_sealing(tenant), tenant, value))
        seal_us = per_event(time.perf_counter() - started, n)

        consumer = OpeningConsumer(keys=keys, bootstrap_servers="127.0.0.1:1")
        tp = TopicPartition("t", 0)
        batches = list(consumer_batches(tp, [k for k, _ in values], sealed))
        started = time.perf_counter()
        for batch in batches:
            await consumer._open(batch)
        open_us = per_event(time.perf_counter() - started, n)
        assert batches[0][tp][0].value == values[0][1]
        await consumer.stop()
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {settings.db_schema} CASCADE")
        await close_pool(pool)

    size = sum(len(v) for _, v in values) / n  # per record, in its batch
    chain = HOPS * (seal_us + open_us)
    print(f"records: {n:,} users and enrollments of {students:,} students in {len(values):,}"
          f" batch messages, {size:.0f} bytes each")  # fmt: skip
    print(f"v2 batch encode + decode (one hop's codec): {codec:6.2f} µs per record")
    print(f"seal (cached key, producer path):           {seal_us:6.2f} µs per record")
    print(f"open (consumer batch path):                 {open_us:6.2f} µs per record")
    print(f"per record, {HOPS} seals + {HOPS} opens:              {chain:6.2f} µs"
          f" = {chain / CHAIN_US_PER_RECORD:.1%} of the chain's {CHAIN_US_PER_RECORD:.0f} µs")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
