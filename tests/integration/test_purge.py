"""Erasure (issue: trust): ``tenants purge`` leaves nothing of a district readable anywhere.

Two districts are loaded; one is purged. Its rows are gone from every table, every one of its
events on every topic is sealed and no longer opens (the other's all open), its identity
decisions are withdrawn, a replay rebuilds the other district exactly and nothing of the purged
one, and no command can be sent for it any more.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from rostersync_cli.actions import request_sync
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.identity_commands import crosswalk_add
from rostersync_cli.purge import PurgeRefused, purge
from rostersync_cli.replay import compare, replay
from rostersync_libs.data_keys import TenantPurgedError
from rostersync_libs.identities import load_decisions
from rostersync_libs.kafka import client_options, make_consumer
from rostersync_libs.sealing import MAGIC, UNREADABLE
from rostersync_libs.settings import ServiceSettings

from tests.e2e import cli_settings, data_keys, ids
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration


def two_districts(tmp_path: Path) -> Path:
    lines = []
    for tenant, seed in (("gone", 1), ("kept", 2)):
        generate(tmp_path / tenant, DistrictShape(students=40, seed=seed))
        lines.append(
            f'[[tenants]]\nid = "{tenant}"\nname = "{tenant}"\n\n'
            f'[[tenants.sources]]\nid = "csv"\nkind = "csv"\npath = "{tmp_path / tenant}"\n'
        )
    path = tmp_path / "tenants.toml"
    path.write_text("\n".join(lines))
    return path


async def values_by_tenant(settings: ServiceSettings) -> dict[str, list[tuple[bytes, bytes]]]:
    """Every (raw, opened) value on every topic, by the tenant of its key (tombstones left out)."""
    raw: dict[tuple[str, int, int], bytes] = {}
    found: dict[str, list[tuple[bytes, bytes]]] = {}
    plain = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    async with data_keys(settings) as keys:
        opening = make_consumer(settings, None, keys=keys)
        for consumer, opened in ((plain, False), (opening, True)):
            await consumer.start()
            try:
                await consumer._client.force_metadata_update()
                parts = [
                    TopicPartition(t, p)
                    for t in settings.topics.all()
                    for p in consumer.partitions_for_topic(t) or ()
                ]
                consumer.assign(parts)
                await consumer.seek_to_beginning(*parts)
                ends = await consumer.end_offsets(parts)
                while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
                    for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                        for m in messages:
                            if m.value is None or m.key is None:
                                continue
                            where = (tp.topic, tp.partition, m.offset)
                            if not opened:
                                raw[where] = m.value
                            else:
                                tenant = m.key.split(b":", 1)[0].decode()
                                found.setdefault(tenant, []).append((raw[where], m.value))
            finally:
                await consumer.stop()
    return found


async def test_a_purged_district_is_unreadable_everywhere_and_a_replay_rebuilds_only_the_other(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    tenants = two_districts(tmp_path)
    cli = cli_settings(settings, tenants)
    async with running_pipeline(settings, tenants):
        for tenant in ("gone", "kept"):
            command = await request_sync(cli, tenant, None)
            await wait_for_run(settings, tenant, command.run_id)
    students = await ids(db, "users", "gone")
    assert len(students) > 40
    some_student = sorted(students)[0]
    await crosswalk_add(
        settings, "gone", "users", some_student, "7d0f3a52-0000-4000-8000-000000000001"
    )
    kept_before = await ids(db, "users", "kept")

    done = await purge(settings, "gone")

    assert done.rows["users"] == len(students)
    assert done.rows["enrollments"] > 0
    # Its change feed too (the outbox and its numbers); deleting its link rows captured nothing
    # (no run named: migration 0017), or the loop below would find change rows left.
    assert done.rows["change_log"] > 0
    assert done.rows["change_sequences"] == 1
    assert done.tombstones[settings.topics.identities] == 1  # the crosswalk entry
    for table, _ in done.rows.items():
        assert await db.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = 'gone'") == 0
    assert await ids(db, "users", "kept") == kept_before
    assert await db.fetchval(
        "SELECT key_material IS NULL AND purged_at IS NOT NULL FROM tenant_data_keys"
        " WHERE tenant_id = 'gone'"
    )

    values = await values_by_tenant(settings)
    # Messages, not records: the record topics carry batches (v2), so a 40-student district is
    # a few dozen messages (batches, markers, run events, findings, commands).
    assert len(values["gone"]) > 40
    assert len(values["kept"]) > 40
    # At rest every event of both tenants is sealed; only the kept tenant's still open.
    assert all(r.startswith(MAGIC) for r, _ in values["gone"] + values["kept"])
    assert all(opened is UNREADABLE for _, opened in values["gone"])
    assert not any(opened is UNREADABLE for _, opened in values["kept"])
    async with data_keys(settings) as keys:
        assert await load_decisions(settings, keys, "gone") == {}

    # A replay (the live schema's keys) rebuilds the kept district exactly, nothing of the other.
    replayed = f"{settings.db_schema}_replay"
    try:
        await replay(settings, replayed, timeout=120)
        differences = await compare(db, settings.db_schema, replayed)
        assert {t: d for t, d in differences.items() if d != (0, 0)} == {}
        assert await db.fetchval(
            f"SELECT count(*) FROM {replayed}.users WHERE tenant_id = 'kept'"
        ) == len(kept_before)
        for table in done.rows:
            assert not await db.fetchval(
                f"SELECT count(*) FROM {replayed}.{table} WHERE tenant_id = 'gone'"
            ), table
    finally:
        await db.execute(f"DROP SCHEMA IF EXISTS {replayed} CASCADE")

    # No command is sealed for it any more, and it cannot be purged twice.
    with pytest.raises(TenantPurgedError):
        await request_sync(cli, "gone", None)
    with pytest.raises(PurgeRefused, match="already purged"):
        await purge(settings, "gone")
    with pytest.raises(PurgeRefused, match="no tenant nobody"):
        await purge(settings, "nobody")
