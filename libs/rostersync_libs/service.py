"""Running a service process: logging, signals, and a clean stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from rostersync_libs.logs import configure_logging
from rostersync_libs.settings import ServiceSettings

ServiceMain = Callable[[asyncio.Event], Awaitable[None]]


def run_service(name: str, settings: ServiceSettings, main: ServiceMain) -> None:
    """Run ``main`` until SIGINT or SIGTERM, then let it finish its batch and stop."""
    configure_logging(settings.log_level, name)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(_run())
