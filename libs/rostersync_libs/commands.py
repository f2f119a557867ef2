"""Commands sent to services over the command topic (imperative, unlike the past-tense events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from rostersync_libs.ids import new_run_id


class SyncRequested(BaseModel):
    """Ask the fetcher to sync one tenant's source now."""

    model_config = ConfigDict(frozen=True)

    command: Literal["sync"] = "sync"
    command_id: UUID = Field(default_factory=uuid4)
    tenant: str
    source: str | None = None
    run_id: UUID = Field(default_factory=new_run_id)
    # REST sources: a full sync (every collection as a bulk snapshot) even if a delta is due.
    full: bool = False
    # Send every record whole, even those the application already holds unchanged: to apply a
    # new crosswalk or match rule, or a stricter validation profile, to unchanged records.
    resend_unchanged: bool = False
    # CSV sources: read this bundle (an absolute path) once instead of the source's own path.
    bundle: str | None = None
    # The n-th try of this sync: a run whose fetcher died is failed and asked again once.
    attempt: int = Field(default=1, ge=1)
    requested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def key(self) -> bytes:
        return f"{self.tenant}:sync".encode()


class HoldDecision(BaseModel):
    """An operator's decision on a run held by the safety threshold (read by the writer).

    Kept on the retained command topic, so a replay takes the same decision at the same point.
    """

    model_config = ConfigDict(frozen=True)

    command: Literal["hold_decision"] = "hold_decision"
    command_id: UUID = Field(default_factory=uuid4)
    tenant: str
    run_id: UUID
    approve: bool
    # A label (the operator's OS login), for whoever reads the topic: the writer records the
    # operator audit's actor for this command id instead (audit.py), never this.
    decided_by: str = "operator"
    decided_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def key(self) -> bytes:
        return f"{self.tenant}:hold:{self.run_id}".encode()


class CancelRun(BaseModel):
    """Ask the fetcher publishing a run to stop it: the run ends ``cancelled``, nothing swept.

    Keyed like the tenant's sync commands, so it reaches the fetcher that took the run.
    """

    model_config = ConfigDict(frozen=True)

    command: Literal["cancel"] = "cancel"
    command_id: UUID = Field(default_factory=uuid4)
    tenant: str
    run_id: UUID
    # A label, as ``HoldDecision.decided_by``: the fetcher names the operator audit's actor.
    requested_by: str = "operator"
    requested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def key(self) -> bytes:
        return f"{self.tenant}:sync".encode()


Command = Annotated[SyncRequested | HoldDecision | CancelRun, Field(discriminator="command")]
COMMAND = TypeAdapter(Command)


async def put_command(
    producer: AIOKafkaProducer, topic: str, command: SyncRequested | HoldDecision | CancelRun
) -> None:
    """The one way a command goes on the command topic (the CLI, the API and the tests use it):
    its JSON under its key, acknowledged. Audit it first where the services require an audit
    (hold decisions, cancels); ``producer`` is a sealing producer (``kafka.make_producer``)."""
    await producer.send_and_wait(topic, command.model_dump_json().encode(), key=command.key())
