"""Fixtures shared by the test suites: real servers once per session, isolation per test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from rostersync_libs.settings import ServiceSettings

from tests.servers import Servers, provide_servers


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with provide_servers() as found:
        yield found


@contextlib.asynccontextmanager
async def isolated_settings(servers: Servers) -> AsyncIterator[ServiceSettings]:
    """Settings with a topic prefix and a database schema of their own, removed afterwards."""
    tag = uuid.uuid4().hex[:10]
    isolated = ServiceSettings(
        kafka_bootstrap_servers=servers.kafka_bootstrap,
        database_url=SecretStr(servers.database_url),
        topic_prefix=f"test-{tag}.",
        db_schema=f"test_{tag}",
        topic_partitions=3,
    )
    try:
        yield isolated
    finally:
        conn = await asyncpg.connect(servers.database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{isolated.db_schema}" CASCADE')
        finally:
            await conn.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            mine = [t for t in isolated.topics.all() if t in existing]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()


@pytest.fixture
async def settings(servers: Servers) -> AsyncIterator[ServiceSettings]:
    """Settings with a topic prefix and a database schema of this test's own."""
    async with isolated_settings(servers) as test_settings:
        yield test_settings


@pytest.fixture
async def db(settings: ServiceSettings) -> AsyncIterator[asyncpg.Connection]:
    """A connection working in the test's own schema."""
    conn = await asyncpg.connect(
        settings.database_url.get_secret_value(),
        server_settings={"search_path": settings.db_schema},
    )
    yield conn
    await conn.close()
