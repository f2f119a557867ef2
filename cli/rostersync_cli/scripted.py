"""The ``--json`` variants of sync, runs, report and holds (documents.py builds the documents)."""

from __future__ import annotations

import sys
from typing import Any
from uuid import UUID

from rostersync_libs.commands import SyncRequested
from rostersync_libs.db import create_pool

from rostersync_cli import documents, reports
from rostersync_cli.settings import CliSettings
from rostersync_cli.status import EXIT_NOT_FINISHED, EXIT_REFUSED


async def report(settings: CliSettings, tenant: str, run_id: UUID, limit: int) -> int:
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            document = await documents.run_document(conn, tenant, run_id, limit)
    finally:
        await pool.close()
    if document is None:
        print(f"rostersync: no run {run_id} for tenant {tenant}", file=sys.stderr)
        return EXIT_REFUSED
    documents.emit(document)
    return int(document["exit_code"])


async def wait(settings: CliSettings, command: SyncRequested, timeout: float) -> int:
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            ended = await reports.wait_for_run(conn, command.tenant, command.run_id, timeout)
    finally:
        await pool.close()
    if ended is None:
        documents.emit(
            {"tenant": command.tenant, "run_id": str(command.run_id), "status": "running",
             "detail": f"not finished within {timeout:g} s", "exit_code": EXIT_NOT_FINISHED}
        )  # fmt: skip
        return EXIT_NOT_FINISHED
    return await report(settings, command.tenant, command.run_id, limit=5)


async def runs(settings: CliSettings, tenant: str | None, limit: int) -> dict[str, Any]:
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await documents.runs_document(conn, tenant, limit)
    finally:
        await pool.close()


async def holds(settings: CliSettings, tenant: str | None, everything: bool) -> dict[str, Any]:
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await documents.holds_document(conn, tenant, everything)
    finally:
        await pool.close()
