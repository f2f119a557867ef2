"""Deterministic mapping of OneRoster sourcedIds to internal ids.

Ids are uuid5 over (tenant, entity, sourcedId): no lookup, and a replay gives the same ids.
References are resolved the same way, so a reference needs no state either: every reference
column ``xSourcedId`` gains ``xInternalId`` (``xSourcedIds`` gains ``xInternalIds``).
"""

from __future__ import annotations

from typing import Any

from rostersync_libs.envelope import EntityType, Envelope
from rostersync_libs.ids import internal_id
from rostersync_libs.oneroster.columns import Column, spec_for
from rostersync_libs.stage import Outcome


def resolved_key(column: str) -> str:
    """``orgSourcedIds`` → ``orgInternalIds``, ``parentSourcedId`` → ``parentInternalId``."""
    return column.replace("SourcedId", "InternalId")


def _resolve(tenant: str, column: Column, value: Any) -> Any:
    target = column.target
    assert target is not None
    if isinstance(value, list):
        return [str(internal_id(tenant, target, str(v))) for v in value]
    return str(internal_id(tenant, target, str(value)))


def map_event(event: Envelope) -> Outcome:
    """The mapper's handler: the event with its internal id and resolved references."""
    assert event.entity is not None
    assert event.sourced_id is not None
    spec = spec_for(event.oneroster_version or "1.1", event.entity)
    payload = dict(event.payload)
    for column in spec.references:
        if column.name in payload:
            payload[resolved_key(column.name)] = _resolve(
                event.tenant, column, payload[column.name]
            )
    # demographics.sourcedId is the user's sourcedId: link it to the user's internal id.
    if event.entity is EntityType.DEMOGRAPHIC:
        payload["userInternalId"] = str(
            internal_id(event.tenant, EntityType.USER, event.sourced_id)
        )
    return Outcome(
        forward=event.model_copy(
            update={
                "internal_id": internal_id(event.tenant, event.entity, event.sourced_id),
                "payload": payload,
            }
        )
    )
