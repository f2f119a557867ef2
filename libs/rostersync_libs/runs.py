"""Run lifecycle events on the runs topic: a sync run is explicit, from start to finish."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from rostersync_libs.events import EntityType


class RunPhase(StrEnum):
    STARTED = "started"  # the fetcher began reading the source
    FETCHED = "fetched"  # every record and marker is published; counts are final
    FAILED = "failed"  # the source could not be read at all (the reason says why)
    CANCELLED = "cancelled"  # an operator stopped the run (the reason says who)


class RunEvent(BaseModel):
    """One step of a sync run as the fetcher saw it."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    run_id: UUID
    source: str
    phase: RunPhase
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    oneroster_version: str | None = None
    manifest: dict[str, str] = Field(default_factory=dict)
    # file name → rows published (FETCHED)
    file_counts: dict[str, int] = Field(default_factory=dict)
    # entity → records of those counts the application already held unchanged (sent as a list)
    unchanged_counts: dict[str, int] = Field(default_factory=dict)
    # file (or collection) → records outside the source's selection, not published (FETCHED)
    skipped_by_selection: dict[str, int] = Field(default_factory=dict)
    # file (or collection) → references to records outside the selection left out of kept records
    trimmed_by_selection: dict[str, int] = Field(default_factory=dict)
    # files present but not ingested (gradebook, resources...), and why
    skipped_files: dict[str, str] = Field(default_factory=dict)
    reason: str | None = None  # FAILED, CANCELLED
    # FETCHED: the entities whose file (or collection) was a complete bulk snapshot, as the
    # fetcher knew when it finished publishing. The writer sweeps these and only these: the run's
    # end markers travel on record topics and are not trusted for it. None: an event of a fetcher
    # older than this declaration (kept on the topics; a replay reads it).
    bulk_entities: list[EntityType] | None = None
    # The partitions the run's markers went to (record topics share one partition count): the
    # writer waits for that many, whatever fan-out a marker claims. None: not known (a run that
    # failed before publishing, or an older fetcher).
    fanout: int | None = None

    def key(self) -> bytes:
        return f"{self.tenant}:run:{self.run_id}".encode()
