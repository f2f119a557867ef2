"""One honest status per run, from the writer's two tables, and one exit code per status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from rostersync_libs.run_reports.status import EXIT_CODES, EXIT_REFUSED, RunState, RunStatus

WHEN = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
NUMBERS = orjson.dumps({"users": {"active": 200, "archive": 60, "share": 0.3}}).decode()


def row(run_status: str, outcome: str | None = None, **more: Any) -> dict[str, Any]:
    return {
        "run_status": run_status,
        "fetch_error": None,
        "outcome": outcome,
        "outcome_numbers": NUMBERS if outcome else None,
        "outcome_threshold": 0.1 if outcome else None,
        "decision_approve": None,
        "decided_by": None,
        "decided_at": None,
    } | more


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (row("running"), RunState(RunStatus.RUNNING)),
        (row("completed", "applied"), RunState(RunStatus.COMPLETED)),
        (row("completed"), RunState(RunStatus.COMPLETED)),  # a run from before safety holds
        (
            row("completed", "held"),
            RunState(
                RunStatus.HELD, "would archive users: 60 of 200 (30%), over the threshold of 10%"
            ),
        ),
        (
            row("completed", "approved", decided_by="alice", decided_at=WHEN),
            RunState(RunStatus.COMPLETED, "removals approved by alice at 2026-03-01 08:30:00 UTC"),
        ),
        (
            row("completed", "discarded", decided_by="bob", decided_at=WHEN),
            RunState(RunStatus.DISCARDED, "removals discarded by bob at 2026-03-01 08:30:00 UTC"),
        ),
        (
            row("failed", fetch_error="bundle: neither a folder nor a zip file"),
            RunState(RunStatus.FAILED, "bundle: neither a folder nor a zip file"),
        ),
        (row("failed"), RunState(RunStatus.FAILED, "no reason recorded")),
    ],
)
def test_the_status_an_operator_reads(columns: dict[str, Any], expected: RunState) -> None:
    assert RunState.of(columns) == expected


def test_every_status_has_its_own_exit_code_and_only_completed_is_zero() -> None:
    codes = [EXIT_CODES[status] for status in RunStatus]
    assert len(set(codes)) == len(codes)
    assert EXIT_REFUSED not in codes
    assert [s for s in RunStatus if EXIT_CODES[s] == 0] == [RunStatus.COMPLETED]
    assert RunState.of(row("completed", "held")).exit_code == 3
