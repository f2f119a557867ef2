"""Deterministic mapping of OneRoster sourcedIds to internal ids.

Ids are uuid5 over (tenant, entity, sourcedId): no lookup, and a replay gives the same ids.
References are resolved the same way, so a reference needs no state either.
"""

from __future__ import annotations

from typing import Any

from rostersync_libs.envelope import EntityType, Envelope
from rostersync_libs.ids import internal_id
from rostersync_libs.stage import Rejected

# column holding sourcedIds → (entity they point at, key of the resolved ids in the payload)
REFERENCES: dict[str, tuple[EntityType, str]] = {
    "parentSourcedId": (EntityType.ORG, "parentInternalId"),
    "orgSourcedIds": (EntityType.ORG, "orgInternalIds"),
    "agentSourcedIds": (EntityType.USER, "agentInternalIds"),
}


def _resolve(tenant: str, entity: EntityType, value: Any) -> Any:
    if isinstance(value, list):
        return [str(internal_id(tenant, entity, str(v))) for v in value]
    return str(internal_id(tenant, entity, str(value)))


def map_event(event: Envelope) -> Envelope | Rejected:
    """The mapper's handler: the event with its internal id and resolved references."""
    assert event.entity is not None
    assert event.sourced_id is not None
    payload = dict(event.payload)
    for column, (target, key) in REFERENCES.items():
        if column in payload:
            payload[key] = _resolve(event.tenant, target, payload[column])
    return event.model_copy(
        update={
            "internal_id": internal_id(event.tenant, event.entity, event.sourced_id),
            "payload": payload,
        }
    )
