"""The events of rostersync's record topics (fetched, validated, mapped), version 2.

One type per kind of event, a tagged union on the wire (JSON by msgspec, the field ``type`` names
the kind; :func:`encode`, :func:`decode`):

- :class:`RecordBatch` (``records``): the records of one run bound for one partition, in order,
  each a :class:`Record` (an upsert or a delete) or a :class:`Seen` (a record a stage rejected:
  it was in the run, so a bulk run's sweep must not archive it). What a run has in common
  (tenant, source, run, OneRoster version) travels once per message, not once per record.
- :class:`FileEvent` (``file``): the facts of one file of a run, on every partition before its
  records.
- :class:`UnchangedList` (``unchanged``): records of a run the application already holds with the
  same content (sourcedId → content hash), one list per partition and batch.
- :class:`RunEnd` (``run_end``): the end-of-run marker, on every partition after the last record.

Inside a service one record is a :class:`RecordEvent` (its run's context and its own fields);
:func:`records_of` and :func:`batches_of` convert. A record's Kafka partition is still chosen by
its key ``tenant:entity:sourcedId`` (:func:`record_kafka_key`, the same partitioner as v1), so
every version of one record stays in one partition and in order; a batch's own Kafka key names
only its tenant, run and partition: no sourcedId is left in a key (a purge leaves no trace).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeAlias
from uuid import UUID, uuid4

import msgspec
import orjson

SCHEMA_VERSION = 2

# The largest encoded batch a producer sends (Kafka's default message limit is 1,048,588 bytes
# with framing); a batch over it is split, a single record over it is rejected by its producer.
MAX_BATCH_BYTES = 900_000
MAX_BATCH_RECORDS = 1_000


class EntityType(StrEnum):
    """OneRoster record types, named as the OneRoster files are."""

    ORG = "orgs"
    ACADEMIC_SESSION = "academicSessions"
    COURSE = "courses"
    CLASS = "classes"
    USER = "users"
    ENROLLMENT = "enrollments"
    DEMOGRAPHIC = "demographics"
    ROLE = "roles"
    USER_PROFILE = "userProfiles"


class Operation(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"
    # The record was in the run but rejected: it is not changed, but it was seen, so a bulk run's
    # sweep must not archive it (a typo must not delete a student). On the wire: a ``Seen``.
    SEEN = "seen"


class SourceKind(StrEnum):
    CSV = "csv"
    REST = "rest"


# "unlisted": the manifest has no line for the file (the validator warns if the file is there).
ManifestMode: TypeAlias = Literal["bulk", "delta", "absent", "unlisted"]
RecordMode: TypeAlias = Literal["bulk", "delta"]
Profile: TypeAlias = Literal["strict", "lenient"]


# Per-record structs are not tracked by the cycle collector (``gc=False``): they never take part in
# a reference cycle (what they hold — payload dicts, lists — is tracked on its own), and a batch
# of a thousand tracked objects per message made collections cost more than the decoding itself
# (records_of 2.55 → 0.64 µs per record, decode 2.18 → 0.98: benchmarks/event_codec.py).
class Origin(msgspec.Struct, gc=False, frozen=True, kw_only=True, omit_defaults=True):
    """Where a record came from, so every finding can point at it."""

    file: str | None = None
    row: int | None = None


class RecordFacts(msgspec.Struct, gc=False, frozen=True, kw_only=True, omit_defaults=True):
    """What only the whole bundle can tell about one record (the fetcher sees the whole bundle)."""

    # References whose target file is in this bundle (bulk) but lacks them, by column.
    dangling: dict[str, list[str]] = {}
    # References whose target is not in this bundle: the validator looks them up in the tenant.
    unresolved: dict[str, list[str]] = {}
    duplicate_of_row: int | None = None  # an earlier row of the same file has this sourcedId
    in_cycle: bool = False  # the org's parent chain comes back to it
    field_count: int | None = None  # set when the row's field count differs from the header's


class FileFacts(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the fetcher found out about one file of a bundle; the validator judges it."""

    file: str
    entity: EntityType
    oneroster_version: str = "1.1"  # as the manifest says it (the validator judges it)
    mode: ManifestMode = "absent"  # the manifest's word
    # The file's ``file.*`` line in manifest.csv and its value as written (``mode`` is how the
    # fetcher reads it); unset when the manifest does not list the file.
    manifest_line: int | None = None
    manifest_value: str | None = None
    # Declared absent: the bulk files of the bundle holding references to this file's entity,
    # with the columns that hold them (file → columns).
    referenced_by: dict[str, list[str]] = {}
    present: bool = True
    header: list[str] = []  # as found in the file
    has_rows: bool = True
    encoding: str = "utf-8"
    encoding_error: str | None = None  # the file is not UTF-8; what it was read as instead
    parse_error: str | None = None  # the CSV could not be read past this point
    profile: Profile = "lenient"  # the tenant's validation profile


