"""Logging set-up shared by the services: one line per event, never a full record."""

from __future__ import annotations

import logging
import time

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


def configure_logging(level: str, service: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietLibraries())
    # aiokafka logs every rebalance step at INFO; keep service logs readable.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
