"""The change feed's outbox, end to end on Kafka + PostgreSQL: exactly the changes a sync made,
in order, none for unchanged records; the same changes after a replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
import orjson
import pytest
from rostersync_cli.replay import compare, replay
from rostersync_libs.change_events import MembershipChanged, RecordChanged
from rostersync_libs.events import EntityType
from rostersync_libs.ids import internal_id
from rostersync_libs.partitioning import key_partition
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store import history

from tests import districts
from tests.bundles import write_bundle, write_tenants
from tests.change_feed import changes_on_topic, until_relayed
from tests.e2e import sync
from tests.pipeline import running_pipeline

pytestmark = pytest.mark.integration
SCHEMA = Path(__file__).parents[2] / "docs" / "change-event.schema.json"

ORDER = ["orgs", "academicSessions", "courses", "classes", "users", "userProfiles", "roles",
         "enrollments", "demographics", "classTerms", "userOrgs", "guardianLinks"]  # fmt: skip


async def changes_of(db: asyncpg.Connection, after: int = 0) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT seq, run_id, entity, internal_id, sourced_id, operation, fields, record"
        " FROM change_log WHERE tenant_id = 'd1' AND seq > $1 ORDER BY seq",
        after,
    )
    return [dict(r) for r in rows]


def summary(changes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((c["entity"], c["sourced_id"], c["operation"]) for c in changes)


def students_moved() -> dict[str, list[dict[str, str]]]:
    """Sam renamed, Kim moved to North High's algebra class, Lee added to the homeroom."""
    users = [
        u | {"givenName": "Samuel"} if u["sourcedId"] == "u-s1" else
        u | {"orgSourcedIds": "s1"} if u["sourcedId"] == "u-s2" else u
        for u in districts.USERS_1_1
    ] + [{"sourcedId": "u-s3", "enabledUser": "true", "orgSourcedIds": "s2", "role": "student",
          "username": "lee", "givenName": "Lee", "familyName": "Late", "grades": "KG"}]  # fmt: skip
    enrollments = [e for e in districts.ENROLLMENTS if e["sourcedId"] != "e3"] + [
        {"sourcedId": "e4", "classSourcedId": "k-home", "schoolSourcedId": "s2",
         "userSourcedId": "u-s3", "role": "student"},
        {"sourcedId": "e5", "classSourcedId": "k-alg1", "schoolSourcedId": "s1",
         "userSourcedId": "u-s2", "role": "student"},
    ]  # fmt: skip
    return districts.bundle_1_1() | {"users": users, "enrollments": enrollments}


