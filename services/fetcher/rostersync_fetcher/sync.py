"""One sync run of a CSV bundle: every record as an event, then the end-of-run markers."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from uuid import UUID

from aiokafka import AIOKafkaProducer
from rostersync_libs.kafka import partitions_of
from rostersync_libs.markers import run_end_event
from rostersync_libs.oneroster.columns import FILES_1_1
from rostersync_libs.tenants import CsvSource, Tenant

from rostersync_fetcher.csv_bundle import Bundle
from rostersync_fetcher.records import event_of_row

log = logging.getLogger(__name__)

PUBLISHED_MODES = frozenset({"bulk", "delta"})


@dataclass
class RunSummary:
    run_id: UUID
    tenant: str
    source: str
    counts: Counter[str] = field(default_factory=Counter)
    skipped_files: list[str] = field(default_factory=list)


async def sync_csv_bundle(
    *,
    producer: AIOKafkaProducer,
    topic: str,
    tenant: Tenant,
    source: CsvSource,
    run_id: UUID,
    send_batch: int = 5000,
) -> RunSummary:
    """Publish every record of the source's bundle, then a marker on every partition."""
    summary = RunSummary(run_id=run_id, tenant=tenant.id, source=source.id)
    bundle = Bundle(source.path)
    try:
        manifest = bundle.manifest()
        pending: list[asyncio.Future[object]] = []
        for spec in FILES_1_1:
            mode = manifest.get(f"file.{spec.entity.value}", "absent").strip().lower()
            if mode not in PUBLISHED_MODES or not bundle.exists(spec.file_name):
                summary.skipped_files.append(spec.file_name)
                continue
            for row in bundle.rows(spec.file_name):
                event = event_of_row(
                    tenant=tenant.id, source=source.id, run_id=run_id, spec=spec, row=row
                )
                pending.append(await producer.send(topic, event.to_bytes(), key=event.key()))
                summary.counts[spec.entity.value] += 1
                if len(pending) >= send_batch:
                    await asyncio.gather(*pending)
                    pending.clear()
        await asyncio.gather(*pending)
    finally:
        bundle.close()
    partitions = await partitions_of(producer, topic)
    markers = [
        await producer.send(
            topic,
            marker.to_bytes(),
            key=marker.key(),
            partition=partition,
        )
        for partition in partitions
        for marker in [
            run_end_event(
                tenant=tenant.id,
                source=source.id,
                run_id=run_id,
                fanout=len(partitions),
                counts=dict(summary.counts),
            )
        ]
    ]
    await asyncio.gather(*markers)
    log.info("tenant %s run %s: published %s", tenant.id, run_id, dict(summary.counts) or "nothing")
    return summary
