"""The operator audit's agreement rule: a command is acted on only when its audit row says the
same tenant, run and action (rostersync_libs/audit.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from rostersync_libs.audit import AuditEntry, action_of, refusal
from rostersync_libs.commands import CancelRun, HoldDecision, SyncRequested

RUN = uuid4()


def entry_for(command: HoldDecision | CancelRun, **changes: object) -> AuditEntry:
    values: dict[str, object] = {
        "command_id": command.command_id,
        "tenant": command.tenant,
        "run_id": command.run_id,
        "action": action_of(command),
        "actor": "ops_login",
        "label": "alice",
        "recorded_at": datetime.now(UTC),
    }
    return AuditEntry(**{**values, **changes})  # type: ignore[arg-type]


def test_each_command_has_its_own_action() -> None:
    assert action_of(SyncRequested(tenant="d1")) == "sync"
    assert action_of(CancelRun(tenant="d1", run_id=RUN)) == "cancel"
    assert action_of(HoldDecision(tenant="d1", run_id=RUN, approve=True)) == "hold_approve"
    assert action_of(HoldDecision(tenant="d1", run_id=RUN, approve=False)) == "hold_discard"


def test_an_audited_command_agrees() -> None:
    decision = HoldDecision(tenant="d1", run_id=RUN, approve=True, decided_by="anyone")
    assert refusal(entry_for(decision), decision) is None


def test_a_command_without_audit_row_is_refused() -> None:
    decision = HoldDecision(tenant="d1", run_id=RUN, approve=True)
    assert refusal(None, decision) == "not_audited"


def test_an_audit_row_of_another_tenant_run_or_action_is_refused() -> None:
    decision = HoldDecision(tenant="d1", run_id=RUN, approve=True)
    assert refusal(entry_for(decision, tenant="d2"), decision) == "tenant_differs"
    assert refusal(entry_for(decision, run_id=uuid4()), decision) == "run_differs"
    # The operator discarded; the message, replayed with approve=True, must not approve.
    assert refusal(entry_for(decision, action="hold_discard"), decision) == "action_differs"
    cancel = CancelRun(tenant="d1", run_id=RUN, command_id=decision.command_id)
    assert refusal(entry_for(decision), cancel) == "action_differs"