class RunMarker(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """End-of-run bookkeeping: which upstream partition this marker stands for.

    A stage that has seen the markers of all ``origin_count`` upstream partitions on one of its
    input partitions knows that partition holds every record of the run (see docs/architecture.md).
    """

    origin_partition: int
    origin_count: int
    fanout: int
    counts: dict[str, int] = {}
    # Entities whose file was a complete bulk snapshot in this run (read to its end): records of
    # these the run did not see are archived when it completes.
    bulk_entities: list[EntityType] = []
    # The tenant's safety threshold when the run was fetched (a replay decides the same way).
    hold_threshold: float = 0.10
    hold_min_records: int = 20
    # The run failed (or was cancelled) after it began publishing: every stage releases it as it
    # releases a complete run, and the writer ends it ``failed`` and applies none of its removals.
    aborted: bool = False


class RecordEvent(msgspec.Struct, gc=False, frozen=True, kw_only=True, omit_defaults=True):
    """One record of a run, as a service holds it (on the wire, a batch carries the context)."""

    tenant: str
    source: str
    run_id: UUID
    entity: EntityType
    sourced_id: str
    source_kind: SourceKind = SourceKind.CSV
    operation: Operation = Operation.UPSERT
    oneroster_version: str | None = None
    mode: RecordMode | None = None  # how the record's file was declared
    date_last_modified: datetime | None = None
    content_hash: str | None = None
    origin: Origin | None = None
    payload: dict[str, Any] = {}
    internal_id: UUID | None = None  # set by the mapper
    facts: RecordFacts | None = None
    # operation=seen: the codes of the errors that rejected the record, so the writer can reject
    # what points at it with a finding that names the chain (see docs/architecture.md).
    rejected_codes: list[str] | None = None

    def key(self) -> bytes:
        """The record's partitioning key (not a Kafka key any more: see the module's note)."""
        return record_kafka_key(self.tenant, self.entity, self.sourced_id)

    def seen(self, codes: list[str]) -> RecordEvent:
        """This record as seen and rejected with ``codes``: nothing of its content goes on."""
        return msgspec.structs.replace(
            self, operation=Operation.SEEN, payload={}, facts=None, rejected_codes=codes
        )

    def to_bytes(self) -> bytes:
        """One record with its context (parked records, dead letters)."""
        return _ENCODER.encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> RecordEvent:
        return _RECORD_DECODER.decode(data)


# --- the wire -------------------------------------------------------------------------------


class Record(msgspec.Struct, gc=False, tag="record", frozen=True, kw_only=True, omit_defaults=True):
    """An upsert or a delete inside a :class:`RecordBatch`."""

    entity: EntityType
    sourced_id: str
    operation: Literal["upsert", "delete"] = "upsert"
    mode: RecordMode | None = None
    date_last_modified: datetime | None = None
    content_hash: str | None = None
    origin: Origin | None = None
    payload: dict[str, Any] = {}
    internal_id: UUID | None = None
    facts: RecordFacts | None = None


class Seen(msgspec.Struct, gc=False, tag="seen", frozen=True, kw_only=True, omit_defaults=True):
    """A record a stage rejected: seen in its run, nothing of its content."""

    entity: EntityType
    sourced_id: str
    rejected_codes: list[str]
    mode: RecordMode | None = None
    content_hash: str | None = None
    origin: Origin | None = None
    internal_id: UUID | None = None


class RecordBatch(msgspec.Struct, tag="records", frozen=True, kw_only=True, omit_defaults=True):
    """The records of one run bound for one partition, in the order they were produced."""

    tenant: str
    source: str
    run_id: UUID
    records: list[Record | Seen]
    source_kind: SourceKind = SourceKind.CSV
    oneroster_version: str | None = None
    schema_version: int = SCHEMA_VERSION

    def key(self, partition: int) -> bytes:
        return f"{self.tenant}:run:{self.run_id}:records:{partition}".encode()


class FileEvent(msgspec.Struct, tag="file", frozen=True, kw_only=True, omit_defaults=True):
    """The facts of one file of a run, sent to every partition before the file's records."""

    tenant: str
    source: str
    run_id: UUID
    facts: FileFacts
    schema_version: int = SCHEMA_VERSION

    @property
    def entity(self) -> EntityType:
        return self.facts.entity

    def key(self) -> bytes:
        return f"{self.tenant}:run:{self.run_id}:file:{self.facts.file}".encode()


class UnchangedList(msgspec.Struct, tag="unchanged", frozen=True, kw_only=True, omit_defaults=True):
    """Records of a run the application already holds with the same content: downstream only
    notes them as seen (sourcedId → content hash)."""

    tenant: str
    source: str
    run_id: UUID
    entity: EntityType
    listed: dict[str, str]
    list_id: UUID = msgspec.field(default_factory=uuid4)  # its key: lists have no natural one
    schema_version: int = SCHEMA_VERSION

    def key(self) -> bytes:
        return f"{self.tenant}:run:{self.run_id}:unchanged:{self.list_id}".encode()


class RunEnd(msgspec.Struct, tag="run_end", frozen=True, kw_only=True, omit_defaults=True):
    """The end-of-run marker for one partition (see :mod:`rostersync_libs.markers`)."""

    tenant: str
    source: str
    run_id: UUID
    marker: RunMarker
    schema_version: int = SCHEMA_VERSION

    def key(self) -> bytes:
        return f"{self.tenant}:run:{self.run_id}:{self.marker.origin_partition}".encode()


Event: TypeAlias = RecordBatch | FileEvent | UnchangedList | RunEnd

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Event)
_RECORD_DECODER = msgspec.json.Decoder(RecordEvent)

