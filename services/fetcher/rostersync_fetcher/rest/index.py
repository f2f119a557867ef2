"""What a REST run can tell the validator about references (the CSV path's bundle facts).

The fetcher cannot see a whole API at once as it sees a bundle, so it keeps the sourcedIds of the
records it has published in this run (ids only). A reference to a record published earlier in the
run is fine; one into a collection this *full* run has read to its end is ``dangling``; anything
else is ``unresolved`` and the validator looks it up in the tenant's records. References within
the collection being read (org parents, session parents, user agents) are not judged here: their
target may be on a later page. Duplicates are not reported either: offset paging over changing
data can legitimately return a record twice, and the last version wins downstream.
"""

from __future__ import annotations

from typing import Any

from rostersync_libs.events import EntityType, RecordFacts
from rostersync_libs.oneroster.columns import FileSpec


class RunIndex:
    def __init__(self, *, bulk: bool) -> None:
        self._bulk = bulk
        self._ids: dict[EntityType, set[str]] = {}
        self._complete: set[EntityType] = set()
        self._reading: set[EntityType] = set()

    def reading(self, entities: list[EntityType]) -> None:
        self._reading = set(entities)

    def add(self, entity: EntityType, sourced_id: str) -> None:
        self._ids.setdefault(entity, set()).add(sourced_id)

    def finish(self, entities: list[EntityType]) -> None:
        """The collection was read to its end."""
        if self._bulk:
            self._complete.update(entities)
        self._reading = set()

    def facts(self, spec: FileSpec, payload: dict[str, Any]) -> RecordFacts | None:
        dangling: dict[str, list[str]] = {}
        unresolved: dict[str, list[str]] = {}
        # Reference columns, and demographics' sourcedId (the user's): FileSpec.checked_references.
        for column, target in spec.checked_references:
            value = payload.get(column.name)
            if value is None or target in self._reading:
                continue
            known = self._ids.get(target, set())
            for ref in value if isinstance(value, list) else [value]:
                if ref in known:
                    continue
                missing = dangling if target in self._complete else unresolved
                missing.setdefault(column.name, []).append(ref)
        if not (dangling or unresolved):
            return None
        return RecordFacts(dangling=dangling, unresolved=unresolved)
