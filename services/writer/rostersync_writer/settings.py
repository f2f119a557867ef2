"""The writer's settings."""

from __future__ import annotations

from rostersync_libs.settings import ServiceSettings


class WriterSettings(ServiceSettings):
    """Settings of the writer service (environment prefix ``ROSTERSYNC_``)."""
