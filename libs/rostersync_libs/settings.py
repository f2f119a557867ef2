"""Settings shared by every service; each service subclasses :class:`ServiceSettings`.

This is the only place that reads the environment (:func:`env_secret` reads the secrets the
tenants file names by variable). Names accept the ``ROSTERSYNC_`` prefix; the two
connection settings also accept the conventional ``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL``.
How Kafka clients authenticate (TLS, SASL) is read here too and turned into client arguments in one
place, :func:`rostersync_libs.kafka.client_options` (see docs/security.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rostersync_libs.topics import Topics

# The local stack's defaults (deploy/local): used when nothing else is configured.
DEFAULT_KAFKA = "127.0.0.1:19092"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:15432/rostersync"

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class ServiceSettings(BaseSettings):
    """Kafka and PostgreSQL connection settings, and the deployment's namespaces."""

    model_config = SettingsConfigDict(env_prefix="ROSTERSYNC_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default=DEFAULT_KAFKA,
        validation_alias=AliasChoices(
            "ROSTERSYNC_KAFKA_BOOTSTRAP_SERVERS",
            "KAFKA_BOOTSTRAP_SERVERS",
            "kafka_bootstrap_servers",
        ),
    )
    database_url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL),
        validation_alias=AliasChoices("ROSTERSYNC_DATABASE_URL", "DATABASE_URL", "database_url"),
    )
    topic_prefix: str = ""
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    # Dead letters hold whole rejected records (children's data) and findings quote values: a
    # deployment may keep them on Kafka for a while only (None: forever, the replay source of
    # rejected_records and findings; a replay then rebuilds only what is still retained).
    dead_letter_retention_hours: float | None = Field(default=None, gt=0)
    findings_retention_hours: float | None = Field(default=None, gt=0)
    db_schema: str = Field(default="rostersync", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Where the deployment's control tables are (tenants' data keys, the operator audit): what a
    # replay reads but never rebuilds. Unset: ``db_schema``. A replay into a fresh schema points
    # it at the live one, whose keys open the topics and whose audit holds the decisions.
    control_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # The master key that wraps tenants' data keys in PostgreSQL (base64 of 32 random bytes), from
    # a file (a mounted secret) or the environment; unset: data keys are stored unwrapped
    # (data_keys.py, docs/security.md). A secret: never logged.
    master_key_file: Path | None = None
    master_key: SecretStr | None = None
    log_level: str = "INFO"
    # text: one line per event for a terminal; json: one JSON object per line, with service,
    # tenant, run and stage fields where known, for a log collector (logs.py).
    log_format: Literal["text", "json"] = "text"
    # The operator endpoint (/metrics, /healthz, /readyz; health_server.py). No port: none is
    # served (several services share one machine locally; a deployment gives each its port).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"  # a container serves its probes on 0.0.0.0
    probe_seconds: float = Field(default=10.0, gt=0)  # how often /readyz asks PostgreSQL and Kafka
    tenants_file: Path = Path("tenants.toml")
    # Kafka security (docs/security.md). PLAINTEXT is the local stack's; managed Kafka is SASL_SSL.
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None  # a secret: never logged
    # PEM files. No CA file: the system's trusted CAs (a managed service's public certificate).
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None  # a client certificate (mutual TLS), with its key
    kafka_ssl_keyfile: Path | None = None

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Self:
        """Refuse a half-configured Kafka security at start, naming the variables to set.

        A SASL setting with a protocol that does not use it is refused too: whoever set a password
        meant the connection to be authenticated, and it would not be.
        """
        protocol = self.kafka_security_protocol
        prefix = "ROSTERSYNC_KAFKA_"

        def variables(names: tuple[str, ...], *, given: bool) -> list[str]:
            return [
                f"{prefix}{name.upper()}"
                for name in names
                if bool(getattr(self, f"kafka_{name}")) == given
            ]

        sasl = ("sasl_mechanism", "sasl_username", "sasl_password")
        if protocol.startswith("SASL_") and (missing := variables(sasl, given=False)):
            raise ValueError(
                f"{prefix}SECURITY_PROTOCOL={protocol} needs {', '.join(missing)} "
                "(mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )
        if not protocol.startswith("SASL_") and (extra := variables(sasl, given=True)):
            raise ValueError(
                f"{', '.join(extra)} set, but {prefix}SECURITY_PROTOCOL={protocol} does not "
                "use SASL: set it to SASL_SSL (or SASL_PLAINTEXT)"
            )
        tls = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
        if not protocol.endswith("SSL") and (extra := variables(tls, given=True)):
            raise ValueError(
                f"{', '.join(extra)} set, but {prefix}SECURITY_PROTOCOL={protocol} does not "
                "use TLS: set it to SSL or SASL_SSL"
            )
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            raise ValueError(f"{prefix}SSL_KEYFILE needs {prefix}SSL_CERTFILE (the certificate)")
        if self.master_key_file is not None and self.master_key is not None:
            raise ValueError(
                "ROSTERSYNC_MASTER_KEY_FILE and ROSTERSYNC_MASTER_KEY both set: keep one"
            )
        return self

    @property
    def control(self) -> str:
        """The schema of the control tables (see ``control_schema``)."""
        return self.control_schema or self.db_schema

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def consumer_group(self, stage: str) -> str:
        """Consumer groups follow the topic prefix, so isolated deployments never share offsets."""
        return f"{self.topic_prefix}rostersync-{stage}"


def env_secret(name: str | None, what: str) -> SecretStr:
    """A secret the configuration names by its environment variable (a tenant's pseudonym key, a
    source's secret, a webhook's signing key), read when it is used so a rotated one is picked
    up without a restart; KeyError (saying ``what`` it is) when it is not set."""
    value = os.environ.get(name or "")
    if not value:
        raise KeyError(f"environment variable {name} ({what}) is not set")
    return SecretStr(value)


def env_is_set(name: str) -> bool:
    """Whether the environment gives ``name`` a value (the CLI: which servers the user named)."""
    return bool(os.environ.get(name))
