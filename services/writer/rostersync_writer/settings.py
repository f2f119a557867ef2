"""The writer's settings."""

from __future__ import annotations

from rostersync_libs.settings import ServiceSettings


class WriterSettings(ServiceSettings):
    """Settings of the writer service (environment prefix ``ROSTERSYNC_``)."""

    # Publish the change feed (relay.py). A replay's writer leaves it off: its changes are the
    # live ones again, already on the topic.
    change_relay: bool = True
