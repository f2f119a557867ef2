"""The mapper's settings."""

from __future__ import annotations

from rostersync_libs.settings import ServiceSettings


class MapperSettings(ServiceSettings):
    """Settings of the mapper service (environment prefix ``ROSTERSYNC_``)."""
