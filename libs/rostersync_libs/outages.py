"""Outages of PostgreSQL or Kafka: what they look like, and waiting them out.

A service that loses its database or its broker (a restart, a failover, started before them) does
not exit: :func:`rostersync_libs.service.run_service` stops its work, waits with a growing pause
and starts it again, which re-reads every position from where it is durable (the writer's from
PostgreSQL, the stages' from Kafka's committed offsets) — the same recovery as a restart of the
process, without an operator. One log line says an outage began, one that it ended; in between, at
most one line a minute.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

import asyncpg
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)

# What a lost server raises. Anything else (a bug, a refused credential, a missing permission)
# stops the service as before: waiting would not mend it.
POSTGRES_OUTAGES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or was lost
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01: terminated by a shutdown
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300: a burst of reconnections
    asyncpg.InterfaceError,  # "connection is closed" on a connection the server dropped
)
KAFKA_OUTAGES: tuple[type[BaseException], ...] = (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)
SERVER_OUTAGES = POSTGRES_OUTAGES + KAFKA_OUTAGES
# Refused or reset sockets, unreachable hosts, timeouts (asyncio reports a refusal on several
# addresses as a bare OSError); but not a file that is missing or forbidden: waiting cannot mend it.
FILE_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


# A connection refused by its own configuration: a bad DATABASE_URL option or certificate file
# (asyncpg's ClientConfigurationError is an InterfaceError), or a server certificate that the CA
# or the host name does not vouch for (an OSError). Waiting cannot mend them either.
MISCONFIGURED: tuple[type[BaseException], ...] = (
    asyncpg.ClientConfigurationError,
    ssl.SSLCertVerificationError,
)


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, MISCONFIGURED):
        return False
    if isinstance(exc, SERVER_OUTAGES):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, FILE_ERRORS)


def outage_of(exc: BaseException) -> BaseException | None:
    """The outage behind ``exc`` (itself, a cause, or one of a group's), or None."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if is_outage(current):
            return current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)
    return None


def server_of(exc: BaseException) -> str:
    """Which server an outage is of: by its type, or else (a reset socket, a refusal) by the
    client library it came through."""
    if isinstance(exc, POSTGRES_OUTAGES):
        return "PostgreSQL"
    if isinstance(exc, KAFKA_OUTAGES):
        return "Kafka"
    frame = exc.__traceback__
    while frame is not None:
        module = str(frame.tb_frame.f_globals.get("__name__", ""))
        if module.startswith("asyncpg"):
            return "PostgreSQL"
        if module.startswith("aiokafka"):
            return "Kafka"
        frame = frame.tb_next
    return "PostgreSQL or Kafka"


def describe(exc: BaseException) -> str:
    """Which server and why, without the error's text (it may hold a connection string)."""
    return f"{server_of(exc)} unavailable ({type(exc).__name__})"


@dataclass
class Backoff:
    """Pauses of ``first`` seconds, doubling to ``longest``; log lines rationed per outage."""

    first: float = 0.5
    longest: float = 30.0
    report_every: float = 60.0
    attempts: int = 0
    began: float | None = None
    _last_report: float = field(default=0.0, repr=False)

    def failed(self, log: logging.Logger, service: str, exc: BaseException) -> float:
        """Note one failed attempt; the pause before the next."""
        now = time.monotonic()
        self.attempts += 1
        if self.began is None:
            self.began = self._last_report = now
            log.warning("%s: %s: retrying until it is back", service, describe(exc))
        elif now - self._last_report >= self.report_every:
            self._last_report = now
            log.warning(
                "%s: still waiting: %s for %.0f s (%d attempts)",
                service,
                describe(exc),
                now - self.began,
                self.attempts,
            )
        return min(self.longest, self.first * 2.0 ** (self.attempts - 1))

    def recovered(self, log: logging.Logger, service: str) -> None:
        """The work has run well since the last failure: the outage is over."""
        if self.began is not None:
            log.warning(
                "%s: back after %.0f s (%d attempts)",
                service,
                time.monotonic() - self.began,
                self.attempts,
            )
        self.attempts, self.began = 0, None


# What a service's loop calls once its servers have answered (see :func:`working`).
_on_working: ContextVar[Callable[[], None] | None] = ContextVar("on_working", default=None)


@contextlib.contextmanager
def readiness(callback: Callable[[], None]) -> Iterator[None]:
    """Within the block, :func:`working` calls ``callback``."""
    token = _on_working.set(callback)
    try:
        yield
    finally:
        _on_working.reset(token)


def working() -> None:
    """Said by a service once it has started with its servers: an outage in progress is over."""
    callback = _on_working.get()
    if callback is not None:
        callback()
