"""Logging set-up shared by the services: one line per event, never a full record.

Two formats (``ROSTERSYNC_LOG_FORMAT``): ``text`` for a terminal, ``json`` for a log collector:
one object per line with ``time``, ``level``, ``service``, ``logger``, ``message`` and, where the
code knows them, ``tenant``, ``source``, ``run`` and ``stage`` (from :func:`log_context`, or a
call's ``extra``). The stdlib's logging with a small formatter rather than structlog: the
services already log through it (and so do aiokafka and asyncpg), and the fields need no more.
What a line says is what the text line says: messages never carry record contents or secrets
(docs/security.md), and the fields are identifiers only.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

# The fields a JSON line carries when the code knows them.
CONTEXT_FIELDS = ("tenant", "source", "run", "stage")
_context: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039 (never mutated)


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Within the block (and tasks it creates), log lines carry these fields."""
    known = {k: str(v) for k, v in fields.items() if k in CONTEXT_FIELDS and v is not None}
    token = _context.set({**_context.get(), **known})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: the record's message and the known identifiers."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_context.get())
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = str(value)
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


# Client libraries that log each failed attempt while a server is away (aiokafka every
# reconnection, asyncpg's pool every refill, the latter with a traceback).
CHATTY_LIBRARIES = ("aiokafka", "asyncpg")


class QuietLibraries(logging.Filter):
    """A library's repeated warning at most once per ``every`` seconds, on one line: its
    traceback becomes the exception's type (an outage is logged by the service, once)."""

    def __init__(self, every: float = 60.0) -> None:
        super().__init__()
        self._every = every
        self._last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(CHATTY_LIBRARIES):
            return True
        now = time.monotonic()
        key = (record.name, record.msg)
        if now - self._last.get(key, -self._every) < self._every:
            return False
        self._last[key] = now
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} ({type(record.exc_info[1]).__name__})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging(level: str, service: str, log_format: str = "text") -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietLibraries())
        if log_format == "json":
            handler.setFormatter(JsonFormatter(service))
    # aiokafka logs every rebalance step at INFO; keep service logs readable.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
