"""One sync run of a CSV bundle.

1. A ``started`` run event; the bundle's plan (manifest vs files, and which files reference a file
   the manifest declares absent) and an index of its ids.
2. For every rostering file, its facts (header, mode, manifest line, encoding) on every partition.
3. Every row as a record event, in dependency order (orgs before the users that point at them).
4. An end-of-run marker on every partition, and a ``fetched`` run event with per-file counts.

Limits (the source's ``FileLimits``, see rostersync_libs/oneroster/cuts.py and roots.py): a source outside the fetcher's source roots,
a bundle too large to unpack or a zip bomb fails the run before anything is read; a line, row or
column limit cuts rows from a file, which is reported (a ``file`` event after the file's rows,
``parse_error`` ``[code] line N: …``) and keeps the file out of the bulk snapshot (nothing of its
entity is swept). A run that fails after it began publishing ends with aborted markers. Nothing
a bundle holds takes the fetcher down: an unexpected error fails the run with its reason.
"""

from __future__ import annotations

import asyncio
import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import asyncpg
import msgspec
from aiokafka import AIOKafkaProducer
from rostersync_libs.events import EntityType
from rostersync_libs.oneroster.bundle import Bundle, BundleError
from rostersync_libs.oneroster.cuts import Cut
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenants import CsvSource, FileLimits, InboxSource, SourceSelection, Tenant
from rostersync_libs.topics import Topics

