"""Deterministic internal ids: the same (tenant, entity, sourcedId) always gives the same id.

A uuid5 needs no lookup before publishing and survives a replay unchanged.
"""

from __future__ import annotations

import os
import time
from hashlib import sha1
from uuid import UUID

from rostersync_libs.events import EntityType

# A fixed namespace for rostersync; never change it, or every internal id changes.
ROSTERSYNC_NAMESPACE = UUID("5d0c1f4e-8a7b-4f0e-9a51-2f6f3a1e7c11")


_NAMESPACE_BYTES = ROSTERSYNC_NAMESPACE.bytes
# uuid5 = the first 16 bytes of SHA-1(namespace + name) with version 5 and the RFC 4122 variant.
_VERSION_VARIANT_MASK = ((1 << 128) - 1) ^ (0xF << 76 | 0x3 << 62)
_VERSION_VARIANT_BITS = 0x5 << 76 | 0x2 << 62
# The variant nibble (hex digit 16): its top two bits become 10.
_VARIANT_DIGIT = {d: "89ab"[int(d, 16) & 0x3] for d in "0123456789abcdef"}


def internal_id(tenant: str, entity: EntityType, sourced_id: str) -> UUID:
    """``uuid5(ROSTERSYNC_NAMESPACE, "tenant\\x1fentity\\x1fsourcedId")``, computed directly."""
    name = f"{tenant}\x1f{entity.value}\x1f{sourced_id}"
    digest = sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    return UUID(int=int.from_bytes(digest[:16]) & _VERSION_VARIANT_MASK | _VERSION_VARIANT_BITS)


def internal_id_text(tenant: str, entity: EntityType, sourced_id: str) -> str:
    """``str(internal_id(...))`` without building the UUID (references in payloads are text)."""
    name = f"{tenant}\x1f{entity.value}\x1f{sourced_id}"
    h = sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"


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
