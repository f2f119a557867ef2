"""The single-process baseline: parse → validate → map → upsert with the pipeline's own library
code, no Kafka in between (the same CsvRun reads the bundle; its 'producer' hands each batch of
events straight to the validator, mapper and writer code).

benchmarks/pipeline.py runs it after the pipeline on the same bundle; on its own (for a size
whose pipeline run skipped it):

    .venv/bin/python -m benchmarks.baseline 1000000
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import asyncpg
from rostersync_fetcher.csv.run import CsvRun
from rostersync_libs.db import create_pool
from rostersync_libs.events import FileEvent, RecordBatch, RecordEvent, decode, records_of
from rostersync_libs.ids import new_run_id
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate
from rostersync_libs.tenants import CsvSource, Tenant
from rostersync_mapper.mapping import map_event
from rostersync_validator.handler import ValidatorHandler
from rostersync_validator.known import KnownKeys
from rostersync_writer.batch import apply_records

BATCH = 5000


class InlinePipeline:
    """Quacks like the producer CsvRun uses; every BATCH records run through the stages."""

    def __init__(self, pool: asyncpg.Pool, validator: ValidatorHandler) -> None:
        self._pool = pool
        self._validator = validator
        self._batch: list[RecordEvent] = []
        self.records = 0

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, **_: Any
    ) -> asyncio.Future[None]:
        event = decode(value)  # the same decode cost a stage pays
        if isinstance(event, FileEvent):
            self._validator.on_file(event, 0)
        elif isinstance(event, RecordBatch):
            self._batch.extend(records_of(event))
            if len(self._batch) >= BATCH:
                await self.flush()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        return None

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def flush(self) -> None:
        outcomes = await self._validator.handle(self._batch)
        valid = [o.forward for o in outcomes if o.forward is not None]
        mapped = [m.forward for m in (map_event(e) for e in valid) if m.forward is not None]
        async with self._pool.acquire() as conn, conn.transaction():
            await apply_records(conn, mapped)
        self.records += len(self._batch)
        self._batch.clear()


async def run_baseline(settings: ServiceSettings, bundle: Path, run_id: UUID) -> tuple[int, float]:
    """Records through all stages and the seconds it took, into ``settings.db_schema``."""
    pool = await create_pool(settings)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        pipeline = InlinePipeline(pool, ValidatorHandler(KnownKeys(pool)))
        tenant = Tenant(id="bench", name="Bench", sources=[CsvSource(id="csv", path=bundle)])
        started = time.perf_counter()
        await CsvRun(producer=cast(Any, pipeline), topics=settings.topics, tenant=tenant,
                     source=CsvSource(id="csv", path=bundle), run_id=run_id).run()  # fmt: skip
        await pipeline.flush()
        return pipeline.records, time.perf_counter() - started
    finally:
        await pool.close()


async def main(students: int) -> None:
    from rostersync_cli.generate import DistrictShape, generate

    from benchmarks.csv_memory import cleanup, settings_for  # local stack unless servers set

    settings = settings_for(uuid.uuid4().hex[:8])
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        generate(bundle, DistrictShape(students=students))
        done, seconds = await run_baseline(settings, bundle, new_run_id())
    await cleanup(settings)
    print(f"baseline: {students:,} students, {done:,} records in {seconds:.1f} s"
          f" = {done / seconds:,.0f} records/s")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
