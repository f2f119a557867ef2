"""Kafka security settings: validation, the one place that turns them into client arguments, the
environment given to child services, and the ACL table against what the services use."""

from __future__ import annotations

import re
import shutil
import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from rostersync_cli.processes import service_environment
from rostersync_libs import kafka_acls
from rostersync_libs.kafka import client_options
from rostersync_libs.settings import ServiceSettings
from rostersync_localstack.secure import Tls, make_certificates
from rostersync_writer.app import subscribed_topics

REPO = Path(__file__).resolve().parents[3]
PASSWORD = "s3cret-pa55word"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return make_certificates(tmp_path_factory.mktemp("tls"))


def sasl(**changes: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": "kafka-1.example:9093,kafka-2.example:9093",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "validator",
        "kafka_sasl_password": SecretStr(PASSWORD),
    }
    return ServiceSettings(**{**values, **changes})


def test_plaintext_by_default_and_nothing_else() -> None:
    assert client_options(ServiceSettings(kafka_bootstrap_servers="127.0.0.1:19092")) == {
        "bootstrap_servers": "127.0.0.1:19092",
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_ssl_with_scram_verifies_the_broker_with_the_system_cas() -> None:
    options = client_options(sasl())
    context = options.pop("ssl_context")
    assert options == {
        "bootstrap_servers": "kafka-1.example:9093,kafka-2.example:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "validator",
        "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_a_ca_file_and_a_client_certificate_are_loaded(tls: Tls) -> None:
    options = client_options(
        sasl(
            kafka_ssl_cafile=tls.cafile,
            kafka_ssl_certfile=tls.client_certfile,
            kafka_ssl_keyfile=tls.client_keyfile,
        )
    )
    context = options["ssl_context"]
    assert [c["subject"] for c in context.get_ca_certs()] != []
    assert any("rostersync test CA" in str(c["subject"]) for c in context.get_ca_certs())


def test_ssl_without_sasl_and_sasl_without_tls() -> None:
    ssl_only = client_options(ServiceSettings(kafka_security_protocol="SSL"))
    assert ssl_only["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in ssl_only
    plain = client_options(
        sasl(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN")
    )
    assert "ssl_context" not in plain
    assert plain["sasl_mechanism"] == "PLAIN"
    assert plain["sasl_plain_password"] == PASSWORD


def test_a_missing_ca_file_is_named() -> None:
    with pytest.raises(
        ValueError, match=r"ROSTERSYNC_KAFKA_SSL_CAFILE: no file at /nowhere/ca\.pem"
    ):
        client_options(sasl(kafka_ssl_cafile=Path("/nowhere/ca.pem")))


@pytest.mark.parametrize(
    "missing", ["kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"]
)
def test_sasl_needs_mechanism_user_and_password(missing: str) -> None:
    with pytest.raises(ValidationError) as raised:
        sasl(**{missing: None})
    message = str(raised.value)
    assert "ROSTERSYNC_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs" in message
    assert f"ROSTERSYNC_{missing.upper()}" in message


def test_sasl_settings_without_a_sasl_protocol_are_refused() -> None:
    with pytest.raises(ValidationError, match="does not use SASL: set it to SASL_SSL"):
        sasl(kafka_security_protocol="SSL")


def test_certificates_without_tls_are_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ValidationError, match=r"ROSTERSYNC_KAFKA_SSL_CAFILE set, but .* does not use TLS"
    ):
        sasl(kafka_security_protocol="SASL_PLAINTEXT", kafka_ssl_cafile=tmp_path / "ca.pem")
    with pytest.raises(ValidationError, match="SSL_KEYFILE needs ROSTERSYNC_KAFKA_SSL_CERTFILE"):
        sasl(kafka_ssl_keyfile=tmp_path / "client.key")


def test_unknown_protocols_and_mechanisms_are_refused() -> None:
    with pytest.raises(ValidationError):
        sasl(kafka_security_protocol="TLS")
    with pytest.raises(ValidationError):
        sasl(kafka_sasl_mechanism="GSSAPI")


def test_read_from_the_environment_and_the_password_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "ROSTERSYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "ROSTERSYNC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "ROSTERSYNC_KAFKA_SASL_USERNAME": "cli",
        "ROSTERSYNC_KAFKA_SASL_PASSWORD": PASSWORD,
        "ROSTERSYNC_KAFKA_SSL_CAFILE": "/etc/rostersync/ca.pem",
    }.items():
        monkeypatch.setenv(name, value)
    settings = ServiceSettings()
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-256"
    assert settings.kafka_ssl_cafile == Path("/etc/rostersync/ca.pem")
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == PASSWORD
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert PASSWORD not in shown


def test_child_services_get_the_same_kafka_login(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parent = sasl(kafka_ssl_cafile=tmp_path / "ca.pem")
    env = service_environment(parent)
    assert env["ROSTERSYNC_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["ROSTERSYNC_KAFKA_SASL_PASSWORD"] == PASSWORD
    assert env["ROSTERSYNC_KAFKA_SSL_CAFILE"] == str(tmp_path / "ca.pem")
    for name, value in env.items():
        if name.startswith("ROSTERSYNC_"):
            monkeypatch.setenv(name, value)
    child = ServiceSettings()
    fields = [f for f in ServiceSettings.model_fields if f.startswith("kafka_")]
    assert {f: getattr(child, f) for f in fields} == {f: getattr(parent, f) for f in fields}


def test_a_child_does_not_inherit_a_login_its_parent_does_not_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parent = ServiceSettings()
    monkeypatch.setenv("ROSTERSYNC_KAFKA_SASL_USERNAME", "someone-else")
    monkeypatch.setenv("ROSTERSYNC_KAFKA_SSL_CAFILE", "/elsewhere/ca.pem")
    env = service_environment(parent)
    assert env["ROSTERSYNC_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert "ROSTERSYNC_KAFKA_SASL_USERNAME" not in env
    assert "ROSTERSYNC_KAFKA_SSL_CAFILE" not in env


def test_every_product_kafka_client_takes_the_shared_options() -> None:
    """No producer, consumer or admin client is built from a bare bootstrap string."""
    bare = re.compile(r"\bbootstrap_servers\s*=")
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in ("libs", "services", "cli")
        for path in (REPO / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if bare.search(line) and "kafka_bootstrap_servers" not in line
    ]
    assert found == []


def test_the_acls_grant_each_service_what_its_code_uses() -> None:
    settings = ServiceSettings(topic_prefix="p.")
    t = settings.topics
    table = kafka_acls.access_table(settings)
    assert set(table) == set(kafka_acls.SERVICES)
    # The writer reads exactly what it subscribes to, writes only the change feed (its relay), and
    # its groups follow its schema.
    assert set(table["writer"].reads) == set(subscribed_topics(t))
    assert table["writer"].writes == (t.changes,)
    assert table["writer"].group_prefixed
    assert settings.consumer_group(f"writer-{settings.db_schema}").startswith(
        table["writer"].group or "-"
    )
    # The middle stages: their input, their output, dead letters and findings; their own group.
    assert table["validator"] == kafka_acls.Access(
        reads=(t.fetched,),
        writes=(t.validated, t.validator_dlq, t.findings),
        group="p.rostersync-validator",
    )
    assert set(table["mapper"].writes) == {t.mapped, t.mapper_dlq, t.findings, t.identities}
    # Nobody but the fetcher writes records in; nobody but the CLI and the fetcher writes commands.
    writers = {topic: {s for s, a in table.items() if topic in a.writes} for topic in t.all()}
    assert writers[t.fetched] == {"fetcher"}
    assert writers[t.commands] == {"fetcher", "cli"}
    assert writers[t.mapped] == {"mapper"}
    assert writers[t.runs] == {"fetcher"}
    assert not set(table["cli"].writes) & set(t.record_topics()) - {t.commands}


def test_acls_are_literal_topics_and_groups_for_the_named_principals() -> None:
    settings = ServiceSettings(topic_prefix="p.")
    found = kafka_acls.acls(settings, {"validator": "svc-validator"})
    validator = [a for a in found if a.principal == "User:svc-validator"]
    assert {(a.resource, a.name, a.operation) for a in validator} == {
        (
            kafka_acls.ResourceType.TOPIC,
            "p.rostersync.records.fetched.v2",
            kafka_acls.Operation.READ,
        ),
        (
            kafka_acls.ResourceType.TOPIC,
            "p.rostersync.records.validated.v2",
            kafka_acls.Operation.WRITE,
        ),
        (
            kafka_acls.ResourceType.TOPIC,
            "p.rostersync.dlq.validator.v2",
            kafka_acls.Operation.WRITE,
        ),
        (kafka_acls.ResourceType.TOPIC, "p.rostersync.findings.v1", kafka_acls.Operation.WRITE),
        (kafka_acls.ResourceType.GROUP, "p.rostersync-validator", kafka_acls.Operation.READ),
    }
    prefixed = [a for a in found if a.pattern is kafka_acls.PatternType.PREFIXED]
    assert [(a.principal, a.name) for a in prefixed] == [("User:writer", "p.rostersync-writer-")]
    assert len(kafka_acls.acl_commands(settings)) == len(kafka_acls.acls(settings))