# What :func:`decode` raises on bytes that are not an event of this contract.
DecodeError = msgspec.DecodeError  # msgspec.ValidationError is a subclass


def encode(event: Event) -> bytes:
    return _ENCODER.encode(event)


def decode(data: bytes) -> Event:
    """The event in ``data``; raises :data:`DecodeError` when it is none (or lacks a part)."""
    return _DECODER.decode(data)


def records_of(batch: RecordBatch) -> list[RecordEvent]:
    """The batch's records, each with its run's context."""
    tenant, source, run_id = batch.tenant, batch.source, batch.run_id
    kind, version = batch.source_kind, batch.oneroster_version
    out: list[RecordEvent] = []
    for r in batch.records:
        if type(r) is Record:
            out.append(
                RecordEvent(
                    tenant=tenant,
                    source=source,
                    run_id=run_id,
                    source_kind=kind,
                    oneroster_version=version,
                    entity=r.entity,
                    sourced_id=r.sourced_id,
                    operation=Operation(r.operation),
                    mode=r.mode,
                    date_last_modified=r.date_last_modified,
                    content_hash=r.content_hash,
                    origin=r.origin,
                    payload=r.payload,
                    internal_id=r.internal_id,
                    facts=r.facts,
                )
            )
        else:
            assert isinstance(r, Seen)
            out.append(
                RecordEvent(
                    tenant=tenant,
                    source=source,
                    run_id=run_id,
                    source_kind=kind,
                    oneroster_version=version,
                    entity=r.entity,
                    sourced_id=r.sourced_id,
                    operation=Operation.SEEN,
                    mode=r.mode,
                    content_hash=r.content_hash,
                    origin=r.origin,
                    internal_id=r.internal_id,
                    rejected_codes=r.rejected_codes,
                )
            )
    return out


def wire_record(e: RecordEvent) -> Record | Seen:
    """One record as a batch carries it (its context left to the batch)."""
    if e.operation is Operation.SEEN:
        return Seen(
            entity=e.entity,
            sourced_id=e.sourced_id,
            rejected_codes=e.rejected_codes or [],
            mode=e.mode,
            content_hash=e.content_hash,
            origin=e.origin,
            internal_id=e.internal_id,
        )
    return Record(
        entity=e.entity,
        sourced_id=e.sourced_id,
        operation="delete" if e.operation is Operation.DELETE else "upsert",
        mode=e.mode,
        date_last_modified=e.date_last_modified,
        content_hash=e.content_hash,
        origin=e.origin,
        payload=e.payload,
        internal_id=e.internal_id,
        facts=e.facts,
    )


def _context(e: RecordEvent) -> tuple[str, str, UUID, SourceKind, str | None]:
    return (e.tenant, e.source, e.run_id, e.source_kind, e.oneroster_version)


def batches_of(records: Iterable[RecordEvent]) -> Iterator[RecordBatch]:
    """The records as batches, one per run of consecutive records sharing a context (in a stage's
    output that is one batch per input batch), in order; unbounded (see :func:`framed`)."""
    current: list[Record | Seen] = []
    context: tuple[str, str, UUID, SourceKind, str | None] | None = None
    for e in records:
        ctx = _context(e)
        if ctx != context and current:
            yield _batch(context, current)  # type: ignore[arg-type]
            current = []
        context = ctx
        current.append(wire_record(e))
    if current:
        yield _batch(context, current)  # type: ignore[arg-type]


