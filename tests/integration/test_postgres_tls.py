"""PostgreSQL over TLS, on a private server that accepts nothing else
(rostersync_localstack.secure_postgres, started once for this module; Kafka is the usual one).

``DATABASE_URL=postgresql://user:pw@127.0.0.1:PORT/db?sslmode=verify-full&sslrootcert=ca.pem`` is
all a deployment sets: asyncpg reads libpq's ``sslmode``, ``sslrootcert``, ``sslcert`` and
``sslkey`` from the URL. With it the services' own pool and the four services as processes (the
writer migrating) load a district, and the server says every session is encrypted; plain TCP, an
untrusted CA and a certificate that does not name the host are refused; a client certificate logs
its user in without a password. A service told to trust another CA stops and says why (it does
not wait for the server as for an outage). No log line carries the password.
"""

from __future__ import annotations

import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr
from rostersync_cli.actions import request_sync
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.processes import stop_all
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.settings import ServiceSettings
from rostersync_localstack.secure import make_certificates
from rostersync_localstack.secure_postgres import CERT_USER, UNNAMED_HOST, TlsPostgres, tls_postgres

from tests.bundles import write_tenants
from tests.conftest import isolated_settings
from tests.e2e import cli_settings
from tests.pipeline import start_logged, wait_for_run
from tests.servers import Servers

pytestmark = pytest.mark.integration

SERVICES = ("writer", "fetcher", "validator", "mapper")
IS_ENCRYPTED = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture(scope="module")
def server() -> Iterator[TlsPostgres]:
    with tls_postgres() as started:
        yield started
    assert not started.home.exists()  # its data, keys and certificates are gone


def verified(server: TlsPostgres, **params: str) -> str:
    """The superuser's DATABASE_URL, verify-full against the server's CA unless ``params`` say."""
    return server.url(**{"sslmode": "verify-full", "sslrootcert": str(server.cafile), **params})


@pytest.fixture
async def tls_settings(servers: Servers, server: TlsPostgres) -> AsyncIterator[ServiceSettings]:
    """A deployment of its own (topics, schema) whose DATABASE_URL is the TLS server's."""
    async with isolated_settings(servers) as isolated:
        yield isolated.model_copy(update={"database_url": SecretStr(verified(server))})


async def test_the_services_pool_works_over_verified_tls(
    tls_settings: ServiceSettings,
) -> None:
    pool = await create_pool(tls_settings)  # creates the schema, then the pool
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval(IS_ENCRYPTED) is True
            assert await conn.fetchval("SHOW search_path") == tls_settings.db_schema
            assert await conn.fetchval("SELECT to_regnamespace($1)", tls_settings.db_schema)
    finally:
        await close_pool(pool)


async def test_the_pipeline_migrates_and_loads_a_district_over_tls(
    tls_settings: ServiceSettings, server: TlsPostgres, tmp_path: Path
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=60))
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "bundle")
    cli = cli_settings(tls_settings, tenants)
    await ensure_topics(tls_settings)
    url = tls_settings.database_url.get_secret_value()
    procs: list[subprocess.Popen[bytes]] = []
    admin = await asyncpg.connect(url)
    try:
        for service in SERVICES:  # the writer migrates the schema it finds empty
            procs.append(start_logged(service, cli, tmp_path, DATABASE_URL=url))
        command = await request_sync(cli, "d1", None)
        await wait_for_run(tls_settings, "d1", command.run_id, timeout=90)
        assert all(p.poll() is None for p in procs), "a service stopped"
        # Seen from the server: every session the services hold is encrypted.
        sessions = await admin.fetch(
            "SELECT a.application_name, s.ssl FROM pg_stat_activity a"
            " JOIN pg_stat_ssl s USING (pid) WHERE a.backend_type = 'client backend'"
            " AND a.pid <> pg_backend_pid()"
        )
        assert [r for r in sessions if r["application_name"] == "rostersync"], sessions
        assert all(r["ssl"] for r in sessions), sessions
        schema = tls_settings.db_schema
        assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".users') > 60
        assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".enrollments') > 0
    finally:
        stop_all(procs)
        await admin.close()
    for service in SERVICES:
        logged = (tmp_path / f"{service}.log").read_text()
        assert logged, service
        assert server.password not in logged, service


async def test_plain_tcp_is_refused(server: TlsPostgres) -> None:
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(server.url(sslmode="disable"))


async def test_a_server_certificate_from_another_ca_is_refused(
    server: TlsPostgres, tmp_path: Path
) -> None:
    other = make_certificates(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await asyncpg.connect(verified(server, sslrootcert=str(other.cafile)))
    # verify-ca checks the CA too (only the name is not checked).
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncpg.connect(verified(server, sslmode="verify-ca", sslrootcert=str(other.cafile)))


async def test_a_service_told_to_trust_another_ca_stops_and_says_why(
    tls_settings: ServiceSettings, server: TlsPostgres, tmp_path: Path
) -> None:
    other = make_certificates(tmp_path / "other")
    url = verified(server, sslrootcert=str(other.cafile))
    await ensure_topics(tls_settings)
    writer = tls_settings.model_copy(update={"database_url": SecretStr(url)})
    proc = start_logged("writer", writer, tmp_path)
    try:
        # Not an outage to wait out: a certificate refused now is refused on every attempt.
        assert proc.wait(timeout=60) != 0
    finally:
        stop_all([proc])
    logged = (tmp_path / "writer.log").read_text()
    assert "CERTIFICATE_VERIFY_FAILED" in logged
    assert "retrying until it is back" not in logged
    assert server.password not in logged


async def test_a_certificate_that_does_not_name_the_host_is_refused_under_verify_full(
    server: TlsPostgres,
) -> None:
    # 127.0.0.2 reaches the same server, but its certificate names 127.0.0.1 and localhost only.
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        await asyncpg.connect(verified(server, host=UNNAMED_HOST))
    # The same URL under verify-ca, which checks the CA but not the name, connects: it was the name.
    conn = await asyncpg.connect(verified(server, host=UNNAMED_HOST, sslmode="verify-ca"))
    try:
        assert await conn.fetchval(IS_ENCRYPTED) is True
    finally:
        await conn.close()
    # localhost, which the certificate names, is accepted under verify-full.
    conn = await asyncpg.connect(verified(server, host="localhost"))
    await conn.close()


async def test_a_client_certificate_logs_its_user_in_without_a_password(
    server: TlsPostgres,
) -> None:
    cert = {"sslcert": str(server.client_certfile), "sslkey": str(server.client_keyfile)}
    conn = await asyncpg.connect(verified(server, user=CERT_USER, **cert))
    try:
        assert await conn.fetchval("SELECT current_user") == CERT_USER
        assert await conn.fetchval(IS_ENCRYPTED) is True
    finally:
        await conn.close()
    # Without the certificate the same user is refused.
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
        await asyncpg.connect(verified(server, user=CERT_USER))


async def test_a_wrong_password_is_refused_and_not_echoed(server: TlsPostgres) -> None:
    wrong = uuid.uuid4().hex
    url = verified(server).replace(server.password, wrong)
    with pytest.raises(asyncpg.InvalidPasswordError) as refused:
        await asyncpg.connect(url)
    assert wrong not in str(refused.value)
