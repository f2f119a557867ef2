"""The mapper's stage handler: a batch of records → their identities → mapped records."""

from __future__ import annotations

import logging
from collections import Counter

from rostersync_libs.events import RecordEvent
from rostersync_libs.identities import IdentityDecision
from rostersync_libs.stage import Outcome, StageHandler

from rostersync_mapper.identity_map import IdentityMap
from rostersync_mapper.mapping import map_record
from rostersync_mapper.resolver import IdentityResolver
from rostersync_mapper.store import IdentityStore

log = logging.getLogger(__name__)


class MapperHandler(StageHandler):
    """Resolves the batch's identities, publishes the new decisions (acknowledged before any
    record that depends on them goes on), then maps every record."""

    def __init__(self, store: IdentityStore, resolver: IdentityResolver) -> None:
        self._store = store
        self._resolver = resolver

    @property
    def identity_map(self) -> IdentityMap:
        return self._store.map

    async def handle(self, events: list[RecordEvent]) -> list[Outcome]:
        if not events:
            return []
        await self._store.poll()
        resolutions, decided = await self._resolver.resolve(events)
        if decided:
            await self._store.publish(decided)
            _log_decisions(decided)
        return [
            map_record(event, resolution, self._store.map)
            for event, resolution in zip(events, resolutions, strict=True)
        ]


def _log_decisions(decided: list[IdentityDecision]) -> None:
    counts = Counter((d.tenant, d.entity.value, d.reason.value) for d in decided)
    for (tenant, entity, reason), n in sorted(counts.items()):
        log.info("tenant %s: %d %s identity decision(s) (%s)", tenant, n, entity, reason)
