"""The fetcher's settings."""

from __future__ import annotations

from pydantic import Field
from rostersync_libs.settings import ServiceSettings


class FetcherSettings(ServiceSettings):
    """Settings of the fetcher service (environment prefix ``ROSTERSYNC_``)."""

    send_batch: int = Field(default=5000, ge=1, description="records sent before awaiting acks")
    inbox_poll_seconds: float = Field(
        default=5.0, gt=0, description="how often inboxes are scanned"
    )
