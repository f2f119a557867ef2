"""What counts as an outage, the pauses between attempts, and the log lines they cost."""

from __future__ import annotations

import asyncio
import logging
import ssl

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from rostersync_libs.logs import QuietLibraries
from rostersync_libs.outages import Backoff, describe, outage_of, working
from rostersync_libs.service import keep_running, quiet_outages


def test_lost_servers_are_outages_and_other_errors_are_not() -> None:
    assert outage_of(ConnectionRefusedError(111, "refused")) is not None
    assert outage_of(OSError("Multiple exceptions: [Errno 111] ...")) is not None
    assert outage_of(asyncpg.CannotConnectNowError("starting up")) is not None
    assert outage_of(KafkaConnectionError("bootstrap")) is not None
    assert outage_of(FileNotFoundError("tenants.toml")) is None
    assert outage_of(PermissionError("inbox")) is None
    assert outage_of(TopicAuthorizationFailedError()) is None
    assert outage_of(ValueError("a bug")) is None


def test_a_refused_certificate_or_a_bad_database_url_option_is_no_outage() -> None:
    # Waiting cannot mend them: the service stops and says why, the CLI does not blame an outage.
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed: IP address mismatch")
    assert outage_of(untrusted) is None
    assert outage_of(asyncpg.ClientConfigurationError("`sslmode` parameter must be one of")) is None
    assert outage_of(asyncpg.InterfaceError("connection is closed")) is not None  # still one
    assert outage_of(ssl.SSLEOFError(8, "EOF occurred in violation of protocol")) is not None


def test_an_outage_behind_a_cause_or_in_a_group_is_found() -> None:
    lost = asyncpg.ConnectionDoesNotExistError("gone")
    wrapped = RuntimeError("applying a batch")
    wrapped.__cause__ = lost
    group = ExceptionGroup[Exception]("tasks", [ValueError(), lost])
    assert outage_of(wrapped) is lost
    assert outage_of(group) is lost


def test_the_description_names_the_server_but_not_the_error_text() -> None:
    text = describe(asyncpg.PostgresConnectionError("postgresql://u:secret@db/x refused"))
    assert text == "PostgreSQL unavailable (PostgresConnectionError)"
    assert describe(KafkaConnectionError()) == "Kafka unavailable (KafkaConnectionError)"


def test_pauses_double_to_a_ceiling_and_one_line_marks_each_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test")
    backoff = Backoff(first=0.5, longest=4.0)
    with caplog.at_level(logging.WARNING):
        pauses = [backoff.failed(log, "writer", ConnectionRefusedError()) for _ in range(6)]
        backoff.recovered(log, "writer")
        backoff.recovered(log, "writer")  # no outage in progress: nothing to say
    assert pauses == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [r.getMessage().split(":")[1].strip() for r in caplog.records] == [
        "PostgreSQL or Kafka unavailable (ConnectionRefusedError)",
        "back after 0 s (6 attempts)",
    ]


async def test_the_service_is_started_again_after_an_outage_and_not_after_a_bug() -> None:
    stop = asyncio.Event()
    starts: list[int] = []

    async def flaky(stop: asyncio.Event) -> None:
        starts.append(1)
        if len(starts) < 3:
            raise KafkaConnectionError("not yet")
        working()

    await keep_running("test", flaky, stop, Backoff(first=0.01))
    assert len(starts) == 3

    async def broken(stop: asyncio.Event) -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        await keep_running("test", broken, stop, Backoff(first=0.01))


def test_a_library_repeating_itself_is_heard_once_a_minute_without_its_traceback() -> None:
    quiet = QuietLibraries(every=60)
    records = []
    for _ in range(50):
        try:
            raise ConnectionRefusedError(111, "refused")
        except ConnectionRefusedError as exc:
            record = logging.LogRecord(
                "asyncpg.pool", logging.WARNING, "p", 1, "Failed to restore the pool", None,
                (type(exc), exc, exc.__traceback__),
            )  # fmt: skip
        records.append(record)
    passed = [r for r in records if quiet.filter(r)]
    assert len(passed) == 1
    assert passed[0].exc_info is None
    assert passed[0].getMessage() == "Failed to restore the pool (ConnectionRefusedError)"
    ours = logging.LogRecord("rostersync_writer.app", logging.WARNING, "p", 1, "x", None, None)
    assert all(quiet.filter(ours) for _ in range(3))


def test_a_reset_socket_is_told_apart_by_the_client_it_came_through() -> None:
    def raised_in(module: str) -> BaseException:
        scope: dict[str, object] = {"__name__": module}
        exec("def query():\n    raise ConnectionResetError(104, 'reset by peer')", scope)
        try:
            scope["query"]()  # type: ignore[operator]
        except ConnectionResetError as exc:
            return exc
        raise AssertionError("not raised")

    assert describe(raised_in("asyncpg.connection")) == (
        "PostgreSQL unavailable (ConnectionResetError)"
    )
    assert describe(raised_in("aiokafka.conn")) == "Kafka unavailable (ConnectionResetError)"
    assert describe(raised_in("somewhere.else")) == (
        "PostgreSQL or Kafka unavailable (ConnectionResetError)"
    )


def test_an_unawaited_outage_error_is_one_line_and_any_other_keeps_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        lost = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")
        with caplog.at_level(logging.WARNING):
            quiet_outages(
                loop, {"message": "Future exception was never retrieved", "exception": lost}
            )
        (record,) = caplog.records
        assert record.exc_info is None
        assert record.getMessage() == (
            "Future exception was never retrieved (ConnectionDoesNotExistError)"
        )
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            quiet_outages(loop, {"message": "Task exception was never retrieved", "exception": ValueError("a bug")})  # fmt: skip
        (record,) = caplog.records
        assert record.exc_info is not None
        assert record.exc_info[0] is ValueError
    finally:
        loop.close()
