"""Where the test servers come from, in order of preference.

1. Servers named by environment variables (``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL``).
2. testcontainers, when a Docker engine answers.
3. The project's own local stack (deploy/local): real Kafka and PostgreSQL without Docker.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap: str
    database_url: str
    origin: str


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # any failure means: no usable engine here
        return False
    return True


@contextlib.contextmanager
def _testcontainers() -> Iterator[Servers]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with (
        KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
        PostgresContainer("postgres:15", driver=None) as pg,
    ):
        yield Servers(kafka.get_bootstrap_server(), pg.get_connection_url(), "testcontainers")


@contextlib.contextmanager
def provide_servers() -> Iterator[Servers]:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database = os.environ.get("DATABASE_URL")
    if kafka and database:
        yield Servers(kafka, database, "environment")
    elif _docker_answers():
        with _testcontainers() as servers:
            yield servers
    else:
        import rostersync_localstack

        # Leave the machine as we found it: stop the stack afterwards only if we started it.
        was_running = all(
            state.startswith("running")
            for name, state in rostersync_localstack.status().items()
            if name in ("kafka", "postgres")
        )
        info = rostersync_localstack.up()
        try:
            yield Servers(info.kafka_bootstrap, info.database_url, "local stack")
        finally:
            if not was_running:
                rostersync_localstack.down()
