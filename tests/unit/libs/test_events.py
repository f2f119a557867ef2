"""The record topics' contract, v2 (:mod:`rostersync_libs.events`): every kind of event round
trips, anything else is a tagged decode error naming the field, batches are framed within their
bounds in order, and a rejected record's seen version carries nothing of its content."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from rostersync_libs import events
from rostersync_libs.events import (
    EntityType,
    FileEvent,
    FileFacts,
    Operation,
    Origin,
    RecordBatch,
    RecordEvent,
    RecordFacts,
    Seen,
    content_hash,
    record_event,
    unchanged_list,
)
from rostersync_libs.ids import internal_id
from rostersync_libs.markers import run_end_event


def _record(sourced_id: str = "u-1", **fields: Any) -> RecordEvent:
    defaults: dict[str, Any] = {
        "tenant": "t1", "source": "csv", "run_id": uuid4(), "entity": EntityType.USER,
        "sourced_id": sourced_id, "payload": {"sourcedId": sourced_id},
    }  # fmt: skip
    return record_event(**(defaults | fields))


def test_record_key_keeps_one_record_in_one_partition() -> None:
    assert _record().key() == b"t1:users:u-1"


def test_every_kafka_key_starts_with_its_tenant_and_names_no_record() -> None:
    run_id = uuid4()
    marker = run_end_event(tenant="t1", source="csv", run_id=run_id, fanout=3, counts={"users": 2})
    batch = next(events.batches_of([_record(run_id=run_id)]))
    file = FileEvent(tenant="t1", source="csv", run_id=run_id,
                     facts=FileFacts(file="users.csv", entity=EntityType.USER))  # fmt: skip
    listed = unchanged_list(tenant="t1", source="csv", run_id=run_id, entity=EntityType.USER,
                            listed={"u-1": "h"})  # fmt: skip
    keys = [marker.key(), batch.key(2), file.key(), listed.key()]
    assert all(key.startswith(b"t1:run:") for key in keys)
    assert len(set(keys)) == len(keys)
    assert not any(b"u-1" in key for key in keys)
    assert batch.key(2).endswith(b":records:2")


def test_every_kind_of_event_round_trips_through_bytes() -> None:
    run_id = uuid4()
    record = _record(
        run_id=run_id, payload={"name": "A", "grades": ["01", "02"]}, operation=Operation.UPSERT,
        date_last_modified=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        origin=Origin(file="users.csv", row=3), mode="delta", oneroster_version="1.2",
        facts=RecordFacts(unresolved={"orgSourcedIds": ["o1"]}),
    )  # fmt: skip
    seen = _record("u-2", run_id=run_id, oneroster_version="1.2").seen(["dangling_reference"])
    every: list[events.Event] = [
        next(events.batches_of([record, seen])),
        FileEvent(tenant="t1", source="csv", run_id=run_id,
                  facts=FileFacts(file="users.csv", entity=EntityType.USER, mode="bulk",
                                  header=["sourcedId"], profile="strict")),
        unchanged_list(tenant="t1", source="csv", run_id=run_id, entity=EntityType.USER,
                       listed={"u-3": "h3"}),
        run_end_event(tenant="t1", source="csv", run_id=run_id, fanout=3, counts={"users": 2}),
    ]  # fmt: skip
    for event in every:
        assert events.decode(events.encode(event)) == event
    (batch,) = events.batches_of([record, seen])
    assert events.records_of(batch) == [record, seen]  # in memory as they were
    assert [type(r) for r in batch.records] == [events.Record, Seen]


def test_one_record_with_its_context_round_trips_through_bytes() -> None:
    record = _record(payload={"name": "A"}, origin=Origin(file="users.csv", row=2))
    assert RecordEvent.from_bytes(record.to_bytes()) == record


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (b"{not json", ["malformed"]),
        (b"[]", ["Expected `object`"]),
        (b'{"type": "nope", "tenant": "t1"}', ["Invalid value", "$.type"]),
        (b'{"type": "file", "tenant": "t1", "source": "csv", "run_id": "%s"}',
         ["missing required field `facts`"]),
        (b'{"type": "records", "tenant": "t1", "source": "csv", "run_id": "%s",'
         b' "records": [{"type": "record", "entity": "users"}]}',
         ["missing required field `sourced_id`", "$.records[0]"]),
        (b'{"type": "records", "tenant": "t1", "source": "csv", "run_id": "%s",'
         b' "records": [{"type": "record", "entity": "pets", "sourced_id": "x"}]}',
         ["Invalid enum value", "$.records[0].entity"]),
    ],
)  # fmt: skip
def test_what_is_not_an_event_is_a_decode_error_naming_where(
    value: bytes, words: list[str]
) -> None:
    if b"%s" in value:
        value = value % str(uuid4()).encode()
    with pytest.raises(events.DecodeError) as raised:
        events.decode(value)
    for word in words:
        assert word in str(raised.value)


def test_a_batch_is_framed_within_its_bounds_in_order() -> None:
    run_id = uuid4()
    records = [_record(f"u{n}", run_id=run_id, payload={"pad": "x" * 300}) for n in range(2500)]
    (batch,) = events.batches_of(records)
    frames = list(events.framed(batch, max_bytes=100_000))
    assert all(len(part.records) <= events.MAX_BATCH_RECORDS for part, _ in frames)
    assert all(len(data) <= 100_000 for _, data in frames)
    assert len(frames) > 3  # bounded by size here, not only by count
    assert [r for part, _ in frames for r in part.records] == batch.records
    assert all(events.decode(data) == part for part, data in frames)
    counted = list(events.framed(batch))
    assert [len(part.records) for part, _ in counted] == [1000, 1000, 500]


def test_a_record_alone_over_the_limit_comes_out_alone() -> None:
    run_id = uuid4()
    big = _record("big", run_id=run_id, payload={"pad": "x" * 5000})
    small = [_record(f"s{n}", run_id=run_id) for n in range(3)]
    (batch,) = events.batches_of([small[0], big, *small[1:]])
    frames = list(events.framed(batch, max_bytes=2000))
    alone = [(part, data) for part, data in frames if events.too_large(data, 2000)]
    assert [[r.sourced_id for r in part.records] for part, _ in alone] == [["big"]]
    assert [r.sourced_id for part, _ in frames for r in part.records] == [
        "s0", "big", "s1", "s2"
    ]  # fmt: skip


def test_batches_split_where_the_context_changes() -> None:
    a, b = uuid4(), uuid4()
    records = [_record("1", run_id=a), _record("2", run_id=a), _record("3", run_id=b)]
    batches = list(events.batches_of(records))
    assert [(x.run_id, len(x.records)) for x in batches] == [(a, 2), (b, 1)]


def test_a_seen_record_carries_its_key_and_codes_but_nothing_of_its_content() -> None:
    record = _record(payload={"givenName": "Ann"}, facts=RecordFacts(in_cycle=True),
                     origin=Origin(file="users.csv", row=4), mode="bulk")  # fmt: skip
    seen = record.seen(["missing_required_data"])
    assert (seen.operation, seen.payload, seen.facts) == (Operation.SEEN, {}, None)
    assert seen.rejected_codes == ["missing_required_data"]
    assert (seen.key(), seen.origin, seen.mode) == (record.key(), record.origin, record.mode)
    (batch,) = events.batches_of([seen])
    (wire,) = batch.records
    assert isinstance(wire, Seen)
    assert b"Ann" not in events.encode(batch)
    decoded = events.decode(events.encode(batch))
    assert isinstance(decoded, RecordBatch)
    assert events.records_of(decoded) == [seen]


def test_records_are_immutable_and_replaced_not_copied() -> None:
    record = _record()
    with pytest.raises(AttributeError):
        record.sourced_id = "x"  # type: ignore[misc]
    moved = msgspec.structs.replace(record, internal_id=uuid4())
    assert moved.payload is record.payload  # nothing but the changed field is copied


def test_content_hash_ignores_key_order_but_not_values() -> None:
    assert content_hash({"a": "1", "b": "2"}) == content_hash({"b": "2", "a": "1"})
    assert content_hash({"a": "1"}) != content_hash({"a": "2"})


def test_internal_ids_are_deterministic_and_scoped_by_tenant_and_entity() -> None:
    assert internal_id("t1", EntityType.USER, "x") == internal_id("t1", EntityType.USER, "x")
    assert internal_id("t1", EntityType.USER, "x") != internal_id("t2", EntityType.USER, "x")
    assert internal_id("t1", EntityType.USER, "x") != internal_id("t1", EntityType.ORG, "x")


def test_the_content_hash_ignores_the_framing_but_not_the_content() -> None:
    bulk = {"sourcedId": "u1", "givenName": "Ann", "orgSourcedIds": ["o1"]}
    delta = {**bulk, "status": "active", "dateLastModified": "2026-01-05T10:00:00.000Z"}
    later = {**delta, "dateLastModified": "2026-03-01T00:00:00Z"}
    assert content_hash(bulk) == content_hash(delta) == content_hash(later)
    assert content_hash({**bulk, "givenName": "Anne"}) != content_hash(bulk)
    assert content_hash({**bulk, "orgSourcedIds": ["o2"]}) != content_hash(bulk)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_every_entity_has_one_hash_read_from_a_bulk_or_a_delta_csv(version: str) -> None:
    """The same rows as a bulk file (no status, no dateLastModified) and as a delta file (both
    filled): one content hash per record, for every entity of both versions."""
    from rostersync_fetcher.csv.records import payload_of
    from rostersync_libs.oneroster.columns import spec_for

    from tests import districts

    bundle = districts.bundle_1_1() if version == "1.1" else districts.bundle_1_2()
    checked = 0
    for entity_name, rows in bundle.items():
        spec = spec_for(version, EntityType(entity_name))
        for row in rows:
            values = {name: row.get(name, "") for name in spec.names}
            delta_values = {
                **values, "status": "active", "dateLastModified": "2026-01-05T10:00:00.000Z"
            }  # fmt: skip
            bulk, delta = payload_of(values, spec), payload_of(delta_values, spec)
            assert "status" in delta
            assert content_hash(bulk) == content_hash(delta), (entity_name, row)
            checked += 1
    assert checked >= 18  # every row of the sample district


def test_record_batches_are_tagged_on_the_wire() -> None:
    (batch,) = events.batches_of([_record()])
    assert isinstance(batch, RecordBatch)
    assert events.encode(batch).startswith(b'{"type":"records"')
