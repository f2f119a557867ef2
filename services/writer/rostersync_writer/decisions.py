"""Operators' decisions on held runs, acted on only when the operator audit vouches for them.

A ``HoldDecision`` on the command topic is a message: anyone able to write the topic could send
one approving a held wipe. So the writer looks up the decision's command id in the operator audit
(``settings.control``, written by the CLI before it sent the decision) and applies it only when
the row is there and agrees on tenant, run and approve/discard. Who decided, and when, are the
audit's (the login PostgreSQL authenticated), never the message's ``decided_by``.

A decision that does not agree is refused: nothing is recorded as decided, the run stays as it
was (held, or not yet complete: ``rostersync holds`` still lists it), and the refusal is kept in
``refused_commands`` (with its reason) and logged once, without the message's contents.
"""

from __future__ import annotations

import logging
from uuid import UUID

import asyncpg
import orjson
from rostersync_libs import audit
from rostersync_libs.commands import HoldDecision
from rostersync_libs.events import EntityType

from rostersync_writer.changes import attribute
from rostersync_writer.lifecycle import archive

log = logging.getLogger(__name__)

REFUSED_SQL = (
    "INSERT INTO refused_commands (command_id, tenant_id, run_id, command, reason)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING command_id"
)
DECIDED_SQL = (
    "INSERT INTO hold_decisions (tenant_id, run_id, approve, decided_by, decided_at, command_id)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, run_id) DO NOTHING"
)
HELD_SQL = (
    "SELECT source, bulk_entities FROM run_outcomes"
    " WHERE tenant_id = $1 AND run_id = $2 AND status = 'held'"
)


async def refuse(conn: asyncpg.Connection, command: HoldDecision, reason: audit.Refusal) -> None:
    """Keep the refusal where operators look; log it the first time only (a redelivery, or the
    batch applied again after a data error, finds it already kept)."""
    kept = await conn.fetchval(
        REFUSED_SQL, command.command_id, command.tenant, command.run_id, command.command, reason
    )
    if kept is not None:
        log.warning(
            "tenant %s run %s: hold decision %s refused (%s): not acted on",
            command.tenant,
            command.run_id,
            command.command_id,
            reason,
        )


async def apply_decisions(
    conn: asyncpg.Connection, control: str, decisions: list[HoldDecision]
) -> list[tuple[str, UUID, str]]:
    """Record the audited decisions and carry out those whose run is held."""
    done = []
    for d in decisions:
        entry = await audit.lookup(conn, control, d.command_id)
        refused = audit.refusal(entry, d)
        if refused is not None or entry is None:
            await refuse(conn, d, refused or "not_audited")
            continue
        await conn.execute(
            DECIDED_SQL, d.tenant, d.run_id, d.approve, entry.actor, entry.recorded_at, d.command_id
        )
        held = await conn.fetchrow(HELD_SQL, d.tenant, d.run_id)
        if held is None:
            continue
        if d.approve:
            bulk = [EntityType(e) for e in orjson.loads(held["bulk_entities"])]
            await attribute(conn, d.run_id)  # its removals are the held run's changes
            await archive(conn, d.tenant, d.run_id, held["source"], bulk)
        else:
            await conn.execute(
                "DELETE FROM pending_archives WHERE tenant_id = $1 AND run_id = $2",
                d.tenant,
                d.run_id,
            )
        status = "approved" if d.approve else "discarded"
        await conn.execute(
            "UPDATE run_outcomes SET status = $3, decided_at = $4"
            " WHERE tenant_id = $1 AND run_id = $2",
            d.tenant, d.run_id, status, entry.recorded_at,
        )  # fmt: skip
        done.append((d.tenant, d.run_id, status))
    return done
