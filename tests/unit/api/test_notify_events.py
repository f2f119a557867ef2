"""Which event a run is notified as (services/api/rostersync_api/notify/found.py), and who
subscribes to it (libs/rostersync_libs/notify_config.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from rostersync_api.notify.found import event_of
from rostersync_libs.notify_config import EVERY_EVENT, Notify, Webhook


def row(run_status: str, outcome: str | None = None, rejected: int = 0) -> dict[str, Any]:
    return {
        "run_status": run_status, "fetch_error": None, "outcome": outcome,
        "outcome_numbers": None, "outcome_threshold": 0.1, "decision_approve": None,
        "decided_by": None, "decided_at": None, "rejected": rejected,
    }  # fmt: skip


def test_each_run_state_is_its_event_or_none() -> None:
    assert event_of(row("failed"), 0) == "failed"
    assert event_of(row("completed", "held"), 0) == "held"
    assert event_of(row("cancelled"), 0) == "cancelled"
    assert event_of(row("cancelled", rejected=99), 0) == "cancelled"  # not "rejections"
    assert event_of(row("completed", "applied", rejected=6), 5) == "rejections"
    assert event_of(row("completed", "applied", rejected=5), 5) is None
    assert event_of(row("running"), 0) is None


def test_cancelled_is_an_event_a_webhook_subscribes_to() -> None:
    assert "cancelled" in EVERY_EVENT  # a webhook naming no events hears of cancellations too
    notify = Notify(
        webhooks=(
            Webhook(url="https://a.example/hook", on=("cancelled",)),
            Webhook(url="https://b.example/hook", on=("failed", "held")),
            Webhook(url="https://c.example/hook"),
        ),
        email=("ops@d.example",),
    )
    assert notify.targets("cancelled") == [
        "https://a.example/hook", "https://c.example/hook", "mailto:ops@d.example",
    ]  # fmt: skip
    assert notify.targets("failed") == [
        "https://b.example/hook", "https://c.example/hook", "mailto:ops@d.example",
    ]  # fmt: skip
    with pytest.raises(ValidationError, match="cancelled"):
        Webhook.model_validate({"url": "https://a.example/hook", "on": ["stopped"]})
