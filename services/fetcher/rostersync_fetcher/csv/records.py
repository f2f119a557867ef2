"""Turning CSV rows into record events, with what only the whole bundle can tell about them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from rostersync_libs.events import (
    Operation,
    Origin,
    RecordEvent,
    RecordFacts,
    RecordMode,
    record_event,
)
from rostersync_libs.oneroster.bundle import Row
from rostersync_libs.oneroster.columns import FileSpec
from rostersync_libs.timestamps import parse_utc_datetime

from rostersync_fetcher.csv.headers import HeaderMap
from rostersync_fetcher.csv.index import BundleIndex

if TYPE_CHECKING:
    from rostersync_fetcher.minimise import FieldPolicy
    from rostersync_fetcher.selection_pass import Selector

DELETE_STATUSES = frozenset({"tobedeleted", "inactive"})


@dataclass(frozen=True)
class FileContext:
    """Everything the rows of one file share."""

    tenant: str
    source: str
    run_id: UUID
    spec: FileSpec
    mode: RecordMode
    version: str
    header: HeaderMap
    index: BundleIndex
    selector: Selector | None = None  # the source's selection, if it has one
    policy: FieldPolicy | None = None  # the tenant's field policy, if it has one


def payload_of(values: dict[str, str], spec: FileSpec) -> dict[str, Any]:
    """The record's non-blank values; list columns split into lists.

    A list of blanks (``" , "``) is blank too, as the REST path reads ``[]``: a required list
    column holding one is missing data, not a list with no references.
    """
    payload: dict[str, Any] = {}
    for name, raw in values.items():
        value = raw.strip()
        if not value:
            continue
        column = spec.by_name.get(name)
        if column is not None and column.is_list:
            items = [item.strip() for item in value.split(",") if item.strip()]
            if items:
                payload[name] = items
        else:
            payload[name] = value
    return payload


def facts_of(
    ctx: FileContext, payload: dict[str, Any], row: Row, first_rows: dict[str, int]
) -> RecordFacts | None:
    dangling: dict[str, list[str]] = {}
    unresolved: dict[str, list[str]] = {}
    # Reference columns, and demographics' sourcedId (the user's): see FileSpec.checked_references.
    for column, target in ctx.spec.checked_references:
        value = payload.get(column.name)
        if value is None:
            continue
        for ref in value if isinstance(value, list) else [value]:
            if ctx.index.contains(target, ref):
                continue
            missing = dangling if ctx.index.is_bulk(target) else unresolved
            missing.setdefault(column.name, []).append(ref)
    sourced_id = str(payload.get("sourcedId", ""))
    duplicate_of: int | None = None
    if ctx.index.is_duplicate(ctx.spec.entity, sourced_id):
        duplicate_of = first_rows.setdefault(sourced_id, row.number)
        if duplicate_of == row.number:
            duplicate_of = None
    in_cycle = ctx.spec.entity.value == "orgs" and sourced_id in ctx.index.cyclic_orgs
    field_count = len(row.values) if len(row.values) != ctx.header.width else None
    if not (dangling or unresolved or duplicate_of or in_cycle or field_count is not None):
        return None
    return RecordFacts(
        dangling=dangling,
        unresolved=unresolved,
        duplicate_of_row=duplicate_of,
        in_cycle=in_cycle,
        field_count=field_count,
    )


def event_of_row(ctx: FileContext, row: Row, first_rows: dict[str, int]) -> RecordEvent | None:
    """The row's record event; ``None`` when the source's selection skips the record.

    Its operation, date, facts and id are read from the row as it is; its payload (and hash)
    has the tenant's field policy applied."""
    payload = payload_of(ctx.header.values(row.values), ctx.spec)
    if ctx.selector is not None:
        selected = ctx.selector.apply(ctx.spec.entity, payload, ctx.spec.file_name)
        if selected is None:
            return None
        payload = selected  # before facts and hash: trimmed references are not the record's
    status = str(payload.get("status", "")).lower()
    return record_event(
        tenant=ctx.tenant,
        source=ctx.source,
        run_id=ctx.run_id,
        entity=ctx.spec.entity,
        sourced_id=str(payload.get("sourcedId", "")),
        # What leaves the fetcher: the tenant's policy applied, before the (one) hash.
        payload=ctx.policy.treat(ctx.spec.entity, payload) if ctx.policy else payload,
        operation=Operation.DELETE if status in DELETE_STATUSES else Operation.UPSERT,
        date_last_modified=parse_utc_datetime(payload.get("dateLastModified")),
        origin=Origin(file=row.file, row=row.number),
        oneroster_version=ctx.version,
        mode=ctx.mode,
        facts=facts_of(ctx, payload, row, first_rows),
    )
