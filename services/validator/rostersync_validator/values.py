"""Checks of single values against their column's kind, with the lenient profile's corrections.

Each check returns ``(corrected value or None, finding code or None, message)``: a corrected
value replaces the original when the profile lets the slip through.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from rostersync_libs.finding_codes import Code
from rostersync_libs.oneroster.columns import GRADE_CODES, Column, Kind

Check = tuple[str | None, Code | None, str]
OK: Check = (None, None, "")

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
YEAR_RE = re.compile(r"^\d{4}$")
USER_ID_RE = re.compile(r"^\{[^:}]+:[^}]+\}$")
EXT_RE = re.compile(r"^ext:[A-Za-z0-9.\-_]+$")


def check_date(value: str) -> Check:
    if DATE_RE.match(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            return None, Code.INVALID_DATA_TYPE, f"{value!r} is not a real calendar date"
        return OK
    return None, Code.INVALID_DATA_TYPE, f"{value!r} is not a date (expected YYYY-MM-DD)"


def check_datetime(value: str) -> Check:
    """ISO 8601 with the UTC zone, as OneRoster requires."""
    if DATE_RE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None, Code.INVALID_DATA_TYPE, f"{value!r} is not a real calendar date"
        fixed = f"{day.isoformat()}T00:00:00Z"
        return fixed, Code.DATE_ONLY_TIMESTAMP, f"{value!r} has no time (expected e.g. {fixed})"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None, Code.INVALID_DATA_TYPE, f"{value!r} is not an ISO 8601 datetime in UTC"
    if parsed.tzinfo is None or parsed.utcoffset() != UTC.utcoffset(None):
        as_utc = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        fixed = as_utc.isoformat().replace("+00:00", "Z")
        return fixed, Code.DATETIME_NOT_UTC, f"{value!r} is not in UTC (expected e.g. {fixed})"
    return OK


def check_boolean(value: str) -> Check:
    if value in ("true", "false"):
        return OK
    if value.lower() in ("true", "false"):
        return value.lower(), Code.BOOLEAN_CASE, f"{value!r} must be lower case: {value.lower()!r}"
    return None, Code.INVALID_DATA_TYPE, f"{value!r} is not a boolean (expected true or false)"


def check_enum(value: str, column: Column, version: str) -> Check:
    if value in column.values:
        return OK
    if EXT_RE.match(value):
        if column.extensible and version.startswith("1.2"):
            return OK
        return (
            None,
            Code.EXTENSION_VALUE_IN_1_1,
            f"{value!r}: ext: values arrive with OneRoster 1.2",
        )
    for allowed in column.values:
        if allowed.lower() == value.lower():
            return allowed, Code.ENUMERATION_CASE, f"{value!r} must be written {allowed!r}"
    expected = ", ".join(sorted(column.values))
    return None, Code.INVALID_ENUMERATION, f"{value!r} is not one of {expected}"


def check_value(value: str, column: Column, version: str) -> Check:
    kind = column.kind
    if kind is Kind.ENUM:
        return check_enum(value, column, version)
    if kind is Kind.BOOLEAN:
        return check_boolean(value)
    if kind is Kind.DATE:
        return check_date(value)
    if kind is Kind.DATETIME:
        return check_datetime(value)
    if kind is Kind.YEAR and not YEAR_RE.match(value):
        return None, Code.INVALID_DATA_TYPE, f"{value!r} is not a year (expected YYYY)"
    if kind is Kind.GRADES and value not in GRADE_CODES:
        return None, Code.INVALID_GRADE, f"{value!r} is not a CEDS grade code (e.g. KG, 01, 09, 12)"
    if kind is Kind.USER_IDS and not USER_ID_RE.match(value):
        return (
            None,
            Code.INVALID_DATA_TYPE,
            f"{value!r} is not a userId (expected {{type:identifier}})",
        )
    return OK
