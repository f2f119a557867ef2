"""The event envelope carried by every rostersync topic.

One event is one roster record (``kind=record``), the facts about one file of a run
(``kind=file``), the records of a batch the application already holds unchanged
(``kind=unchanged``), or the end-of-run marker (``kind=run_end``) (see :class:`EventKind`). The
Kafka key is ``tenant:entity:sourcedId`` so that every version of one
record lands in one partition and stays in order; markers carry their own unique keys.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


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
    # sweep must not archive it (a typo must not delete a student).
    SEEN = "seen"


class EventKind(StrEnum):
    RECORD = "record"
    FILE = "file"  # facts about one file of a run, sent to every partition before its records
    RUN_END = "run_end"  # end-of-run marker, sent to every partition after the last record
    # Records of a run that the application already holds with the same content (sourcedId →
    # content hash), one event per partition and batch: downstream only notes them as seen.
    UNCHANGED = "unchanged"


class SourceKind(StrEnum):
    CSV = "csv"
    REST = "rest"


class Origin(BaseModel):
    """Where a record came from, so every finding can point at it."""

    model_config = ConfigDict(frozen=True)

    file: str | None = None
    row: int | None = None


class FileFacts(BaseModel):
    """What the fetcher found out about one file of a bundle; the validator judges it."""

    model_config = ConfigDict(frozen=True)

    file: str
    entity: EntityType | None = None
    oneroster_version: str = "1.1"
    mode: str = "absent"  # the manifest's word: bulk, delta or absent
    # The file's ``file.*`` line in manifest.csv and its value as written (``mode`` is how the
    # fetcher reads it); unset when the manifest does not list the file.
    manifest_line: int | None = None
    manifest_value: str | None = None
    # Declared absent: the bulk files of the bundle holding references to this file's entity,
    # with the columns that hold them (file → columns).
    referenced_by: dict[str, list[str]] = Field(default_factory=dict)
    present: bool = True
    header: list[str] = Field(default_factory=list)  # as found in the file
    has_rows: bool = True
    encoding: str = "utf-8"
    encoding_error: str | None = None  # the file is not UTF-8; what it was read as instead
    parse_error: str | None = None  # the CSV could not be read past this point
    profile: str = "lenient"  # the tenant's validation profile


class RecordFacts(BaseModel):
    """What only the whole bundle can tell about one record (the fetcher sees the whole bundle)."""

    model_config = ConfigDict(frozen=True)

    # References whose target file is in this bundle (bulk) but lacks them, by column.
    dangling: dict[str, list[str]] = Field(default_factory=dict)
    # References whose target is not in this bundle: the validator looks them up in the tenant.
    unresolved: dict[str, list[str]] = Field(default_factory=dict)
    duplicate_of_row: int | None = None  # an earlier row of the same file has this sourcedId
    in_cycle: bool = False  # the org's parent chain comes back to it
    field_count: int | None = None  # set when the row's field count differs from the header's


class RunMarker(BaseModel):
    """End-of-run bookkeeping: which upstream partition this marker stands for.

    A stage that has seen the markers of all ``origin_count`` upstream partitions on one of its
    input partitions knows that partition holds every record of the run (see docs/architecture.md).
    """

    model_config = ConfigDict(frozen=True)

    origin_partition: int
    origin_count: int
    fanout: int
    counts: dict[str, int] = Field(default_factory=dict)
    # Entities whose file was a complete bulk snapshot in this run (read to its end): records of
    # these the run did not see are archived when it completes.
    bulk_entities: list[EntityType] = Field(default_factory=list)
    # The tenant's safety threshold when the run was fetched (a replay decides the same way).
    hold_threshold: float = 0.10
    hold_min_records: int = 20
    # The run failed (or was cancelled) after it began publishing: every stage releases it as it
    # releases a complete run, and the writer ends it ``failed`` and applies none of its removals.
    aborted: bool = False


class Envelope(BaseModel):
    """One event on a rostersync topic."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID | None = None  # only events without a natural key carry one (unchanged lists)
    schema_version: int = SCHEMA_VERSION
    kind: EventKind = EventKind.RECORD
    tenant: str
    source: str
    source_kind: SourceKind = SourceKind.CSV
    run_id: UUID
    entity: EntityType | None = None
    operation: Operation = Operation.UPSERT
    sourced_id: str | None = None
    date_last_modified: datetime | None = None
    content_hash: str | None = None
    origin: Origin | None = None
    produced_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    payload: dict[str, Any] = Field(default_factory=dict)
    internal_id: UUID | None = None
    oneroster_version: str | None = None
    mode: str | None = None  # bulk or delta: how the record's file was declared
    facts: RecordFacts | None = None
    file: FileFacts | None = None
    marker: RunMarker | None = None
    unchanged: dict[str, str] | None = None  # kind=unchanged: sourcedId → content hash
    # operation=seen: the codes of the errors that rejected the record, so the writer can reject
    # what points at it with a finding that names the chain (see docs/architecture.md).
    rejected_codes: list[str] | None = None

    def key(self) -> bytes:
        """The Kafka key: keeps all events of one record in one partition, in order."""
        if self.kind is EventKind.RECORD:
            return record_kafka_key(self.tenant, self.entity, self.sourced_id)
        if self.kind is EventKind.FILE:
            assert self.file is not None
            return f"{self.tenant}:run:{self.run_id}:file:{self.file.file}".encode()
        if self.kind is EventKind.UNCHANGED:
            return f"{self.tenant}:run:{self.run_id}:unchanged:{self.event_id}".encode()
        assert self.marker is not None
        return f"{self.tenant}:run:{self.run_id}:{self.marker.origin_partition}".encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        return cls.model_validate_json(data)


def record_kafka_key(tenant: str, entity: EntityType | None, sourced_id: str | None) -> bytes:
    """The Kafka key of every event of one record, on every record topic."""
    return f"{tenant}:{entity}:{sourced_id}".encode()


# Framing, not content: a bulk file (or a full API read) leaves them out, a delta carries them;
# ``status`` decides the operation (a delete) and ``dateLastModified`` travels in the envelope.
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


def unchanged_event(
    *, tenant: str, source: str, run_id: UUID, entity: EntityType, listed: dict[str, str]
) -> Envelope:
    """A list of records of a run the application already holds unchanged (sourcedId → hash)."""
    return Envelope(
        event_id=uuid4(),  # its key: lists have no natural one
        kind=EventKind.UNCHANGED,
        tenant=tenant,
        source=source,
        run_id=run_id,
        entity=entity,
        unchanged=listed,
    )


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
    mode: str | None = None,
    facts: RecordFacts | None = None,
) -> Envelope:
    """Build a record event with its content hash."""
    return Envelope(
        tenant=tenant,
        source=source,
        source_kind=source_kind,
        run_id=run_id,
        entity=entity,
        operation=operation,
        sourced_id=sourced_id,
        date_last_modified=date_last_modified,
        content_hash=content_hash(payload),
        origin=origin,
        payload=payload,
        oneroster_version=oneroster_version,
        mode=mode,
        facts=facts,
    )
