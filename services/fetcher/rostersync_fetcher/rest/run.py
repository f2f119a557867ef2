"""One sync run of a OneRoster REST source.

1. A ``started`` run event; full or delta decided from the stored state (:func:`state.decide`).
2. Facts of every collection (as a CSV file's: the spec's header, the mode) on every partition.
3. Every collection in dependency order, page by page, each object as the same record events the
   CSV path makes (``shapes.py``); a delta asks ``dateLastModified>'mark - overlap'``.
4. The end-of-run marker on every partition (a full run lists every entity as a bulk snapshot, so
   the writer's sweep archives what the source hard-deleted), then the new state, then ``fetched``.

A request that cannot succeed fails the run: *aborted* markers on every partition (every stage
releases the run, the writer ends it ``failed`` and sweeps nothing), a ``failed`` run event with
the reason, no new state (the next run starts from the old marks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import msgspec
from aiokafka import AIOKafkaProducer
from rostersync_libs.events import (
    EntityType,
    FileFacts,
    Operation,
    Origin,
    RecordMode,
    SourceKind,
)
from rostersync_libs.events import record_event as make_record_event
from rostersync_libs.oneroster.columns import spec_for
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenants import ApiSource, Tenant
from rostersync_libs.timestamps import parse_utc_datetime
from rostersync_libs.topics import Topics

from rostersync_fetcher.csv.records import DELETE_STATUSES
from rostersync_fetcher.publisher import SEND_BATCH, RecordTooLarge, RunPublisher
from rostersync_fetcher.rest.client import OneRosterClient
from rostersync_fetcher.rest.errors import FetchError, ForbiddenError
from rostersync_fetcher.rest.index import RunIndex
from rostersync_fetcher.rest.paging import pages
from rostersync_fetcher.rest.selection import api_selection
from rostersync_fetcher.rest.shapes import COLLECTIONS, Collection, entities_of, shape
from rostersync_fetcher.rest.state import SourceState, StateStore, decide
from rostersync_fetcher.selection_pass import Selector
from rostersync_fetcher.unchanged import UnchangedRecords

log = logging.getLogger(__name__)

# Collections a district may withhold (a 403 on them skips them with a warning); the others are
# what every record refers to, and a 403 on them fails the run.
OPTIONAL_COLLECTIONS = frozenset({"demographics"})


def filter_time(value: datetime) -> str:
    """``2024-05-01T12:00:00.000Z``: what OneRoster servers compare dateLastModified with."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def delta_filter(mark: datetime, overlap_seconds: float) -> str:
    since = mark - timedelta(seconds=overlap_seconds)
    return f"dateLastModified>'{filter_time(since)}'"


@dataclass(frozen=True)
class ApiRunResult:
    event: RunEvent
    full: bool
    state: SourceState | None  # the state saved after the run (None when it failed)


