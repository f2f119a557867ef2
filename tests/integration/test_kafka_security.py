"""Kafka security end to end, on a private broker that only speaks SASL_SSL and enforces ACLs
(rostersync_localstack.secure, started once for this module; PostgreSQL is the usual one).

The four services run as processes, each logged in as its own SCRAM user over TLS with the ACLs of
rostersync_libs.kafka_acls, and load a district; every principal is refused every topic it is not
meant to write (the validator the command topic, the CLI the record topics …) and cannot see a
topic it neither reads nor writes; a wrong password, an untrusted certificate or a client without
TLS do not get in.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr
from rostersync_cli.actions import request_sync
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.processes import SERVICES, start_service, stop_all
from rostersync_libs import kafka_acls
from rostersync_libs.kafka import client_options
from rostersync_libs.settings import ServiceSettings
from rostersync_localstack.secure import SecureBroker, secure_broker

from tests.bundles import write_tenants
from tests.e2e import cli_settings
from tests.pipeline import wait_for_run
from tests.servers import Servers

pytestmark = pytest.mark.integration

S = TypeVar("S", bound=ServiceSettings)


@dataclass(frozen=True)
class Secure:
    broker: SecureBroker
    settings: ServiceSettings  # the deployment's namespaces and database, logged in as nobody yet

    def as_user(self, settings: S, user: str, **changes: Any) -> S:
        """``settings`` logged in as ``user`` (SCRAM-SHA-512 over TLS, the broker's CA)."""
        values = {
            **settings.model_dump(),
            "kafka_bootstrap_servers": self.broker.bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": user,
            "kafka_sasl_password": SecretStr(self.broker.passwords[user]),
            "kafka_ssl_cafile": self.broker.cafile,
            **changes,
        }
        return type(settings)(**values)  # validated again, as a service's own settings are


@pytest.fixture(scope="module")
def broker() -> Iterator[SecureBroker]:
    # ``no-acl``: a user the broker knows, with no ACL at all.
    with secure_broker((*kafka_acls.SERVICES, "no-acl")) as started:
        yield started


@pytest.fixture(scope="module")
async def secure(broker: SecureBroker, servers: Servers) -> AsyncIterator[Secure]:
    """The topics and ACLs of one deployment, made by the admin as an operator would."""
    tag = uuid.uuid4().hex[:10]
    base = ServiceSettings(
        database_url=SecretStr(servers.database_url),
        topic_prefix=f"sec-{tag}.",
        db_schema=f"sec_{tag}",
        topic_partitions=3,
    )
    found = Secure(broker, base)
    admin = found.as_user(base, "admin")
    assert await kafka_acls.apply(admin) == len(kafka_acls.acls(admin))  # topics, then ACLs
    try:
        yield found
    finally:
        conn = await asyncpg.connect(servers.database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{base.db_schema}" CASCADE')
        finally:
            await conn.close()


async def test_each_service_with_its_own_login_loads_a_district(
    secure: Secure, tmp_path: Path
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=300))
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "bundle")
    cli = cli_settings(secure.settings, tenants)
    procs = {name: start_service(name, secure.as_user(cli, name)) for name in SERVICES}
    try:
        command = await request_sync(secure.as_user(cli, "cli"), "d1", None)
        await wait_for_run(secure.settings, "d1", command.run_id, timeout=90)
        exited = {name: proc.returncode for name, proc in procs.items() if proc.poll() is not None}
        assert exited == {}, "a service stopped: an ACL it needs is missing"
    finally:
        stop_all(list(procs.values()))
    conn = await asyncpg.connect(secure.settings.database_url.get_secret_value())
    try:
        schema = secure.settings.db_schema
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.users") > 300
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.enrollments") > 0
    finally:
        await conn.close()


async def test_the_validator_cannot_write_the_command_topic(secure: Secure) -> None:
    validator = secure.as_user(secure.settings, "validator")
    producer = AIOKafkaProducer(**client_options(validator))
    await producer.start()
    try:
        await producer.send_and_wait(validator.topics.validated, b"allowed")  # it is logged in
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(validator.topics.commands, b'{"kind": "sync"}')
    finally:
        await producer.stop()


async def test_the_cli_cannot_write_a_record_topic(secure: Secure) -> None:
    cli = secure.as_user(secure.settings, "cli")
    producer = AIOKafkaProducer(**client_options(cli))
    await producer.start()
    try:
        for topic in cli.topics.record_topics():
            if topic != cli.topics.commands:
                with pytest.raises(TopicAuthorizationFailedError):
                    await producer.send_and_wait(topic, b"forged")
    finally:
        await producer.stop()


@pytest.mark.parametrize("user", kafka_acls.SERVICES)
async def test_every_principal_writes_only_its_topics_and_sees_only_those_it_uses(
    secure: Secure, user: str
) -> None:
    settings = secure.as_user(secure.settings, user)
    access = kafka_acls.access_table(settings)[user]
    # Not idempotent: a principal allowed no topic could not even get a producer id (below).
    producer = AIOKafkaProducer(**client_options(settings))
    await producer.start()
    try:
        for topic in settings.topics.all():
            if topic not in access.writes:
                with pytest.raises(TopicAuthorizationFailedError):
                    await producer.send_and_wait(topic, b"forged")
            if topic not in access.writes + access.reads:
                with pytest.raises(TopicAuthorizationFailedError):
                    await producer.partitions_for(topic)  # not even its metadata
    finally:
        await producer.stop()


async def test_a_principal_allowed_no_topic_cannot_even_start_an_idempotent_producer(
    secure: Secure,
) -> None:
    # (The writer was that principal until it relayed the change feed: now ``no-acl``.)
    no_acl = secure.as_user(secure.settings, "no-acl")
    producer = AIOKafkaProducer(**client_options(no_acl), enable_idempotence=True)
    try:
        with pytest.raises(ClusterAuthorizationFailedError):  # its producer id is refused
            await producer.start()
    finally:
        await producer.stop()


async def _connects(settings: ServiceSettings, **options: Any) -> bool:
    producer = AIOKafkaProducer(
        **{**client_options(settings), "request_timeout_ms": 10000, **options}
    )
    try:
        await producer.start()
    except KafkaConnectionError:
        return False
    finally:
        await producer.stop()
    return True


async def test_a_wrong_password_does_not_get_in(
    secure: Secure, caplog: pytest.LogCaptureFixture
) -> None:
    cli = secure.as_user(secure.settings, "cli")
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        assert not await _connects(cli, sasl_plain_password="not-" + secure.broker.passwords["cli"])
    assert "invalid credentials" in caplog.text
    assert not await _connects(cli, sasl_plain_username="nobody")
    assert await _connects(cli)  # the same settings with the right password


async def test_tls_is_verified_and_required(secure: Secure) -> None:
    cli = secure.as_user(secure.settings, "cli")
    # The system's CAs do not know the broker's: its certificate is refused.
    assert not await _connects(cli.model_copy(update={"kafka_ssl_cafile": None}))
    # SASL without TLS on a TLS listener.
    assert not await _connects(cli, security_protocol="SASL_PLAINTEXT", ssl_context=None)
    # A client certificate signed by the broker's CA (mutual TLS) together with SCRAM.
    mutual = secure.as_user(
        secure.settings,
        "cli",
        kafka_ssl_certfile=secure.broker.client_certfile,
        kafka_ssl_keyfile=secure.broker.client_keyfile,
    )
    assert await _connects(mutual)
    # SCRAM-SHA-256 works as well as SCRAM-SHA-512.
    assert await _connects(
        secure.as_user(secure.settings, "cli", kafka_sasl_mechanism="SCRAM-SHA-256")
    )
