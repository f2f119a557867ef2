"""Mapping a validated record to the application's model.

Every record gets its internal id (see :mod:`rostersync_mapper.resolver`: the identity map, else
the default uuid5 over (tenant, entity, sourcedId)). References resolve through the same identity
map: every reference column ``xSourcedId`` gains ``xInternalId`` (``xSourcedIds`` gains
``xInternalIds``). The payload also gains the canonical model (:mod:`rostersync_mapper.canonical`).
A ``seen`` record (rejected upstream) keeps its payload untouched and only gains its id.
"""

from __future__ import annotations

from typing import Any

import msgspec
from rostersync_libs.events import EntityType, Operation, RecordEvent
from rostersync_libs.oneroster.columns import Column, resolved_key, spec_for
from rostersync_libs.stage import Outcome

from rostersync_mapper.canonical import add_canonical_fields
from rostersync_mapper.identity_map import IdentityMap
from rostersync_mapper.resolver import Resolution

REKEYED_FROM = "_rekeyedFrom"


def _resolve(ids: IdentityMap, tenant: str, column: Column, value: Any) -> Any:
    target = column.target
    assert target is not None
    if isinstance(value, list):
        return [ids.internal_id_text(tenant, target, str(v)) for v in value]
    return ids.internal_id_text(tenant, target, str(value))


def map_record(event: RecordEvent, resolution: Resolution, ids: IdentityMap) -> Outcome:
    """The event with its internal id, resolved references and canonical fields (one copy of
    the record, its payload's)."""
    if event.operation is Operation.SEEN:
        return Outcome(
            msgspec.structs.replace(event, internal_id=resolution.internal_id),
            resolution.findings,
        )
    spec = spec_for(event.oneroster_version or "1.1", event.entity)
    payload = dict(event.payload)
    for column in spec.references:
        if column.name in payload:
            payload[resolved_key(column.name)] = _resolve(
                ids, event.tenant, column, payload[column.name]
            )
    # demographics.sourcedId is the user's sourcedId: link it to the user's internal id.
    if event.entity is EntityType.DEMOGRAPHIC:
        payload["userInternalId"] = ids.internal_id_text(
            event.tenant, EntityType.USER, event.sourced_id
        )
    add_canonical_fields(event.entity, payload)
    if resolution.rekeyed_from is not None and event.operation is Operation.UPSERT:
        # Every time, not only when decided: a re-send after a crash must still move the row.
        payload[REKEYED_FROM] = resolution.rekeyed_from
    return Outcome(
        msgspec.structs.replace(event, internal_id=resolution.internal_id, payload=payload),
        resolution.findings,
    )


def map_event(event: RecordEvent) -> Outcome:
    """A record mapped without identity decisions: default ids only (pure, for tests and tools)."""
    ids = IdentityMap()
    resolution = Resolution(ids.internal_id(event.tenant, event.entity, event.sourced_id))
    return map_record(event, resolution, ids)
