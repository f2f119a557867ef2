"""The ``--json`` variants of sync, runs, report and holds (rostersync_libs.run_reports.documents
builds the documents, shared with the admin API)."""

from __future__ import annotations

import sys
from functools import partial
from typing import Any
from uuid import UUID

from rostersync_libs.commands import SyncRequested
from rostersync_libs.run_reports import documents, queries
from rostersync_libs.run_reports.status import EXIT_NOT_FINISHED, EXIT_REFUSED

from rostersync_cli.operations import on_connection
from rostersync_cli.settings import CliSettings
from rostersync_cli.text_tables import emit


async def report(settings: CliSettings, tenant: str, run_id: UUID, limit: int) -> int:
    document = await on_connection(
        settings, partial(documents.run_document, tenant=tenant, run_id=run_id, limit=limit)
    )
    if document is None:
        print(f"rostersync: no run {run_id} for tenant {tenant}", file=sys.stderr)
        return EXIT_REFUSED
    emit(document)
    return int(document["exit_code"])


async def wait(settings: CliSettings, command: SyncRequested, timeout: float) -> int:
    ended = await on_connection(
        settings,
        partial(queries.wait_for_run, tenant=command.tenant, run_id=command.run_id,
                timeout=timeout),
    )  # fmt: skip
    if ended is None:
        emit(
            {"tenant": command.tenant, "run_id": str(command.run_id), "status": "running",
             "detail": f"not finished within {timeout:g} s", "exit_code": EXIT_NOT_FINISHED}
        )  # fmt: skip
        return EXIT_NOT_FINISHED
    return await report(settings, command.tenant, command.run_id, limit=5)


async def runs(settings: CliSettings, tenant: str | None, limit: int) -> dict[str, Any]:
    return await on_connection(
        settings, partial(documents.runs_document, tenant=tenant, limit=limit)
    )


async def holds(settings: CliSettings, tenant: str | None, everything: bool) -> dict[str, Any]:
    return await on_connection(
        settings, partial(documents.holds_document, tenant=tenant, everything=everything)
    )
