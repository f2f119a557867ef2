"""The validator's settings."""

from __future__ import annotations

from rostersync_libs.settings import ServiceSettings


class ValidatorSettings(ServiceSettings):
    """Settings of the validator service (environment prefix ``ROSTERSYNC_``)."""
