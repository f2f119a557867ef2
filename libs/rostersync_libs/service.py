"""Running a service process: logging, signals, a clean stop, and waiting out outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from rostersync_libs.health import Health
from rostersync_libs.health_server import serving_health
from rostersync_libs.logs import configure_logging
from rostersync_libs.outages import Backoff, describe, outage_of, readiness
from rostersync_libs.settings import ServiceSettings

log = logging.getLogger(__name__)

ServiceMain = Callable[[asyncio.Event], Awaitable[None]]


def run_service(name: str, settings: ServiceSettings, main: ServiceMain) -> None:
    """Run ``main`` until SIGINT or SIGTERM, then let it finish its batch and stop."""
    configure_logging(settings.log_level, name, settings.log_format)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(quiet_outages)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        health = Health(name)
        async with serving_health(settings, health):
            await keep_running(name, main, stop, health=health)

    asyncio.run(_run())


def quiet_outages(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An error nobody awaited, from an outage (asyncpg's pool during a PostgreSQL restart
    leaves some: "Future exception was never retrieved"), on one line without its traceback: the
    service logs the outage itself. Anything else goes to asyncio's own handler, traceback and
    all."""
    exc = context.get("exception")
    if isinstance(exc, BaseException) and outage_of(exc) is not None:
        log.warning("%s (%s)", context.get("message", "an unawaited error"), type(exc).__name__)
        return
    loop.default_exception_handler(context)


async def keep_running(
    name: str,
    main: ServiceMain,
    stop: asyncio.Event,
    backoff: Backoff | None = None,
    health: Health | None = None,
) -> None:
    """``main`` until ``stop``; started again after an outage of PostgreSQL or Kafka (also one
    at start-up), after a growing pause. Any other error ends the service. ``health`` follows:
    ready once ``main`` has started with its servers, not ready from an outage until then."""
    backoff = backoff or Backoff()
    state = health or Health(name)

    def started() -> None:
        backoff.recovered(log, name)
        state.working()

    with readiness(started):
        while not stop.is_set():
            try:
                await main(stop)
                return
            except Exception as exc:
                outage = outage_of(exc)
                if outage is None or stop.is_set():
                    raise
                state.failed(describe(outage))
                pause = backoff.failed(log, name, outage)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
