"""Deterministic internal ids: the same (tenant, entity, sourcedId) always gives the same id.

A uuid5 needs no lookup before publishing and survives a replay unchanged.
"""

from __future__ import annotations

import os
import time
from uuid import UUID, uuid5

from rostersync_libs.envelope import EntityType

# A fixed namespace for rostersync; never change it, or every internal id changes.
ROSTERSYNC_NAMESPACE = UUID("5d0c1f4e-8a7b-4f0e-9a51-2f6f3a1e7c11")


def internal_id(tenant: str, entity: EntityType, sourced_id: str) -> UUID:
    return uuid5(ROSTERSYNC_NAMESPACE, f"{tenant}\x1f{entity.value}\x1f{sourced_id}")


def new_run_id() -> UUID:
    """A time-ordered run id (UUID version 7, RFC 9562): later runs compare greater.

    The writer relies on this order: a bulk run archives what was last seen in an *earlier* run,
    which stays true when a replay reads partitions at different speeds.
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    return UUID(int=value)
