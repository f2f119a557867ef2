"""Each tenant's match rules, from the tenants file and the admin API, kept current.

Read at start and again every ``refresh_seconds`` (tenant_registry.py): a tenant added or changed
through the API gets its rules without a restart. An unknown tenant gets the defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from rostersync_libs.tenant_registry import all_tenants
from rostersync_libs.tenants import MatchRules

from rostersync_mapper.settings import MapperSettings

log = logging.getLogger(__name__)
DEFAULT = MatchRules()


class MatchRulesBook:
    def __init__(self, pool: asyncpg.Pool, settings: MapperSettings) -> None:
        self._pool, self._settings = pool, settings
        self._rules: dict[str, MatchRules] = {}

    def __call__(self, tenant: str) -> MatchRules:
        return self._rules.get(tenant, DEFAULT)

    async def refresh(self) -> None:
        settings = self._settings
        try:
            registry = await all_tenants(self._pool, settings.control, settings.tenants_file)
        except (OSError, ValueError) as exc:  # keep the last good reading
            log.error("cannot read tenants file %s: %s", settings.tenants_file, type(exc).__name__)
            return
        self._rules = {tenant.id: tenant.matching for tenant in registry.tenants.tenants}

    async def keep_current(self, stop: asyncio.Event, refresh_seconds: float = 30.0) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), refresh_seconds)
            if not stop.is_set():
                await self.refresh()
