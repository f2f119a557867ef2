"""One sync run of a CSV bundle.

1. A ``started`` run event; the bundle's plan (manifest vs files, and which files reference a file
   the manifest declares absent) and an index of its ids.
2. For every rostering file, its facts (header, mode, manifest line, encoding) on every partition.
3. Every row as a record event, in dependency order (orgs before the users that point at them).
4. An end-of-run marker on every partition, and a ``fetched`` run event with per-file counts.
"""

from __future__ import annotations

import asyncio
import csv
import logging
from uuid import UUID

from aiokafka import AIOKafkaProducer
from rostersync_libs.envelope import EntityType
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenants import CsvSource, Tenant
from rostersync_libs.topics import Topics

from rostersync_fetcher.csv_bundle import Bundle, BundleError
from rostersync_fetcher.headers import HeaderMap
from rostersync_fetcher.index import INDEXED, BundleIndex, find_cycles, index_file
from rostersync_fetcher.plan import BundlePlan, PlannedFile, absent_but_referenced, plan_bundle
from rostersync_fetcher.publisher import RunPublisher
from rostersync_fetcher.records import FileContext, event_of_row
from rostersync_fetcher.unchanged import UnchangedRecords

log = logging.getLogger(__name__)


class CsvRun:
    """Publishes one bundle as one run."""

    def __init__(
        self,
        *,
        producer: AIOKafkaProducer,
        topics: Topics,
        tenant: Tenant,
        source: CsvSource,
        run_id: UUID,
        send_batch: int = 5000,
        unchanged: UnchangedRecords | None = None,
    ) -> None:
        self._tenant = tenant
        self._source = source
        self._run_id = run_id
        self._out = RunPublisher(
            producer=producer,
            topics=topics,
            tenant=tenant,
            source_id=source.id,
            run_id=run_id,
            send_batch=send_batch,
            unchanged=unchanged,
        )
        self.counts = self._out.counts
        self._incomplete: set[EntityType] = set()  # files that could not be read to their end

    async def run(self) -> RunEvent:
        """Publish the bundle; a bundle that cannot be read ends in a ``failed`` run event."""
        await self._run_event(RunPhase.STARTED)
        try:
            bundle = Bundle(self._source.path)
        except (BundleError, OSError) as exc:
            return await self._run_event(RunPhase.FAILED, reason=str(exc))
        try:
            plan = plan_bundle(bundle, self._tenant.validation)
            # Threads, so the event loop (Kafka heartbeats) keeps running through a long pass.
            plan = await asyncio.to_thread(absent_but_referenced, bundle, plan)
            index = await asyncio.to_thread(self._index, bundle, plan)
            for planned in plan.files:
                await self._out.file_facts(planned.facts)
            for planned in plan.files:
                if planned.published:
                    await self._publish_file(bundle, plan, planned, index)
        except (BundleError, OSError, UnicodeDecodeError) as exc:
            await self._out.flush()
            return await self._run_event(RunPhase.FAILED, reason=str(exc))
        finally:
            bundle.close()
        await self._out.end(
            [
                f.spec.entity
                for f in plan.files
                if f.published and f.facts.mode == "bulk" and f.spec.entity not in self._incomplete
            ]
        )
        return await self._run_event(RunPhase.FETCHED, plan=plan)

    def _index(self, bundle: Bundle, plan: BundlePlan) -> BundleIndex:
        index = BundleIndex()
        for planned in plan.files:
            entity = planned.spec.entity
            if planned.published and planned.encoding is not None and entity in INDEXED:
                index.files[entity] = index_file(
                    bundle, planned.facts.file, entity, planned.facts.mode, planned.encoding
                )
        orgs = index.files.get(EntityType.ORG)
        if orgs is not None:
            index.cyclic_orgs = find_cycles(orgs.parents)
        return index

    async def _publish_file(
        self, bundle: Bundle, plan: BundlePlan, planned: PlannedFile, index: BundleIndex
    ) -> None:
        assert planned.encoding is not None
        first_rows: dict[str, int] = {}
        last_row = 1
        try:
            with bundle.reader(planned.facts.file, planned.encoding) as (header, rows):
                ctx = FileContext(
                    tenant=self._tenant.id,
                    source=self._source.id,
                    run_id=self._run_id,
                    spec=planned.spec,
                    mode=planned.facts.mode,
                    version=plan.version,
                    header=HeaderMap.build(header, planned.spec),
                    index=index,
                )
                for row in rows:
                    last_row = row.number
                    await self._out.send(event_of_row(ctx, row, first_rows))
                    self.counts[planned.facts.file] += 1
        except csv.Error as exc:
            # The rest of the file cannot be read reliably: say where, keep what was read.
            self._incomplete.add(planned.spec.entity)
            facts = planned.facts.model_copy(
                update={"parse_error": f"after line {last_row}: {exc}"}
            )
            await self._out.file_facts(facts)

    async def _run_event(
        self, phase: RunPhase, *, plan: BundlePlan | None = None, reason: str | None = None
    ) -> RunEvent:
        return await self._out.run_event(
            phase,
            version=plan.version if plan else None,
            manifest=plan.manifest if plan else None,
            skipped=plan.skipped if plan else None,
            reason=reason,
        )
