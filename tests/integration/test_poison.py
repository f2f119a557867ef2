"""Poison never loops, on a real Kafka broker and a real PostgreSQL.

Each test puts one kind of poison on one topic before the pipeline starts, so every stage meets
it first; then it shows the poison is kept with its reason (``rejected_records``) and that a
normal sync of another tenant completes afterwards (no stage died: ``running_pipeline`` also
raises the first error of any service when it stops).
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec
import orjson
import pytest
from rostersync_libs.events import EntityType, RecordEvent, record_event
from rostersync_libs.ids import new_run_id
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.oneroster.columns import spec_for
from rostersync_libs.settings import ServiceSettings
from rostersync_mapper.mapping import map_event

from tests.bundles import write_bundle
from tests.e2e import ids, sealing_producer
from tests.integration.test_end_to_end import ORGS, USERS, sync_now
from tests.pipeline import running_pipeline
from tests.wire import message_of

pytestmark = pytest.mark.integration

GOOD = "district-good"


def write_tenants(path: Path, bundles: dict[str, Path], source_extra: str = "") -> Path:
    """A tenants file with one CSV source per tenant (``source_extra``: more source settings)."""
    path.write_text(
        "".join(
            f'[[tenants]]\nid = "{tenant}"\nname = "{tenant}"\nvalidation = "lenient"\n\n'
            f'[[tenants.sources]]\nid = "csv"\nkind = "csv"\npath = "{bundle}"\n{source_extra}\n'
            for tenant, bundle in bundles.items()
        )
    )
    return path


async def produce(
    settings: ServiceSettings, topic: str, messages: list[tuple[bytes | None, bytes | None]]
) -> None:
    """Put (key, value) messages on a topic, on partition 0, acknowledged."""
    await ensure_topics(settings)
    async with sealing_producer(settings, "poisoner") as producer:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key, partition=0)


async def sync_good_tenant(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path, tenants: dict[str, Path]
) -> None:
    """A normal sync of another tenant completes with the pipeline that met the poison."""
    bundle = write_bundle(tmp_path / "good", {"orgs": ORGS, "users": USERS})
    tenants_file = write_tenants(tmp_path / "tenants.toml", {GOOD: bundle, **tenants})
    async with running_pipeline(settings, tenants_file):
        await sync_now(settings, tenants_file, GOOD)
    assert await ids(db, "users", GOOD) == {"t1", "st1", "p1"}


async def rejections(db: asyncpg.Connection, topic: str) -> list[dict[str, Any]]:
    """What was rejected from ``topic``, but the good tenant's own (its bundle has a bad row)."""
    rows = await db.fetch(
        "SELECT tenant_id, run_id, stage, entity, sourced_id, findings, event, source_offset,"
        " source_index FROM rejected_records WHERE source_topic = $1 AND tenant_id <> $2"
        " ORDER BY source_offset, source_index",
        topic,
        GOOD,
    )
    return [{**r, "codes": [f["code"] for f in orjson.loads(r["findings"])]} for r in rows]


