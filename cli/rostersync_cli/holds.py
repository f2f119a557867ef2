"""Safety holds: runs whose removals exceeded the tenant's threshold, and the operator's decision.

A decision is a command on the retained command topic (not a database update), so the writer
applies it in order and a replay takes the same decision again.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson
from rostersync_libs.commands import HoldDecision
from rostersync_libs.db import create_pool
from rostersync_libs.kafka import ensure_topics, make_producer
from rostersync_libs.settings import ServiceSettings

from rostersync_cli.reports import format_table

LIST_SQL = """
SELECT tenant_id, run_id, status, numbers, threshold, created_at, decided_at
FROM run_outcomes
WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2 OR status = 'held')
ORDER BY created_at DESC LIMIT 50
"""


async def list_holds(conn: asyncpg.Connection, tenant: str | None, everything: bool) -> list[Any]:
    return list(await conn.fetch(LIST_SQL, tenant, everything))


def describe_numbers(numbers: dict[str, dict[str, Any]]) -> str:
    return ", ".join(
        f"{entity}: {n['archive']} of {n['active']} ({n['share']:.0%})"
        for entity, n in numbers.items()
    )


async def print_holds(settings: ServiceSettings, tenant: str | None, everything: bool) -> None:
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            rows = await list_holds(conn, tenant, everything)
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


async def decide(
    settings: ServiceSettings, tenant: str, run_id: UUID, approve: bool
) -> HoldDecision:
    """Send the decision to the writer (through the command topic)."""
    await ensure_topics(settings)
    decision = HoldDecision(tenant=tenant, run_id=run_id, approve=approve)
    producer = make_producer(settings, "rostersync-cli")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topics.commands, decision.model_dump_json().encode(), key=decision.key()
        )
    finally:
        await producer.stop()
    return decision
