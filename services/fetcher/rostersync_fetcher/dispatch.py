"""Sync commands to source drivers: the command names a tenant and a source, the source's
``kind`` names the driver (sources/registry.py).

A command that cannot start (an unknown tenant or source, a kind no driver serves, ``--bundle``
for a source that takes none, an unreadable tenants file) is logged and dropped: the other
tenants are still served.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from rostersync_libs.commands import SyncRequested
from rostersync_libs.tenant_registry import Registered

from rostersync_fetcher.sources.driver import SourceDriver

log = logging.getLogger(__name__)


class CommandDispatcher:
    def __init__(
        self,
        registry: Callable[[], Awaitable[Registered]],
        drivers: Mapping[str, SourceDriver[Any]],
    ) -> None:
        self._registry = registry
        self._drivers = drivers

    async def __call__(self, command: SyncRequested) -> None:
        try:
            tenant = (await self._registry()).tenants.get(command.tenant)
            source = tenant.find_source(command.source)
            found = self._drivers.get(source.kind)
            if found is None:
                raise ValueError(f"source {source.id}: no driver for kind {source.kind!r}")
            if command.bundle is not None and not found.takes_bundle:
                raise ValueError(f"source {source.id} is not a csv source: no --bundle")
        except (KeyError, OSError, ValueError) as exc:
            # The run cannot start; say why, and keep serving other tenants.
            log.error("tenant %s: sync %s refused: %s", command.tenant, command.run_id, exc)
            return
        await found.sync(tenant, source, command)
