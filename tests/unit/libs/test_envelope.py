from __future__ import annotations

from uuid import uuid4

import pytest
from rostersync_libs.envelope import EntityType, Envelope, EventKind, content_hash, record_event
from rostersync_libs.ids import internal_id
from rostersync_libs.markers import run_end_event


def test_record_key_keeps_one_record_in_one_partition() -> None:
    event = record_event(
        tenant="t1",
        source="csv",
        run_id=uuid4(),
        entity=EntityType.USER,
        sourced_id="u-1",
        payload={},
    )
    assert event.key() == b"t1:users:u-1"


def test_markers_of_one_run_have_distinct_keys_from_records() -> None:
    marker = run_end_event(tenant="t1", source="csv", run_id=uuid4(), fanout=3, counts={"users": 2})
    assert marker.kind is EventKind.RUN_END
    assert marker.key().startswith(b"t1:run:")


def test_envelope_round_trips_through_bytes() -> None:
    event = record_event(
        tenant="t1",
        source="csv",
        run_id=uuid4(),
        entity=EntityType.ORG,
        sourced_id="o-1",
        payload={"name": "A", "grades": ["01", "02"]},
    )
    assert Envelope.from_bytes(event.to_bytes()) == event


def test_content_hash_ignores_key_order_but_not_values() -> None:
    assert content_hash({"a": "1", "b": "2"}) == content_hash({"b": "2", "a": "1"})
    assert content_hash({"a": "1"}) != content_hash({"a": "2"})


def test_internal_ids_are_deterministic_and_scoped_by_tenant_and_entity() -> None:
    assert internal_id("t1", EntityType.USER, "x") == internal_id("t1", EntityType.USER, "x")
    assert internal_id("t1", EntityType.USER, "x") != internal_id("t2", EntityType.USER, "x")
    assert internal_id("t1", EntityType.USER, "x") != internal_id("t1", EntityType.ORG, "x")


def test_the_content_hash_ignores_the_framing_but_not_the_content() -> None:
    from rostersync_libs.envelope import content_hash

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
