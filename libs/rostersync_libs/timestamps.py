"""Reading OneRoster timestamps."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_utc_datetime(value: str | None) -> datetime | None:
    """An ISO 8601 datetime as an aware datetime (no zone is read as UTC); None if it does not parse.

    The validator reports values that do not parse or are not in UTC; this only reads them.
    """
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
