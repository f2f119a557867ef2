"""What the CLI says when Kafka or PostgreSQL does not answer: one line, and what to do."""

from __future__ import annotations

from urllib.parse import urlsplit

from rostersync_libs.outages import outage_of, server_of

from rostersync_cli.settings import CliSettings

STACK_HINT = "start the local stack with `rostersync stack up`"


def unavailable_message(exc: BaseException, settings: CliSettings) -> str | None:
    """The line for an outage behind ``exc`` (None when it is no outage). Never the password."""
    outage = outage_of(exc)
    if outage is None:
        return None
    database = urlsplit(settings.database_url.get_secret_value())
    db_address = f"{database.hostname}:{database.port or 5432}"
    kafka_address = settings.kafka_bootstrap_servers
    why = type(outage).__name__
    server = server_of(outage)
    if server == "PostgreSQL or Kafka":  # no type or client to tell: the address in the text
        text = str(outage)
        port = str(database.port or 5432)
        kafka_port = kafka_address.rsplit(":", 1)[-1]
        server = "PostgreSQL" if port in text else "Kafka" if kafka_port in text else server
    if server == "PostgreSQL":
        return (
            f"PostgreSQL is not answering at {db_address} ({why}): {STACK_HINT},"
            " or set DATABASE_URL to your database"
        )
    if server == "Kafka":
        return (
            f"Kafka is not answering at {kafka_address} ({why}): {STACK_HINT},"
            " or set KAFKA_BOOTSTRAP_SERVERS to your brokers"
        )
    return (
        f"PostgreSQL ({db_address}) or Kafka ({kafka_address}) is not answering ({why}):"
        f" {STACK_HINT}, or set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS"
    )