from rostersync_fetcher.csv import inbox_folder
from rostersync_fetcher.csv.headers import HeaderMap
from rostersync_fetcher.csv.index import INDEXED, BundleIndex, find_cycles, index_file
from rostersync_fetcher.csv.plan import BundlePlan, PlannedFile, absent_but_referenced, plan_bundle
from rostersync_fetcher.csv.records import FileContext, event_of_row
from rostersync_fetcher.csv.roots import refusal, service_roots
from rostersync_fetcher.publisher import SEND_BATCH, RecordTooLarge, RunPublisher
from rostersync_fetcher.selection_pass import HeldLookup, Selector, bulk_entities, bundle_rules
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
        send_batch: int = SEND_BATCH,
        unchanged: UnchangedRecords | None = None,
        progress_db: asyncpg.Pool | None = None,
        limits: FileLimits | None = None,
        roots: Sequence[Path] | None = None,
    ) -> None:
        """``limits``: by default the source's own, or those of the tenant's source of the same
        id (an inbox's claimed bundle); ``roots``: by default the fetcher's ``source_roots``."""
        self._tenant = tenant
        self._source = source
        self._run_id = run_id
        configured = next((s for s in tenant.sources if s.id == source.id), None)
        if limits is None:
            if source.limits is None and isinstance(configured, CsvSource | InboxSource):
                limits = configured.file_limits
            else:
                limits = source.file_limits
        self._limits = limits
        self._max_attempts = (
            configured.max_claim_attempts if isinstance(configured, InboxSource) else None
        )
        self._roots = roots
        self._unchanged = unchanged
        self._began = False  # file facts went out: a failure from now on sends aborted markers
        self._out = RunPublisher(
            producer=producer,
            topics=topics,
            tenant=tenant,
            source_id=source.id,
            run_id=run_id,
            send_batch=send_batch,
            unchanged=unchanged,
            progress_db=progress_db,
        )
        self.counts = self._out.counts
        self._incomplete: set[EntityType] = set()  # files that could not be read to their end
        self._selector: Selector | None = None

    async def run(self) -> RunEvent:
        """Publish the bundle; a bundle that cannot be read ends in a ``failed`` run event."""
        await self._run_event(RunPhase.STARTED)
        path = self._source.path
        refused = refusal(path, service_roots() if self._roots is None else self._roots)
        if refused is None:
            refused = self._out.policy.problem()  # the tenant's pseudonym key is missing
        if refused is not None:
            return await self._run_event(RunPhase.FAILED, reason=refused)
        attempt = inbox_folder.note_attempt(path)
        if attempt is not None and attempt > (self._max_attempts or attempt):
            return await self._run_event(
                RunPhase.FAILED,
                reason=f"{inbox_folder.Claim(self._run_id, path).name}: the fetcher stopped"
                f" {attempt - 1} times while reading this bundle (max_claim_attempts);"
                " not read again",
            )
        try:
            bundle = await asyncio.to_thread(Bundle, path, self._limits)
        except (BundleError, OSError) as exc:
            return await self._run_event(RunPhase.FAILED, reason=str(exc))
        except Exception as exc:
            log.exception("tenant %s run %s: opening %s", self._tenant.id, self._run_id, path)
            return await self._run_event(RunPhase.FAILED, reason=_unexpected(exc))
        try:
            plan = await asyncio.to_thread(plan_bundle, bundle, self._tenant.validation)
            # Threads, so the event loop (Kafka heartbeats) keeps running through a long pass.
            plan = await asyncio.to_thread(absent_but_referenced, bundle, plan)
            index = await asyncio.to_thread(self._index, bundle, plan)
            selection = self._configured_selection()
            if selection is not None:
                rules = await bundle_rules(bundle, plan, selection, self._held_lookup())
                problem = rules.problem(bulk_entities(plan))
                if problem is not None:
                    return await self._fail(problem)  # before anything is published
                self._selector = self._out.selector(rules)
            self._began = True
            for planned in plan.files:
                await self._out.file_facts(planned.facts)
            for planned in plan.files:
                if planned.published:
                    await self._publish_file(bundle, plan, planned, index)
        except (BundleError, OSError, UnicodeDecodeError, RecordTooLarge) as exc:
            return await self._fail(str(exc))
        except Exception as exc:
            log.exception("tenant %s run %s: reading %s", self._tenant.id, self._run_id, path)
            return await self._fail(_unexpected(exc))
        finally:
            bundle.close()
        try:
            await self._out.end(
                [
                    f.spec.entity
                    for f in plan.files
                    if f.published
                    and f.facts.mode == "bulk"
                    and f.spec.entity not in self._incomplete
                ]
            )
        except RecordTooLarge as exc:  # among the last records, sent at the end
            return await self._fail(str(exc))
        return await self._run_event(RunPhase.FETCHED, plan=plan)

    def _held_lookup(self) -> HeldLookup | None:
        unchanged = self._unchanged
        if unchanged is None:
            return None
        return lambda entity: unchanged.held(self._tenant.id, self._source.id, entity)

    def _configured_selection(self) -> SourceSelection | None:
        """The source's selection; an inbox's claimed bundle has the inbox source's."""
        if self._source.selection is not None:
            return self._source.selection
        configured = next((s for s in self._tenant.sources if s.id == self._source.id), None)
        return configured.selection if isinstance(configured, CsvSource | InboxSource) else None

    async def _fail(self, reason: str) -> RunEvent:
        if self._began:
            return await self._out.fail(reason)  # aborted markers: every stage releases the run
        await self._out.flush()
        return await self._run_event(RunPhase.FAILED, reason=reason)

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
        cuts: list[Cut] = []
        try:
            with bundle.reading(planned.facts.file, planned.encoding) as reading:
                ctx = FileContext(
                    tenant=self._tenant.id,
                    source=self._source.id,
                    run_id=self._run_id,
                    spec=planned.spec,
                    mode=planned.record_mode,
                    version=plan.version,
                    header=HeaderMap.build(reading.header, planned.spec),
                    index=index,
                    selector=self._selector,
                    policy=self._out.policy,
                )
                try:
                    for row in reading.rows():
                        last_row = row.number
                        event = event_of_row(ctx, row, first_rows)
                        if event is None:
                            continue  # outside the source's selection (counted by the selector)
                        await self._out.send(event)
                        self.counts[planned.facts.file] += 1
                finally:
                    cuts = reading.cuts.cuts()
        except csv.Error as exc:
            # The rest of the file cannot be read reliably: say where, keep what was read.
            self._incomplete.add(planned.spec.entity)
            facts = msgspec.structs.replace(
                planned.facts, parse_error=f"after line {last_row}: {exc}"
            )
            await self._out.file_facts(facts)
        if cuts:
            # Rows were left out: the file is no complete snapshot (nothing of it is swept).
            self._incomplete.add(planned.spec.entity)
            for cut in cuts:
                await self._out.file_facts(
                    msgspec.structs.replace(planned.facts, parse_error=cut.fact())
                )

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


def _unexpected(exc: Exception) -> str:
    """The reason of a run failed by an error no limit foresaw (never the bundle's content)."""
    if isinstance(exc, MemoryError):
        return "out of memory reading the bundle (lower its limits: see FileLimits)"
    return f"unexpected error reading the bundle: {type(exc).__name__}: {str(exc)[:300]}"
