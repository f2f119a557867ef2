"""The operator audit: who sent a command, in PostgreSQL's word, not the message's.

The CLI writes one ``operator_audit`` row per command, under the command's id, *before* the
command goes on Kafka. The server stamps the row with the login the connection authenticated
(``session_user``) and its own clock; the row can never be changed or removed (a trigger refuses
UPDATE, DELETE and TRUNCATE, for the owner too). A service that acts on a command read from the
topic (the writer on a hold decision, the fetcher on a cancel) first looks its row up: no row, or
one about another tenant, run or action, and the command is refused. So a forged command on the
topic does nothing, and the name kept with a decision is the audit's, never the message's.

The table is a control table: it is read schema-qualified in ``settings.control`` (a replay into
a fresh schema reads the live schema's audit), never through the search path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from rostersync_libs.commands import CancelRun, HoldDecision, SyncRequested

AuditedCommand = SyncRequested | HoldDecision | CancelRun
AuditAction = Literal["sync", "cancel", "hold_approve", "hold_discard"]
# Why a command read from the topic was not acted on (refused_commands.reason).
Refusal = Literal["not_audited", "tenant_differs", "run_differs", "action_differs"]


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit: what was asked, and who asked (the authenticated login)."""

    command_id: UUID
    tenant: str
    run_id: UUID
    action: AuditAction
    actor: str
    label: str | None
    recorded_at: datetime


def action_of(command: AuditedCommand) -> AuditAction:
    if isinstance(command, SyncRequested):
        return "sync"
    if isinstance(command, CancelRun):
        return "cancel"
    return "hold_approve" if command.approve else "hold_discard"


def refusal(entry: AuditEntry | None, command: AuditedCommand) -> Refusal | None:
    """Why ``command`` does not agree with its audit row (None: it does, act on it)."""
    if entry is None:
        return "not_audited"
    if entry.tenant != command.tenant:
        return "tenant_differs"
    if entry.run_id != command.run_id:
        return "run_differs"
    if entry.action != action_of(command):
        return "action_differs"
    return None


def _table(control: str) -> str:
    # ``control`` is validated by the settings (a plain lower-case identifier).
    return f'"{control}".operator_audit'


async def record(
    conn: asyncpg.Connection,
    control: str,
    command: AuditedCommand,
    *,
    label: str | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Write the command's audit row (before sending it); returns it as the server stamped it."""
    row = await conn.fetchrow(
        f"INSERT INTO {_table(control)} (command_id, tenant_id, run_id, action, actor, label,"
        " reason, recorded_at) VALUES ($1, $2, $3, $4, '', $5, $6, now()) RETURNING *",
        command.command_id,
        command.tenant,
        command.run_id,
        action_of(command),
        label,
        reason,
    )
    assert row is not None
    return _entry(row)


async def lookup(conn: asyncpg.Connection, control: str, command_id: UUID) -> AuditEntry | None:
    row = await conn.fetchrow(f"SELECT * FROM {_table(control)} WHERE command_id = $1", command_id)
    return None if row is None else _entry(row)


def _entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        command_id=row["command_id"],
        tenant=row["tenant_id"],
        run_id=row["run_id"],
        action=row["action"],
        actor=row["actor"],
        label=row["label"],
        recorded_at=row["recorded_at"],
    )