def _batch(
    context: tuple[str, str, UUID, SourceKind, str | None], records: list[Record | Seen]
) -> RecordBatch:
    tenant, source, run_id, kind, version = context
    return RecordBatch(
        tenant=tenant,
        source=source,
        run_id=run_id,
        source_kind=kind,
        oneroster_version=version,
        records=records,
    )


def framed(
    batch: RecordBatch, max_bytes: int = MAX_BATCH_BYTES, max_records: int = MAX_BATCH_RECORDS
) -> Iterator[tuple[RecordBatch, bytes]]:
    """The batch encoded, split in order into messages of at most ``max_records`` records and
    ``max_bytes`` bytes; a single record over ``max_bytes`` comes out alone (its producer rejects
    it: :func:`too_large`)."""
    records = batch.records
    for start in range(0, len(records), max_records):
        part = msgspec.structs.replace(batch, records=records[start : start + max_records])
        yield from _fitted(part, max_bytes)


def _fitted(batch: RecordBatch, max_bytes: int) -> Iterator[tuple[RecordBatch, bytes]]:
    data = _ENCODER.encode(batch)
    if len(data) <= max_bytes or len(batch.records) == 1:
        yield batch, data
        return
    half = len(batch.records) // 2
    yield from _fitted(msgspec.structs.replace(batch, records=batch.records[:half]), max_bytes)
    yield from _fitted(msgspec.structs.replace(batch, records=batch.records[half:]), max_bytes)


def too_large(data: bytes, max_bytes: int = MAX_BATCH_BYTES) -> bool:
    return len(data) > max_bytes


def record_kafka_key(tenant: str, entity: EntityType, sourced_id: str) -> bytes:
    """The partitioning key of every event of one record, on every record topic."""
    return f"{tenant}:{entity}:{sourced_id}".encode()


# Framing, not content: a bulk file (or a full API read) leaves them out, a delta carries them;
# ``status`` decides the operation (a delete) and ``dateLastModified`` travels in the record.
FRAMING_COLUMNS = frozenset({"status", "dateLastModified"})


def content_hash(payload: dict[str, Any]) -> str:
    """A stable hash of a record's roster content, so unchanged records are not rewritten.

    The same record read from a bulk CSV, a delta CSV, a full or a delta API read has one hash:
    the framing columns are not part of it.
    """
    if FRAMING_COLUMNS.isdisjoint(payload):
        content = payload
    else:
        content = {k: v for k, v in payload.items() if k not in FRAMING_COLUMNS}
    encoded = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def flagged_hash(hash_: str, codes: list[str]) -> str:
    """The hash a record with findings is stored under: never equal to a clean record's hash, so
    the fetcher does not take it for unchanged and its findings are reported every run."""
    encoded = f"{hash_}|{','.join(sorted(codes))}".encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def record_event(
    *,
    tenant: str,
    source: str,
    run_id: UUID,
    entity: EntityType,
    sourced_id: str,
    payload: dict[str, Any],
    operation: Operation = Operation.UPSERT,
    date_last_modified: datetime | None = None,
    origin: Origin | None = None,
    source_kind: SourceKind = SourceKind.CSV,
    oneroster_version: str | None = None,
    mode: RecordMode | None = None,
    facts: RecordFacts | None = None,
    hash_: str | None = None,
) -> RecordEvent:
    """Build a record event with its content hash (``hash_`` when the caller has it already)."""
    return RecordEvent(
        tenant=tenant,
        source=source,
        source_kind=source_kind,
        run_id=run_id,
        entity=entity,
        operation=operation,
        sourced_id=sourced_id,
        date_last_modified=date_last_modified,
        content_hash=hash_ if hash_ is not None else content_hash(payload),
        origin=origin,
        payload=payload,
        oneroster_version=oneroster_version,
        mode=mode,
        facts=facts,
    )


def unchanged_list(
    *, tenant: str, source: str, run_id: UUID, entity: EntityType, listed: dict[str, str]
) -> UnchangedList:
    """A list of records of a run the application already holds unchanged (sourcedId → hash)."""
    return UnchangedList(tenant=tenant, source=source, run_id=run_id, entity=entity, listed=listed)


def partitioned(
    records: Sequence[RecordEvent],
    partitions: Sequence[int],
    choose: Callable[[bytes, Sequence[int], Sequence[int]], int],
) -> dict[int, list[RecordEvent]]:
    """The records by the partition their keys choose (``choose(key, all, available)``, Kafka's
    default partitioner), each partition's records in their order."""
    parts: dict[int, list[RecordEvent]] = {}
    for e in records:
        parts.setdefault(choose(e.key(), partitions, partitions), []).append(e)
    return parts
