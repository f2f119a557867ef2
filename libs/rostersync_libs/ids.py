"""Deterministic internal ids: the same (tenant, entity, sourcedId) always gives the same id.

A uuid5 needs no lookup before publishing and survives a replay unchanged.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from rostersync_libs.envelope import EntityType

# A fixed namespace for rostersync; never change it, or every internal id changes.
ROSTERSYNC_NAMESPACE = UUID("5d0c1f4e-8a7b-4f0e-9a51-2f6f3a1e7c11")


def internal_id(tenant: str, entity: EntityType, sourced_id: str) -> UUID:
    return uuid5(ROSTERSYNC_NAMESPACE, f"{tenant}\x1f{entity.value}\x1f{sourced_id}")