class ApiRun:
    """Publishes one REST source as one run."""

    def __init__(
        self,
        *,
        producer: AIOKafkaProducer,
        topics: Topics,
        tenant: Tenant,
        source: ApiSource,
        run_id: UUID,
        client: OneRosterClient,
        store: StateStore,
        force_full: bool = False,
        send_batch: int = SEND_BATCH,
        unchanged: UnchangedRecords | None = None,
        progress_db: asyncpg.Pool | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tenant = tenant
        self._source = source
        self._run_id = run_id
        self._client = client
        self._store = store
        self._force_full = force_full
        self._clock = clock
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
        self._selector: Selector | None = None

    @property
    def _version(self) -> str:
        return self._source.version

    async def run(self) -> ApiRunResult:
        started = self._clock()
        await self._store.refresh()
        old = self._store.get(self._tenant.id, self._source.id)
        full, why = decide(
            old, self._source, [c.path for c in COLLECTIONS], started, forced=self._force_full
        )
        mode: RecordMode = "bulk" if full else "delta"
        manifest = {
            "source.kind": "oneroster-api",
            "oneroster.version": self._version,
            "sync": f"{'full' if full else 'delta'} ({why})",
            **{
                f"file.{c.path}": mode if self._source.reads(c.path) else "absent"
                for c in COLLECTIONS
            },
        }
        await self._out.run_event(RunPhase.STARTED, version=self._version, manifest=manifest)
        log.info(
            "tenant %s source %s run %s: %s sync (%s)",
            self._tenant.id,
            self._source.id,
            self._run_id,
            "full" if full else "delta",
            why,
        )
        marks: dict[str, datetime] = {}
        problem = self._out.policy.problem()  # the tenant's pseudonym key is missing
        if problem is not None:
            return ApiRunResult(event=await self._out.fail(problem), full=full, state=None)
        try:
            for collection in COLLECTIONS:
                await self._out.file_facts(self._facts(collection, mode))
            if self._source.selection is not None:
                rules = await api_selection(self._client, self._source, self._source.selection)
                problem = rules.problem({EntityType.ORG, EntityType.ACADEMIC_SESSION})
                if problem is not None:
                    raise FetchError(problem)
                self._selector = self._out.selector(rules)
            index = RunIndex(bulk=full)
            unread: list[Collection] = []  # not shared, or refused: nothing of them is swept
            for collection in COLLECTIONS:
                previous = None if full or old is None else old.marks.get(collection.path)
                if not self._source.reads(collection.path):
                    unread.append(collection)
                    continue
                try:
                    seen = await self._collection(collection, mode, index, previous)
                except ForbiddenError as exc:
                    if collection.path not in OPTIONAL_COLLECTIONS:
                        raise
                    await self._forbidden(collection, mode, str(exc))
                    unread.append(collection)
                    if previous is not None:
                        marks[collection.path] = previous
                    continue
                marks[collection.path] = self._mark(seen, previous, started)
        except FetchError as exc:
            event = await self._out.fail(f"{self._source.api_root}: {exc}")
            return ApiRunResult(event=event, full=full, state=None)
        except RecordTooLarge as exc:
            return ApiRunResult(event=await self._out.fail(str(exc)), full=full, state=None)
        read = [c for c in COLLECTIONS if c not in unread]
        bulk = [e for c in read for e in entities_of(c, self._version)] if full else []
        try:
            await self._out.end(bulk)
        except RecordTooLarge as exc:  # among the last records, sent at the end
            return ApiRunResult(event=await self._out.fail(str(exc)), full=full, state=None)
        # Only now, with every record and marker acknowledged, do the marks move on.
        state = SourceState(
            tenant=self._tenant.id,
            source=self._source.id,
            version=self._version,
            api_root=self._source.api_root,
            marks=marks,
            last_full_at=started if full else (old.last_full_at if old else None),
            last_run_id=self._run_id,
        )
        await self._store.save(state)
        event = await self._out.run_event(
            RunPhase.FETCHED, version=self._version, manifest=manifest
        )
        return ApiRunResult(event=event, full=full, state=state)

    @staticmethod
    def _mark(seen: datetime | None, previous: datetime | None, started: datetime) -> datetime:
        """The new high-water mark: the latest dateLastModified seen, never past the run's start
        (a clock far ahead on one record must not hide later changes); unchanged if nothing was
        seen; the run's start on a first run that saw nothing."""
        if seen is not None:
            return min(seen, started)
        return previous if previous is not None else started

    async def _forbidden(self, collection: Collection, mode: RecordMode, reason: str) -> None:
        """An optional collection the credentials may not read: a warning, and the run goes on."""
        log.warning("tenant %s source %s: %s: skipped", self._tenant.id, self._source.id, reason)
        facts = msgspec.structs.replace(
            self._facts(collection, mode),
            parse_error=f"[collection_forbidden]: {reason} (a scope the source was not"
            " granted): none of its records are synced and none are archived",
        )
        await self._out.file_facts(facts)

    def _facts(self, collection: Collection, mode: RecordMode) -> FileFacts:
        if not self._source.reads(collection.path):  # not shared: as a manifest's 'absent'
            return FileFacts(
                file=collection.origin, entity=collection.entity,
                oneroster_version=self._version, mode="absent", present=False,
                profile=self._tenant.validation,
            )  # fmt: skip
        spec = spec_for(self._version, collection.entity)
        return FileFacts(
            file=collection.origin,
            entity=collection.entity,
            oneroster_version=self._version,
            mode=mode,
            present=True,
            header=list(spec.names),
            has_rows=True,  # an empty collection is a fact of life for an API, not an error
            profile=self._tenant.validation,
        )

    async def _collection(
        self, collection: Collection, mode: RecordMode, index: RunIndex, previous: datetime | None
    ) -> datetime | None:
        """Publish one collection; the highest dateLastModified it held."""
        entities = entities_of(collection, self._version)
        index.reading(entities)
        filter_ = delta_filter(previous, self._source.delta_overlap_seconds) if previous else None
        bulk = mode == "bulk"
        highest: datetime | None = None
        position = 0
        async for items in pages(
            self._client,
            collection.path,
            page_size=self._source.page_size,
            filter_=filter_,
            window=self._source.max_concurrency,
        ):
            for obj in items:
                position += 1
                modified = parse_utc_datetime(_str(obj.get("dateLastModified")))
                if modified is not None and (highest is None or modified > highest):
                    highest = modified
                for record in shape(obj, collection.entity, self._version, bulk=bulk):
                    spec = spec_for(self._version, record.entity)
                    label = _label(collection, record.entity)
                    payload = record.payload
                    if self._selector is not None:
                        selected = self._selector.apply(record.entity, payload, label)
                        if selected is None:
                            continue  # outside the selection: never published nor indexed
                        payload = selected
                    event = make_record_event(
                        tenant=self._tenant.id,
                        source=self._source.id,
                        run_id=self._run_id,
                        entity=record.entity,
                        sourced_id=record.sourced_id,
                        # The tenant's policy applied before the (one) hash: what is sent.
                        payload=self._out.policy.treat(record.entity, payload),
                        operation=(
                            Operation.DELETE
                            if record.status in DELETE_STATUSES
                            else Operation.UPSERT
                        ),
                        date_last_modified=modified,
                        origin=Origin(file=collection.origin, row=position),
                        source_kind=SourceKind.REST,
                        oneroster_version=self._version,
                        mode=mode,
                        facts=index.facts(spec, payload),
                    )
                    await self._out.send(event)
                    index.add(record.entity, record.sourced_id)
                    self.counts[label] += 1
        index.finish(entities)
        return highest


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _label(collection: Collection, entity: EntityType) -> str:
    """The counts' key: the collection, and the entity when it is not the collection's own."""
    if entity is collection.entity:
        return collection.origin
    return f"{collection.origin}#{entity.value}"
