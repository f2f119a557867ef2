"""Settings shared by every service; each service subclasses :class:`ServiceSettings`.

This is the only place that reads the environment. Names accept the ``ROSTERSYNC_`` prefix; the two
connection settings also accept the conventional ``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from rostersync_libs.topics import Topics

# The local stack's defaults (deploy/local): used when nothing else is configured.
DEFAULT_KAFKA = "127.0.0.1:19092"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:15432/rostersync"


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
    db_schema: str = Field(default="rostersync", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    log_level: str = "INFO"
    tenants_file: Path = Path("tenants.toml")

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def consumer_group(self, stage: str) -> str:
        """Consumer groups follow the topic prefix, so isolated deployments never share offsets."""
        return f"{self.topic_prefix}rostersync-{stage}"