async def test_changes_of_adds_renames_moves_and_removals(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    def tenants_for(name: str, files: dict[str, list[dict[str, str]]]) -> Path:
        return write_tenants(tmp_path / f"{name}.toml", "d1", write_bundle(tmp_path / name, files))

    await sync(settings, tenants_for("r1", districts.bundle_1_1()), "d1")
    first = await changes_of(db)
    assert {c["operation"] for c in first} == {"insert"}
    assert len([c for c in first if c["entity"] == "users"]) == 4
    assert len([c for c in first if c["entity"] == "userOrgs"]) == 4
    assert len([c for c in first if c["entity"] == "guardianLinks"]) == 2
    assert len([c for c in first if c["entity"] == "classTerms"]) == 3
    assert [c["seq"] for c in first] == list(range(1, len(first) + 1))

    # The same snapshot again: nothing changed, no change.
    await sync(settings, tenants_for("r2", districts.bundle_1_1()), "d1")
    assert await changes_of(db, len(first)) == []

    moved = await sync(settings, tenants_for("r3", students_moved()), "d1")
    third = await changes_of(db, len(first))
    assert summary(third) == [
        ("enrollments", "e3", "archive"),
        ("enrollments", "e4", "insert"),
        ("enrollments", "e5", "insert"),
        ("userOrgs", "u-s2", "archive"),
        ("userOrgs", "u-s2", "insert"),
        ("userOrgs", "u-s3", "insert"),
        ("users", "u-s1", "update"),
        ("users", "u-s2", "update"),
        ("users", "u-s3", "insert"),
    ]
    assert {c["run_id"] for c in third} == {moved}
    # Numbered without gaps, in order: what the run's records did (entity, targets first, then
    # record), then what its end removed (e3, absent from the bulk snapshot).
    assert [c["seq"] for c in third] == list(range(len(first) + 1, len(first) + len(third) + 1))
    assert (third[-1]["sourced_id"], third[-1]["operation"]) == ("e3", "archive")
    keys = [(ORDER.index(c["entity"]), c["internal_id"]) for c in third[:-1]]
    assert keys == sorted(keys)
    renamed = next(c for c in third if c["sourced_id"] == "u-s1" and c["entity"] == "users")
    assert orjson.loads(renamed["fields"]) == {"given_name": {"before": "Sam", "after": "Samuel"}}

    # Lee leaves: he, his enrollment and his school membership end.
    gone = students_moved()
    gone["users"] = [u for u in gone["users"] if u["sourcedId"] != "u-s3"]
    gone["enrollments"] = [e for e in gone["enrollments"] if e["sourcedId"] != "e4"]
    await sync(settings, tenants_for("r4", gone), "d1")
    fourth = await changes_of(db, len(first) + len(third))
    assert summary(fourth) == [
        ("enrollments", "e4", "archive"),
        ("userOrgs", "u-s3", "archive"),
        ("users", "u-s3", "archive"),
    ]

    # Each change's school and class (the feed's filters) are what migration 0017's functions
    # give for its record: 0021 reads them from the columns instead (inserts, updates, archives
    # and links of every entity are here).
    places = await db.fetch(
        "SELECT entity, sourced_id, operation, school_id, class_id,"
        " change_school(entity, internal_id, record) AS school,"
        " change_class(entity, internal_id, record) AS class FROM change_log"
    )
    assert {p["operation"] for p in places} == {"insert", "update", "archive"}
    assert [p for p in places if (p["school_id"], p["class_id"]) != (p["school"], p["class"])] == []
    assert any(p["school_id"] for p in places if p["entity"] == "userOrgs")
    assert any(p["class_id"] for p in places if p["entity"] == "enrollments")

    # History: the homeroom before and after the run that moved Kim out and brought Lee in.
    home = internal_id("d1", EntityType.CLASS, "k-home")
    moved_at = await db.fetchval("SELECT effective_at FROM change_log WHERE run_id = $1", moved)
    before = await history.enrollments_as_of(db, "d1", home, moved_at - timedelta(seconds=1))
    after = await history.enrollments_as_of(db, "d1", home, moved_at)
    assert [(m["sourced_id"], m["user_sourced_id"]) for m in before] == [("e3", "u-s2")]
    assert [(m["sourced_id"], m["user_sourced_id"]) for m in after] == [("e4", "u-s3")]
    now = await history.enrollments_as_of(db, "d1", home, datetime.now(UTC))
    assert now == []
    algebra = internal_id("d1", EntityType.CLASS, "k-alg1")
    assert [m["sourced_id"] for m in await history.enrollments_as_of(db, "d1", algebra, moved_at)] == ["e1", "e2", "e5"]  # fmt: skip

    # The relay published each change once, in its record's partition, sealed like every event.
    async with running_pipeline(settings, tenants_for("r4", gone)):
        last = await until_relayed(db)
    published = await changes_on_topic(settings)
    assert sorted(e.sequence for _, e in published) == list(range(1, last + 1))
    rows = {c["seq"]: c for c in await changes_of(db)}
    schema = orjson.loads(SCHEMA.read_bytes())
    partitions = list(range(settings.topic_partitions))
    for p in partitions:  # each partition in sequence order, as the relay read them
        numbers = [e.sequence for q, e in published if q == p]
        assert numbers == sorted(numbers)
    for partition, event in published:
        jsonschema.validate(orjson.loads(event.model_dump_json()), schema)
        # A record's changes: the partition of its key, as one message per change had them.
        key = f"d1:{event.internal_id}".encode()
        assert partition == key_partition(key, partitions, partitions)
        assert (event.entity, event.sourced_id, event.operation) == (
            rows[event.sequence]["entity"], rows[event.sequence]["sourced_id"],
            rows[event.sequence]["operation"],
        )  # fmt: skip
    sam = next(e for _, e in published if e.sourced_id == "u-s1" and e.operation == "update")
    assert isinstance(sam, RecordChanged)
    assert sam.fields is not None
    assert sam.fields["given_name"].after == "Samuel"
    kim = [e for _, e in published if isinstance(e, MembershipChanged) and e.sourced_id == "u-s2"]
    assert {(e.operation, e.membership.kind) for e in kim} >= {
        ("archive", "userOrg"),
        ("insert", "userOrg"),
    }

    # Replay into a fresh schema: the same changes, numbers, times and history.
    replayed = f"{settings.db_schema}_replay"
    try:
        await replay(settings, replayed, timeout=120)
        differences = await compare(
            db, settings.db_schema, replayed, ["change_log", "change_sequences", "enrollments"]
        )
        assert differences == {t: (0, 0) for t in differences}
    finally:
        await db.execute(f'DROP SCHEMA IF EXISTS "{replayed}" CASCADE')
