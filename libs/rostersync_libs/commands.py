"""Commands sent to services over the command topic (imperative, unlike the past-tense events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


class SyncRequested(BaseModel):
    """Ask the fetcher to sync one tenant's source now."""

    model_config = ConfigDict(frozen=True)

    command: Literal["sync"] = "sync"
    command_id: UUID = Field(default_factory=uuid4)
    tenant: str
    source: str | None = None
    run_id: UUID = Field(default_factory=uuid4)
    requested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def key(self) -> bytes:
        return f"{self.tenant}:sync".encode()
