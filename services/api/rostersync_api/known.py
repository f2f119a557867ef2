"""The tenant a request names, as the deployment knows it (tenants file and API), or 404."""

from __future__ import annotations

from rostersync_libs.tenant_registry import all_tenants
from rostersync_libs.tenants import Tenant

from rostersync_api.auth import Principal
from rostersync_api.errors import not_found
from rostersync_api.state import ApiState


async def known_tenant(state: ApiState, who: Principal, tenant_id: str) -> Tenant:
    who.check_tenant(tenant_id)
    settings = state.settings
    registry = await all_tenants(state.pool, settings.control, settings.tenants_file)
    try:
        return registry.tenants.get(tenant_id)
    except KeyError:
        raise not_found(f"tenant {tenant_id}") from None
