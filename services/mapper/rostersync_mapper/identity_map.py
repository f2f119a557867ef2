"""The identity map: every identity decision of every tenant, in memory.

It holds exceptions only (crosswalk entries, re-keys, matches), so it is small; everything else
has its default uuid5 id. It is rebuilt from the compacted identities topic at start.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from uuid import UUID

from rostersync_libs.events import EntityType
from rostersync_libs.identities import IdentityDecision, Key
from rostersync_libs.ids import internal_id, internal_id_text

IdKey = tuple[str, str, UUID]  # tenant, entity, internal id

# The default ids of references, as the text a payload holds: the same orgs, classes, courses and
# users are referenced thousands of times in a run. Least recently used entries go first, so the
# cache stays at most this size (~25 MB) however large the district, and a mapper keeps the ids of
# the references it meets again and again.
DEFAULT_ID_CACHE_SIZE = 100_000
default_id_text = lru_cache(maxsize=DEFAULT_ID_CACHE_SIZE)(internal_id_text)


class IdentityMap:
    """(tenant, entity, sourcedId) → decision, and which sourcedIds hold each internal id."""

    def __init__(self) -> None:
        self._by_key: dict[Key, IdentityDecision] = {}
        self._holders: defaultdict[IdKey, set[str]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: Key) -> bool:
        return key in self._by_key

    def get(self, key: Key) -> IdentityDecision | None:
        return self._by_key.get(key)

    def apply(self, decision: IdentityDecision) -> None:
        """The latest decision of a record replaces the one before (as compaction does)."""
        self.withdraw(decision.map_key)
        self._by_key[decision.map_key] = decision
        self._holders[(decision.tenant, decision.entity.value, decision.internal_id)].add(
            decision.sourced_id
        )

    def withdraw(self, key: Key) -> None:
        old = self._by_key.pop(key, None)
        if old is None:
            return
        id_key = (old.tenant, old.entity.value, old.internal_id)
        holders = self._holders[id_key]
        holders.discard(old.sourced_id)
        if not holders:
            del self._holders[id_key]

    def holders(self, tenant: str, entity: str, iid: UUID) -> set[str]:
        """The sourcedIds a decision gave this internal id to."""
        return set(self._holders.get((tenant, entity, iid), ()))

    def internal_id(self, tenant: str, entity: EntityType, sourced_id: str) -> UUID:
        """The record's internal id: its decision's, else the default uuid5."""
        # An EntityType is a str equal to (and hashing as) its value: it finds the map's keys.
        decision = self._by_key.get((tenant, entity, sourced_id))
        if decision is not None:
            return decision.internal_id
        return internal_id(tenant, entity, sourced_id)

    def internal_id_text(self, tenant: str, entity: EntityType, sourced_id: str) -> str:
        """``str(self.internal_id(...))``; default ids come from a bounded per-process cache."""
        decision = self._by_key.get((tenant, entity, sourced_id))
        if decision is not None:
            return str(decision.internal_id)
        return default_id_text(tenant, entity, sourced_id)

    def decisions(self, tenant: str | None = None) -> list[IdentityDecision]:
        return [d for d in self._by_key.values() if tenant is None or d.tenant == tenant]
