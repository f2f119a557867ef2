"""Identity resolution on real Kafka and PostgreSQL: the mapper stage alone, fed validated events,
with the writer's schema (and a few rows in it) made directly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from rostersync_cli.identity_commands import crosswalk_add, crosswalk_list, directory_import
from rostersync_libs.events import EntityType, RecordEvent, record_event
from rostersync_libs.identities import Reason
from rostersync_libs.ids import internal_id
from rostersync_libs.kafka import ensure_topics, make_consumer
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate
from rostersync_mapper import app as mapper_app
from rostersync_mapper.settings import MapperSettings

from tests.e2e import data_keys, sealing_producer
from tests.wire import send_records

pytestmark = pytest.mark.integration

APP_TEACHER = UUID("aaaaaaaa-0000-4000-8000-000000000001")
APP_CROSSWALK = UUID("aaaaaaaa-0000-4000-8000-000000000002")
APP_DUP_1 = UUID("aaaaaaaa-0000-4000-8000-000000000003")
APP_DUP_2 = UUID("aaaaaaaa-0000-4000-8000-000000000004")
TENANTS = """[[tenants]]
id = "d1"
name = "District One"

[tenants.matching]
teacher_by_email = true
user_by_username = true

[[tenants.sources]]
id = "csv"
path = "bundle"
"""


def iid(sourced_id: str, entity: EntityType = EntityType.USER) -> UUID:
    return internal_id("d1", entity, sourced_id)


@pytest.fixture
async def db(settings: ServiceSettings) -> AsyncIterator[asyncpg.Connection]:
    admin = await asyncpg.connect(settings.database_url.get_secret_value())
    await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.db_schema}"')
    await admin.close()
    conn = await asyncpg.connect(
        settings.database_url.get_secret_value(),
        server_settings={"search_path": settings.db_schema},
    )
    await migrate(conn)
    yield conn
    await conn.close()


@contextlib.asynccontextmanager
async def running_mapper(settings: ServiceSettings, tenants: Path) -> AsyncIterator[None]:
    """The mapper stage alone, as a task of its own, until the block ends."""
    mapper_settings = MapperSettings(**{**settings.model_dump(), "tenants_file": tenants})
    stop = asyncio.Event()
    task = asyncio.create_task(mapper_app.run(mapper_settings, stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def send(settings: ServiceSettings, events: list[RecordEvent]) -> None:
    async with sealing_producer(settings, "test-validator") as producer:
        await send_records(producer, settings.topics.validated, events)


class Reader:
    """Everything on a topic from its beginning, read on as the test goes."""

    def __init__(self, settings: ServiceSettings, topic: str) -> None:
        self._settings, self._topic = settings, topic
        self._keys = data_keys(settings)
        self.values: list[dict[str, Any]] = []

    async def __aenter__(self) -> Reader:
        keys = await self._keys.__aenter__()
        self._consumer = make_consumer(self._settings, None, self._topic, keys=keys)
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()
        await self._keys.__aexit__(None, None, None)

    async def until(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.values) < count:
                batches = await self._consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for m in messages:
                        if m.value:
                            self.values.extend(_flat(orjson.loads(m.value)))
        return self.values


def _flat(value: dict[str, Any]) -> list[dict[str, Any]]:
    """A record batch as its records (each with the operation it stands for), else the value."""
    if value.get("type") != "records":
        return [value]
    return [
        {**r, "kind": "record", "operation": r.get("operation", "upsert")}
        if r["type"] == "record"
        else {**r, "kind": "record", "operation": "seen"}
        for r in value["records"]
    ]


def user(sourced_id: str, run_id: UUID, version: str = "1.1", **fields: str) -> RecordEvent:
    return record_event(
        tenant="d1", source="csv", run_id=run_id, entity=EntityType.USER, sourced_id=sourced_id,
        payload={"sourcedId": sourced_id, "enabledUser": "true", "givenName": "G",
                 "familyName": "F", **fields},
        oneroster_version=version,
    )  # fmt: skip


def users(run_id: UUID) -> list[RecordEvent]:
    return [
        user("u-x", run_id, role="student", username="dup"),  # crosswalked; would be ambiguous
        user("u-t", run_id, role="teacher", username="tina", email="tina@d1.example"),
        user("u-d", run_id, role="student", username="dup"),  # two directory candidates
        user("u-new", run_id, "1.2", username="kim2", userMasterIdentifier="M-kim"),
    ]


def enrollment(run_id: UUID) -> RecordEvent:
    return record_event(
        tenant="d1", source="csv", run_id=run_id, entity=EntityType.ENROLLMENT, sourced_id="e1",
        payload={"sourcedId": "e1", "classSourcedId": "k1", "schoolSourcedId": "s1",
                 "userSourcedId": "u-new", "role": "student"},
    )  # fmt: skip


def by_key(values: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["sourced_id"]: v for v in values if v.get("kind") == "record"}


async def test_crosswalk_match_ambiguity_rekey_references_and_restart(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await ensure_topics(settings)
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(TENANTS)
    # What the tenant already has: a user whose SIS will send a new sourcedId ("kim" → "u-new").
    await db.execute(
        "INSERT INTO users (tenant_id, sourced_id, internal_id, source, role, username,"
        " user_master_identifier, content_hash, first_seen_run, last_seen_run, payload,"
        " archived_at)"
        " VALUES ('d1', 'u-old', $1, 'csv', 'student', 'kim', 'M-kim', 'h', $2, $2, '{}', now())",
        iid("u-old"),
        uuid4(),
    )
    directory = tmp_path / "directory.csv"
    directory.write_text(
        "entity,appId,email,username,identifier,ncesId\n"
        f"users,{APP_TEACHER},Tina@D1.example,tina.t,,\n"
        f"users,{APP_DUP_1},,dup,,\n"
        f"users,{APP_DUP_2},,dup,,\n"
    )
    assert await directory_import(settings, "d1", directory) == 3
    assert await directory_import(settings, "d1", directory) == 3  # idempotent
    assert await db.fetchval("SELECT count(*) FROM app_directory") == 3
    await crosswalk_add(settings, "d1", "users", "u-x", str(APP_CROSSWALK))

    first_run, second_run = uuid4(), uuid4()
    async with (
        Reader(settings, settings.topics.mapped) as mapped,
        Reader(settings, settings.topics.findings) as findings,
    ):
        async with running_mapper(settings, tenants):
            await send(settings, users(first_run))
            await mapped.until(4)
            await send(settings, [enrollment(first_run)])
            first = by_key(await mapped.until(5))
            found = await findings.until(1)

        assert UUID(first["u-x"]["internal_id"]) == APP_CROSSWALK  # crosswalk beats ambiguity
        assert UUID(first["u-t"]["internal_id"]) == APP_TEACHER  # teacher by email
        assert UUID(first["u-d"]["internal_id"]) == iid("u-d")  # ambiguous: default id
        assert UUID(first["u-new"]["internal_id"]) == iid("u-old")  # re-keyed
        assert first["u-new"]["payload"]["_rekeyedFrom"] == "u-old"
        assert first["e1"]["payload"]["userInternalId"] == str(iid("u-old"))
        assert first["u-t"]["payload"]["canonicalRole"] == "teacher"
        assert [
            (f["sourced_id"], f["stage"], [(x["code"], x["severity"]) for x in f["findings"]])
            for f in found
        ] == [("u-d", "mapper", [("ambiguous_match", "warning")])]
        assert "dup" not in found[0]["findings"][0]["message"]

        decisions = {d.sourced_id: d for d in await crosswalk_list(settings, "d1")}
        assert {k: (d.reason, d.internal_id) for k, d in decisions.items()} == {
            "u-x": (Reason.CROSSWALK, APP_CROSSWALK),
            "u-t": (Reason.MATCH, APP_TEACHER),
            "u-new": (Reason.REKEY, iid("u-old")),
        }

        # A fresh mapper (new task, new process state) reloads the identities topic.
        async with running_mapper(settings, tenants):
            await send(settings, [*users(second_run), enrollment(second_run)])
            again = by_key((await mapped.until(10))[5:])
        for key in ("u-x", "u-t", "u-d", "u-new", "e1"):
            assert again[key]["internal_id"] == first[key]["internal_id"], key
        assert again["u-new"]["payload"]["_rekeyedFrom"] == "u-old"
        assert again["e1"]["payload"]["userInternalId"] == str(iid("u-old"))


async def described_topic_config(
    admin: AIOKafkaAdminClient, topic: str, timeout: float = 30
) -> dict[str, str]:
    """A topic's configuration once the broker can describe it.

    Right after creation the topic may not be in the broker's metadata yet: it answers
    UNKNOWN_TOPIC_OR_PARTITION (error code 3) with no entries. Wait (bounded) for a clean answer.
    """
    async with asyncio.timeout(timeout):
        while True:
            (response,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
            error_code, _message, _type, _name, entries = response.resources[0]
            if error_code == 0 and entries:
                return {entry[0]: entry[1] for entry in entries}
            await asyncio.sleep(0.2)


async def test_identities_topic_is_compacted(settings: ServiceSettings) -> None:
    await ensure_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        configs = await described_topic_config(admin, settings.topics.identities)
    finally:
        await admin.close()
    assert configs["cleanup.policy"] == "compact"


async def test_a_seen_record_passes_with_its_crosswalked_id_and_untouched_payload(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await ensure_topics(settings)
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(TENANTS)
    await crosswalk_add(settings, "d1", "users", "u-x", str(APP_CROSSWALK))
    seen = user("u-x", uuid4()).seen(["some_error"])
    async with (
        Reader(settings, settings.topics.mapped) as mapped,
        running_mapper(settings, tenants),
    ):
        await send(settings, [seen])
        (out,) = await mapped.until(1)
    assert (out["operation"], UUID(out["internal_id"]), out.get("payload", {})) == (
        "seen",
        APP_CROSSWALK,
        {},
    )
