"""Typed column values from payload values.

The validator decides what is acceptable; the writer must never stop on a value it cannot type.
A value that does not convert becomes NULL (or is left out of a list) in its typed column, and the
row's jsonb payload keeps it as it came. PostgreSQL text cannot hold NUL characters, so they are
dropped from typed text (and from the stored payload, see :func:`payload_json`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import UUID

import orjson
from asyncpg.pgproto import pgproto

Convert = Callable[[Any], Any]

# asyncpg's own UUID: a uuid.UUID (equal to and hashing as the same uuid.UUID) parsed from its
# text in C, about ten times faster than uuid.UUID, and asyncpg encodes it by copying its 16 bytes.
# It reads the canonical form (and any 32 hex digits with dashes), a subset of what uuid.UUID reads.
_pg_uuid: Callable[[str], UUID] = pgproto.UUID

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR = re.compile(r"\d{4}")


def text(value: Any) -> str | None:
    """A string as it is (NUL characters dropped); lists are joined as OneRoster writes them."""
    if value is None:
        return None
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    result = str(value).replace("\x00", "")
    return result if result else None


def text_list(value: Any) -> list[str]:
    """A list column: the payload's list, or a lone string split on commas; never NULL."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    found = (text(item.strip() if isinstance(item, str) else item) for item in items)
    return [item for item in found if item is not None]


def boolean(value: Any) -> bool | None:
    """``true``/``false`` (any case, as real files send ``TRUE``); anything else is NULL."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    return {"true": True, "false": False}.get(value.strip().lower())


def day(value: Any) -> date | None:
    """A ``YYYY-MM-DD`` date; anything else (``1/05/2023``, ``2023-02-30``) is NULL."""
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def year(value: Any) -> int | None:
    """A ``YYYY`` school year; anything else is NULL."""
    if isinstance(value, str) and _YEAR.fullmatch(value.strip()):
        return int(value.strip())
    return None


def uuid(value: Any) -> UUID | None:
    """An internal id set by the mapper; anything that is not a UUID is NULL."""
    if isinstance(value, str):
        try:
            return _pg_uuid(value)
        except ValueError:
            pass
        try:
            return UUID(value)  # the forms only uuid.UUID reads: braces, urn:uuid:…
        except ValueError:
            return None
    return value if isinstance(value, UUID) else None


def uuid_list(value: Any) -> list[UUID]:
    """Internal ids of a list reference, in order, without repeats or unparsable items."""
    items = value if isinstance(value, list) else [] if value is None else [value]
    found = [item for item in map(uuid, items) if item is not None]
    return list(dict.fromkeys(found)) if len(found) > 1 else found


def strip_nul(value: Any) -> Any:
    """The value with NUL characters removed from every string in it (PostgreSQL refuses them)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [strip_nul(v) for v in value]
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    return value


def payload_json(payload: dict[str, Any]) -> str:
    """The payload as jsonb text (jsonb rejects ``\\u0000``, so NULs are dropped first)."""
    encoded = orjson.dumps(payload)
    if b"\\u0000" in encoded:
        encoded = orjson.dumps(strip_nul(payload))
    return encoded.decode()
