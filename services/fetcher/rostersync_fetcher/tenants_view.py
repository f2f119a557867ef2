"""The tenants as the fetcher sees them: the tenants file's and the admin API's, and which of them
run their schedules and inboxes now (not paused, not purged)."""

from __future__ import annotations

import logging

import asyncpg
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.tenant_registry import Registered, all_tenants
from rostersync_libs.tenants import Tenant

from rostersync_fetcher.settings import FetcherSettings

log = logging.getLogger(__name__)


class TenantsView:
    def __init__(self, settings: FetcherSettings, pool: asyncpg.Pool, keys: DataKeys) -> None:
        self._settings = settings
        self._pool = pool
        self._keys = keys
        self._purged_noted: set[str] = set()  # purged tenants already logged (logged once)

    async def registry(self) -> Registered:
        """The tenants file's tenants and the admin API's (tenant_registry.py)."""
        return await all_tenants(self._pool, self._settings.control, self._settings.tenants_file)

    async def live(self) -> list[Tenant] | None:
        """The tenants whose schedules and inboxes run: not paused, not purged (None: the
        tenants file cannot be read)."""
        try:
            registry = await self.registry()
        except (OSError, ValueError) as exc:
            log.error("cannot read tenants file %s: %s", self._settings.tenants_file, exc)
            return None
        tenants = [t for t in registry.tenants.tenants if t.id not in registry.paused]
        if not tenants:
            return tenants
        purged = await self._keys.purged({t.id for t in tenants})
        for tenant_id in purged - self._purged_noted:
            log.warning(
                "tenant %s was purged: not synced (remove it from the tenants file)", tenant_id
            )
        self._purged_noted |= purged
        return [t for t in tenants if t.id not in purged]
