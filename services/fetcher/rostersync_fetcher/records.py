"""Turning CSV rows into record events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from rostersync_libs.envelope import Envelope, Operation, Origin, record_event
from rostersync_libs.oneroster.columns import DROPPED_COLUMNS, LIST_COLUMNS, FileSpec

from rostersync_fetcher.csv_bundle import Row

DELETE_STATUSES = frozenset({"tobedeleted", "inactive"})


def payload_of(values: dict[str, str]) -> dict[str, Any]:
    """The record's non-blank values; list columns split into lists; passwords never copied."""
    payload: dict[str, Any] = {}
    for column, raw in values.items():
        value = raw.strip()
        if not value or column in DROPPED_COLUMNS:
            continue
        if column in LIST_COLUMNS:
            payload[column] = [item.strip() for item in value.split(",") if item.strip()]
        else:
            payload[column] = value
    return payload


def parse_datetime(value: str | None) -> datetime | None:
    """The source's dateLastModified, if it parses; the validator reports it when it does not."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # A date without a zone is read as UTC, the only zone OneRoster allows.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def event_of_row(*, tenant: str, source: str, run_id: UUID, spec: FileSpec, row: Row) -> Envelope:
    payload = payload_of(row.values)
    status = str(payload.get("status", "")).lower()
    return record_event(
        tenant=tenant,
        source=source,
        run_id=run_id,
        entity=spec.entity,
        sourced_id=row.values.get("sourcedId", "").strip(),
        payload=payload,
        operation=Operation.DELETE if status in DELETE_STATUSES else Operation.UPSERT,
        date_last_modified=parse_datetime(row.values.get("dateLastModified")),
        origin=Origin(file=row.file, row=row.number),
    )
