"""The CLI's settings, and where the Kafka and Postgres it talks to come from."""

from __future__ import annotations

import os
from pathlib import Path

from rostersync_libs.settings import ServiceSettings

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


def servers_configured() -> bool:
    """True when the user named their own Kafka or Postgres; else the local stack is used."""
    return any(os.environ.get(name) for name in CONNECTION_VARIABLES)
