"""The fetcher's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from rostersync_libs.settings import ServiceSettings


class FetcherSettings(ServiceSettings):
    """Settings of the fetcher service (environment prefix ``ROSTERSYNC_``)."""

    # Records buffered before they are sent as batches (see publisher.py): about 1,000 records a
    # message with 3 partitions; the acknowledgements of one round are awaited after the next.
    send_batch: int = Field(
        default=3000, ge=1, description="records buffered before they are sent in batches"
    )
    inbox_poll_seconds: float = Field(
        default=5.0, gt=0, description="how often inboxes are scanned"
    )
    stop_grace_seconds: float = Field(
        default=3.0, ge=0, description="on SIGTERM, runs still going after this are cancelled"
    )
    run_timeout_seconds: float = Field(
        default=6 * 3600, ge=0, description="a run still publishing after this is failed (0: none)"
    )
    # A run whose fetcher died is ended by another (leases.py).
    lease_renew_seconds: float = Field(default=10.0, gt=0, description="run lease renewal")
    lease_stale_seconds: float = Field(
        default=60.0, gt=0, description="a run lease not renewed this long: its fetcher died"
    )
    lease_check_seconds: float = Field(default=15.0, gt=0, description="lapsed leases check")
    lapsed_run_retries: int = Field(
        default=1, ge=0, description="times a run whose fetcher died is asked again"
    )
    # Folders csv and inbox sources must be inside (symbolic links resolved), e.g.
    # ROSTERSYNC_SOURCE_ROOTS='["/srv/rosters"]'; a source elsewhere is refused, never read.
    # Empty: any folder but / and the system folders (/proc, /etc, /usr…).
    source_roots: list[Path] = Field(
        default_factory=list, description="folders csv and inbox sources must be inside"
    )

    @model_validator(mode="after")
    def _lease_outlives_renewals(self) -> Self:
        # A live run missing two renewals in a row must not be taken for a dead one.
        if self.lease_stale_seconds < 3 * self.lease_renew_seconds:
            raise ValueError("lease_stale_seconds must be at least 3 times lease_renew_seconds")
        return self
