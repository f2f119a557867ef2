"""The CLI's settings, and where the Kafka and Postgres it talks to come from."""

from __future__ import annotations

from pathlib import Path

from rostersync_libs.settings import ServiceSettings, env_is_set

CONNECTION_VARIABLES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "ROSTERSYNC_KAFKA_BOOTSTRAP_SERVERS",
    "DATABASE_URL",
    "ROSTERSYNC_DATABASE_URL",
)

# The sample district shipped with the project (examples/), used by the demo.
REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_TENANTS = REPO_ROOT / "examples" / "tenants.toml"


class CliSettings(ServiceSettings):
    """Settings of the ``rostersync`` command (environment prefix ``ROSTERSYNC_``)."""


class HalfConfigured(KeyError):  # noqa: N818 - the CLI reports a KeyError's message, exit 2
    pass


def servers_configured() -> bool:
    """True when the user named their own Kafka or Postgres; else the local stack is used."""
    kafka = any(env_is_set(n) for n in CONNECTION_VARIABLES if "KAFKA" in n)
    database = any(env_is_set(n) for n in CONNECTION_VARIABLES if "DATABASE" in n)
    if kafka != database:
        given, missing = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")[:: 1 if kafka else -1]
        # One of the user's servers with the local stack's other would mix two deployments.
        raise HalfConfigured(
            f"{given} is set but {missing} is not: set both (your servers), or neither (the"
            " local stack, `rostersync stack up`)"
        )
    return kafka
