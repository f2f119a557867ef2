"""JSON log lines: the message and the identifiers the code knows, as fields."""

from __future__ import annotations

import logging
import sys

import orjson
from rostersync_libs.logs import JsonFormatter, log_context


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("rostersync.test", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_line_carries_the_context_and_the_call_fields() -> None:
    formatter = JsonFormatter("writer")
    with log_context(tenant="d1", run="r-1", stage="writer", payload="never a field"):
        line = orjson.loads(formatter.format(record("wrote %d records", 3, source="sis")))
    assert line["message"] == "wrote 3 records"
    assert (line["service"], line["level"], line["logger"]) == ("writer", "INFO", "rostersync.test")
    assert (line["tenant"], line["run"], line["stage"], line["source"]) == (
        "d1",
        "r-1",
        "writer",
        "sis",
    )
    assert "payload" not in line


def test_the_context_ends_with_its_block() -> None:
    formatter = JsonFormatter("fetcher")
    with log_context(tenant="d1"):
        pass
    line = orjson.loads(formatter.format(record("idle")))
    assert "tenant" not in line
    assert set(line) == {"time", "level", "service", "logger", "message"}


def test_an_exception_is_named_with_its_traceback() -> None:
    formatter = JsonFormatter("mapper")
    try:
        raise ValueError("boom")
    except ValueError:
        made = record("failed")
        made.exc_info = sys.exc_info()
    line = orjson.loads(formatter.format(made))
    assert line["error"] == "ValueError"
    assert "Traceback" in line["traceback"]
