"""``rostersync runs cancel TENANT RUN``: stop a run the fetcher is publishing.

The request is a command (``CancelRun``) keyed like the tenant's syncs, so it reaches the fetcher
that took the run; the run then ends ``cancelled`` (aborted markers: nothing is swept). Only a
running run of a configured tenant can be cancelled: anything else is refused, nothing sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

from rostersync_libs.commands import CancelRun
from rostersync_libs.db import create_pool
from rostersync_libs.run_reports.status import RunState, RunStatus
from rostersync_libs.settings import ServiceSettings

from rostersync_cli.operations import (
    RUN_SQL,
    fetch_run,
    login_name,
    send_command,
    tenant_refusal,
)


async def cancel_refusal(
    settings: ServiceSettings, tenants_file: Path, tenant: str, run_id: UUID
) -> str | None:
    """Why this run must not be cancelled (one line), or None when it may be."""
    refused = await tenant_refusal(settings, tenants_file, tenant)
    if refused is not None:
        return refused
    run, _ = await fetch_run(settings, tenant, run_id)
    if run is None:
        return f"no run {run_id} for tenant {tenant}"
    state = RunState.of(run)
    if state.status is not RunStatus.RUNNING:
        return f"run {run_id} of tenant {tenant} is not running (status: {state.status})"
    return None


async def send_cancel(
    settings: ServiceSettings,
    tenant: str,
    run_id: UUID,
    label: str | None = None,
    reason: str | None = None,
) -> CancelRun:
    """Audit the cancel and send it: the fetcher acts only on an audited one (and names the
    audit's actor, the login, as who cancelled); ``label`` only describes."""
    label = label or login_name()
    command = CancelRun(tenant=tenant, run_id=run_id, requested_by=label)
    await send_command(settings, command, label=label, reason=reason)
    return command


async def wait_for_end(
    settings: ServiceSettings, tenant: str, run_id: UUID, timeout: float
) -> RunState | None:
    """The run's state once it is no longer running; None if it still is after ``timeout``."""
    pool = await create_pool(settings, max_size=1)
    try:
        async with asyncio.timeout(timeout):
            while True:
                async with pool.acquire() as conn:
                    run = await conn.fetchrow(RUN_SQL, tenant, run_id)
                state = RunState.of(run)
                if state.status is not RunStatus.RUNNING:
                    return state
                await asyncio.sleep(0.5)
    except TimeoutError:
        return None
    finally:
        await pool.close()
