"""Safety holds: runs whose removals exceeded the tenant's threshold, and the operator's decision.

A decision is a command on the retained command topic (not a database update), so the writer
applies it in order and a replay takes the same decision again.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import orjson
from rostersync_libs.commands import HoldDecision
from rostersync_libs.db import create_pool
from rostersync_libs.run_reports import queries
from rostersync_libs.run_reports.status import (
    RunState,
    RunStatus,
    decision_text,
    describe_numbers,
)
from rostersync_libs.settings import ServiceSettings

from rostersync_cli.operations import fetch_run, login_name, send_command, tenant_refusal
from rostersync_cli.text_tables import format_table


async def print_holds(settings: ServiceSettings, tenant: str | None, everything: bool) -> None:
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            rows = await queries.list_holds(conn, tenant, everything)
    finally:
        await pool.close()
    if not rows:
        print("no held runs" if not everything else "no run outcomes yet")
        return
    print(
        format_table(
            ["run", "tenant", "status", "would archive", "threshold"],
            [
                [str(r["run_id"]), r["tenant_id"], r["status"],
                 describe_numbers(orjson.loads(r["numbers"])), f"{r['threshold']:.0%}"]
                for r in rows
            ],
        )
    )  # fmt: skip


DECISION_SQL = """
SELECT approve, decided_by, decided_at FROM hold_decisions WHERE tenant_id = $1 AND run_id = $2
"""


async def refusal(
    settings: ServiceSettings, tenants_file: Path, tenant: str, run_id: UUID
) -> str | None:
    """Why a decision on this run must not be sent (one line), or None when it may be.

    Only a run the writer holds, of a configured tenant, not decided before, may be decided.
    Two operators deciding at the same moment both pass; the writer keeps the first decision.
    """
    refused = await tenant_refusal(settings, tenants_file, tenant)
    if refused is not None:
        return refused
    run, earlier = await fetch_run(settings, tenant, run_id, DECISION_SQL)
    if earlier is not None:
        verb = "approved" if earlier["approve"] else "discarded"
        by = decision_text(earlier["decided_by"], earlier["decided_at"])
        return f"run {run_id} of tenant {tenant} was already {verb}{by}"
    if run is None:
        return f"no run {run_id} for tenant {tenant}"
    state = RunState.of(run)
    if state.status is not RunStatus.HELD:
        return f"run {run_id} of tenant {tenant} is not held (status: {state.status})"
    return None


async def decide(
    settings: ServiceSettings,
    tenant: str,
    run_id: UUID,
    approve: bool,
    label: str | None = None,
    reason: str | None = None,
) -> HoldDecision:
    """Audit the decision and send it to the writer (through the command topic), unchecked: see
    ``refusal``. The writer records the audit's actor (the login), ``label`` only describes."""
    label = label or login_name()
    decision = HoldDecision(tenant=tenant, run_id=run_id, approve=approve, decided_by=label)
    await send_command(settings, decision, label=label, reason=reason)
    return decision
