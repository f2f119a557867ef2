"""What became of a run, as an operator should read it, and the exit code that says so.

Two tables hold a run's fate: ``sync_runs.status`` (the writer's view of the stream: ``running``,
``completed`` once every end marker is in, ``failed`` from the fetcher's run event) and
``run_outcomes.status`` (what became of the run's removals: ``applied``, ``held`` by the safety
threshold, then ``approved`` or ``discarded`` by an operator). A held run is *completed* in the
first table only; the operator must read ``held``. So every command shows one status from both:

=============  ===========================================================  ====
status         meaning                                                      exit
=============  ===========================================================  ====
``completed``  every record is in; removals applied (or approved)             0
``failed``     the source could not be read (the reason is shown)             1
``held``       records are in; removals wait for ``rostersync holds``         3
``discarded``  records are in; an operator discarded the run's removals       4
``running``    not finished yet (also: the wait timed out or was stopped)     5
``cancelled``  an operator stopped the run (``runs cancel``); nothing swept    6
=============  ===========================================================  ====

Exit code 2 is the command's own failure: bad arguments, an unknown tenant or run, a refused
decision. Rejected records do not change a run's status: they are counted beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2  # usage, unknown tenant or run, refused decision, no schema yet
EXIT_HELD = 3
EXIT_DISCARDED = 4
EXIT_NOT_FINISHED = 5  # still running, wait timed out or interrupted
EXIT_CANCELLED = 6
EXIT_UNAVAILABLE = 7  # Kafka or PostgreSQL does not answer (the message says which, and what to do)


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    HELD = "held"
    DISCARDED = "discarded"
    CANCELLED = "cancelled"


EXIT_CODES = {
    RunStatus.COMPLETED: EXIT_OK,
    RunStatus.FAILED: EXIT_FAILED,
    RunStatus.HELD: EXIT_HELD,
    RunStatus.DISCARDED: EXIT_DISCARDED,
    RunStatus.RUNNING: EXIT_NOT_FINISHED,
    RunStatus.CANCELLED: EXIT_CANCELLED,
}

# The columns ``RunState.of`` reads, for any query over sync_runs ``r`` (joined as below).
STATE_COLUMNS = """r.status AS run_status, r.fetch_error,
       o.status AS outcome, o.numbers AS outcome_numbers, o.threshold AS outcome_threshold,
       d.approve AS decision_approve, d.decided_by, d.decided_at"""
STATE_JOINS = """LEFT JOIN run_outcomes o ON o.tenant_id = r.tenant_id AND o.run_id = r.run_id
LEFT JOIN hold_decisions d ON d.tenant_id = r.tenant_id AND d.run_id = r.run_id"""


@dataclass(frozen=True)
class RunState:
    status: RunStatus
    detail: str = ""  # why it failed, what is held, who decided

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @classmethod
    def of(cls, row: Any) -> RunState:
        """The honest status of a row carrying ``STATE_COLUMNS``."""
        if row["run_status"] == "failed":
            return cls(RunStatus.FAILED, row["fetch_error"] or "no reason recorded")
        if row["run_status"] == "cancelled":
            return cls(RunStatus.CANCELLED, row["fetch_error"] or "")
        if row["run_status"] != "completed":
            return cls(RunStatus.RUNNING)
        outcome = row["outcome"]
        if outcome == "held":
            numbers = orjson.loads(row["outcome_numbers"] or "{}")
            return cls(
                RunStatus.HELD,
                f"would archive {describe_numbers(numbers)}"
                f", over the threshold of {row['outcome_threshold']:.0%}",
            )
        decided = decision_text(row["decided_by"], row["decided_at"])
        if outcome == "discarded":
            return cls(RunStatus.DISCARDED, f"removals discarded{decided}")
        if outcome == "approved":
            return cls(RunStatus.COMPLETED, f"removals approved{decided}")
        return cls(RunStatus.COMPLETED)  # applied (or a run older than safety holds)


def describe_numbers(numbers: dict[str, dict[str, Any]]) -> str:
    return ", ".join(
        f"{entity}: {n['archive']} of {n['active']} ({n['share']:.0%})"
        for entity, n in numbers.items()
    )


def decision_text(decided_by: str | None, decided_at: datetime | None) -> str:
    if decided_by is None:
        return ""
    when = f" at {decided_at:%Y-%m-%d %H:%M:%S %Z}".rstrip() if decided_at else ""
    return f" by {decided_by}{when}"