async def test_a_null_message_on_fetched_is_dead_lettered_by_the_validator(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await produce(settings, settings.topics.fetched, [(b"poison:users:x", None)])
    await sync_good_tenant(settings, db, tmp_path, {})
    (row,) = await rejections(db, settings.topics.fetched)
    assert (row["stage"], row["codes"], row["tenant_id"], row["event"]) == (
        "validator",
        ["empty_message"],
        "poison",
        None,
    )


async def test_a_null_message_on_validated_is_dead_lettered_by_the_mapper(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await produce(settings, settings.topics.validated, [(b"poison:users:x", None)])
    await sync_good_tenant(settings, db, tmp_path, {})
    (row,) = await rejections(db, settings.topics.validated)
    assert (row["stage"], row["codes"], row["tenant_id"]) == ("mapper", ["empty_message"], "poison")


def _mapped_user(tenant: str, run_id: UUID, sourced_id: str, **update: Any) -> RecordEvent:
    payload = {**USERS[0], "sourcedId": sourced_id}
    event = record_event(
        tenant=tenant,
        source="csv",
        run_id=run_id,
        entity=EntityType.USER,
        sourced_id=sourced_id,
        payload=payload,
    )
    mapped = map_event(event).forward
    assert mapped is not None
    return msgspec.structs.replace(mapped, **update)


def _mapped_org(tenant: str, run_id: UUID, sourced_id: str, **update: Any) -> RecordEvent:
    event = record_event(
        tenant=tenant,
        source="csv",
        run_id=run_id,
        entity=EntityType.ORG,
        sourced_id=sourced_id,
        payload={"sourcedId": sourced_id, "name": f"School {sourced_id}", "type": "school"},
    )
    mapped = map_event(event).forward
    assert mapped is not None
    return msgspec.structs.replace(mapped, **update)


async def test_an_event_without_content_hash_on_mapped_is_kept_by_the_writer(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    # A user of a first run, then a version of it without content_hash in a later run: it is
    # rejected, and it counts as seen in that run (its row's last run moves on).
    first = "district-first"
    bundle = write_bundle(tmp_path / "first", {"orgs": ORGS, "users": USERS})
    tenants_file = write_tenants(tmp_path / "first.toml", {first: bundle})
    async with running_pipeline(settings, tenants_file):
        await sync_now(settings, tenants_file, first)
    later = new_run_id()
    poison = _mapped_user(first, later, "t1", content_hash=None)
    # In one batch with two good records of the same run: exactly the poison is rejected.
    batch = [_mapped_org(first, later, "o-a"), poison, _mapped_org(first, later, "o-b")]
    await produce(settings, settings.topics.mapped, [message_of(batch, 0)])
    await sync_good_tenant(settings, db, tmp_path, {first: bundle})

    assert {"o-a", "o-b"} <= await ids(db, "orgs", first)
    (row,) = await rejections(db, settings.topics.mapped)
    assert row["source_index"] == 1  # its place in the batch message
    assert (row["stage"], row["codes"], row["tenant_id"], row["run_id"]) == (
        "writer",
        ["writer_apply_failed"],
        first,
        later,
    )
    assert (row["entity"], row["sourced_id"]) == ("users", "t1")
    assert "content_hash" in orjson.loads(row["findings"])[0]["message"]
    assert orjson.loads(row["event"])["sourced_id"] == "t1"
    seen = await db.fetchval(
        "SELECT last_seen_run FROM users WHERE tenant_id = $1 AND sourced_id = 't1'", first
    )
    assert seen == later
    codes = await db.fetchval(
        "SELECT codes FROM run_rejections WHERE tenant_id = $1 AND run_id = $2", first, later
    )
    assert codes == ["writer_apply_failed"]
    reported = await db.fetchval(
        "SELECT count(*) FROM findings WHERE run_id = $1 AND code = 'writer_apply_failed'", later
    )
    assert reported == 1


async def test_rows_postgres_refuses_are_isolated_and_the_rest_of_the_batch_lands(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Schema-valid events the database refuses (an internal id already another record's: a
    unique violation; a sourcedId too long for its index: a program limit) in one batch with
    good ones: the transaction fails, the batch is applied again without them."""
    tenant, run_id = "district-poison", new_run_id()
    good = [_mapped_org(tenant, run_id, f"o{n}") for n in range(20)]
    taken = _mapped_org(tenant, run_id, "dup", internal_id=good[3].internal_id)
    long_id = secrets.token_urlsafe(6000)
    too_long = _mapped_org(tenant, run_id, long_id)
    events = [*good[:10], taken, *good[10:15], too_long, *good[15:]]
    # One batch message: the database's refusals are isolated record by record inside it.
    await produce(settings, settings.topics.mapped, [message_of(events, 0)])
    with caplog.at_level(logging.WARNING, logger="rostersync_writer"):
        await sync_good_tenant(settings, db, tmp_path, {})

    assert await ids(db, "orgs", tenant) == {f"o{n}" for n in range(20)}
    rows = await rejections(db, settings.topics.mapped)
    assert [(r["source_offset"], r["source_index"], r["stage"], r["codes"]) for r in rows] == [
        (0, 10, "writer", ["writer_apply_failed"]),
        (0, 16, "writer", ["writer_apply_failed"]),
    ]
    messages = [orjson.loads(r["findings"])[0]["message"] for r in rows]
    assert messages[0].startswith("PostgreSQL refused it (23505) UniqueViolationError")
    assert messages[1].startswith("PostgreSQL refused it (54000) ProgramLimitExceededError")
    assert rows[0]["sourced_id"] == "dup"
    assert rows[1]["sourced_id"] == long_id[:399] + "…"  # cut to fit rejected_records' index
    assert any("applying it again without the poison" in r.message for r in caplog.records)
    # Positions advanced past both, with the rows, in the same transaction.
    position = await db.fetchval(
        "SELECT next_offset FROM consumer_positions WHERE topic = $1 AND partition = 0",
        settings.topics.mapped,
    )
    assert position >= 1


async def test_a_header_of_10000_unknown_columns_is_reported_within_kafkas_limit(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    wide = "district-wide"
    names = list(spec_for("1.1", EntityType.USER).names)
    extra = [f"unknownColumn{n:05d}" for n in range(10_000)]
    bundle = write_bundle(
        tmp_path / "wide", {"orgs": ORGS, "users": USERS[:3]}, headers={"users": names + extra}
    )
    # Above the fetcher's column limit (1,000 by default, a finding of its own): raised here so
    # that the 10,000 unknown-column findings are made, and must be bounded.
    tenants_file = write_tenants(
        tmp_path / "wide.toml", {wide: bundle}, "limits = { max_columns = 20000 }\n"
    )
    async with running_pipeline(settings, tenants_file):
        run_id = await sync_now(settings, tenants_file, wide)
    assert await ids(db, "users", wide) == {"t1", "st1", "p1"}
    counts = dict(
        await db.fetch(
            "SELECT code, count(*) FROM findings WHERE run_id = $1 AND file = 'users.csv'"
            " GROUP BY code",
            run_id,
        )
    )
    assert (counts["unknown_column"], counts["findings_truncated"]) == (100, 1)
    more = await db.fetchval(
        "SELECT message FROM findings WHERE run_id = $1 AND code = 'findings_truncated'", run_id
    )
    assert more.startswith("… and 9,900 more (unknown_column: 9,900)")
    await sync_good_tenant(settings, db, tmp_path, {wide: bundle})


async def test_the_writer_keeps_what_it_cannot_read_on_mapped_and_goes_on(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """A tombstone, an undecodable message and a marker without its bookkeeping on mapped."""
    marker = {"type": "run_end", "tenant": "poison", "source": "csv", "run_id": str(uuid4())}
    await produce(
        settings,
        settings.topics.mapped,
        [(b"poison:x", None), (b"poison:y", b"\xff{"), (b"poison:z", orjson.dumps(marker))],
    )
    await sync_good_tenant(settings, db, tmp_path, {})
    rows = await rejections(db, settings.topics.mapped)
    assert [(r["source_offset"], r["stage"], r["codes"], r["tenant_id"]) for r in rows] == [
        (0, "writer", ["empty_message"], "poison"),
        (1, "writer", ["envelope_undecodable"], "poison"),
        (2, "writer", ["envelope_incomplete"], "poison"),
    ]
