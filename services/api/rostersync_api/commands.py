"""Commands the API sends for an operator: audited twice, then put on the command topic.

The operator audit (``rostersync_libs.audit``: the row the fetcher and the writer check a command
against; its actor is the API's database login, its label the token) and the API's own audit
(the token, in the same transaction), then the command, sealed, acknowledged by Kafka.
"""

from __future__ import annotations

import asyncpg
from rostersync_libs import audit as operator_audit
from rostersync_libs.audit import AuditedCommand
from rostersync_libs.commands import put_command

from rostersync_api import audit
from rostersync_api.auth import Principal
from rostersync_api.state import ApiState


async def audit_command(
    conn: asyncpg.Connection,
    state: ApiState,
    principal: Principal,
    command: AuditedCommand,
    *,
    target: str,
    reason: str | None = None,
) -> None:
    """Both audit rows, in the caller's transaction: commit it before ``publish``, or the
    writer may read the command before its audit row exists (and refuse it)."""
    label = f"api token {principal.name} ({principal.token_id})"
    control = state.settings.control
    async with conn.transaction():
        entry = await operator_audit.record(conn, control, command, label=label, reason=reason)
        await audit.record(conn, control, principal, tenant=command.tenant, action=entry.action,
                           target=target, after={"command_id": str(command.command_id),
                                                 "run_id": str(command.run_id), "reason": reason})  # fmt: skip


async def publish(state: ApiState, command: AuditedCommand) -> None:
    """The command on the command topic, sealed, acknowledged."""
    await put_command(state.producer, state.settings.topics.commands, command)


async def send(
    state: ApiState,
    principal: Principal,
    command: AuditedCommand,
    *,
    target: str,
    reason: str | None = None,
) -> None:
    """Audit (committed), then publish."""
    async with state.pool.acquire() as conn:
        await audit_command(conn, state, principal, command, target=target, reason=reason)
    await publish(state, command)
