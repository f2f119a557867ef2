"""The safety threshold the writer applies: never looser than the tenants file says.

A run's end marker carries the tenant's threshold as the fetcher read it (so a replay decides as
live did), but a marker is a message: anyone able to write the topic could send one with a
threshold of 1.0 and wipe a district without a hold. So the writer applies the stricter of the
marker's values and the tenant's own — the admin API's configuration of it, else the tenants
file's, else the defaults: a message can tighten the hold, never loosen it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from rostersync_libs.events import RunMarker
from rostersync_libs.tenant_registry import registered
from rostersync_libs.tenants import Tenant, load_tenants

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = Tenant.model_fields["hold_threshold"].default
DEFAULT_MIN_RECORDS = Tenant.model_fields["hold_min_records"].default


@dataclass(frozen=True)
class Hold:
    """When a run's removals wait for an operator."""

    threshold: float
    min_records: int


class SafetyLimits:
    """The tenants' configured holds, read again whenever the tenants file changes."""

    def __init__(self, tenants_file: Path | None, control: str | None = None) -> None:
        self._file = tenants_file
        self._control = control  # the admin API's tenants (tenant_registry.py), when given
        self._stamp: tuple[int, int] | None = None
        self._holds: dict[str, Hold] = {}

    async def hold_in(self, conn: asyncpg.Connection, tenant: str, marker: RunMarker) -> Hold:
        """``hold_for``, with the admin API's configuration of the tenant first (it wins over
        the tenants file's, as everywhere: tenant_registry.py), read in the writer's transaction."""
        configured = None
        if self._control is not None:
            for api_tenant, _ in await registered(conn, self._control):
                if api_tenant.id == tenant:
                    configured = Hold(api_tenant.hold_threshold, api_tenant.hold_min_records)
        return self.hold_for(tenant, marker, configured)

    def hold_for(self, tenant: str, marker: RunMarker, configured: Hold | None = None) -> Hold:
        """The stricter of the marker's hold and the tenant's (``configured``, else the tenants
        file's, else the defaults)."""
        configured = configured or self._configured().get(
            tenant, Hold(DEFAULT_THRESHOLD, DEFAULT_MIN_RECORDS)
        )
        hold = Hold(
            min(marker.hold_threshold, configured.threshold),
            min(marker.hold_min_records, configured.min_records),
        )
        if hold != Hold(marker.hold_threshold, marker.hold_min_records):
            log.warning(
                "tenant %s: a run's end asked for a looser hold than the tenant's"
                " (threshold %s, min records %s): the tenant's applies",
                tenant,
                marker.hold_threshold,
                marker.hold_min_records,
            )
        return hold

    def _configured(self) -> dict[str, Hold]:
        if self._file is None:
            return {}
        try:
            stat = self._file.stat()
        except OSError:
            return {}  # no file: the defaults
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                tenants = load_tenants(self._file).tenants
            except (OSError, ValueError) as exc:  # keep the last good reading
                log.error("cannot read tenants file %s: %s", self._file, type(exc).__name__)
                return self._holds
            self._holds = {t.id: Hold(t.hold_threshold, t.hold_min_records) for t in tenants}
            self._stamp = stamp
        return self._holds
