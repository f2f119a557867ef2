"""Logging set-up shared by the services: one line per event, never a full record."""

from __future__ import annotations

import logging


def configure_logging(level: str, service: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )
    # aiokafka logs every rebalance step at INFO; keep service logs readable.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
