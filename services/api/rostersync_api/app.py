"""The admin API's composition root: one FastAPI application over one pool and one producer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.kafka import ensure_topics, make_producer
from rostersync_libs.store.migrate import migrate_at_start

from rostersync_api import console, errors
from rostersync_api.notify.loop import keep_notifying
from rostersync_api.rate_limit import RateLimiter
from rostersync_api.routes import (
    audit,
    changes,
    health,
    history,
    holds,
    metrics,
    runs,
    source_test,
    subscriptions,
    tenants,
    uploads,
)
from rostersync_api.settings import ApiSettings
from rostersync_api.state import ApiState
from rostersync_api.subscriptions.deliver import keep_delivering
from rostersync_api.upload_limit import UploadLimit

VERSION = "1"


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings)
        pool = await create_pool(settings, max_size=4)
        try:
            # Its tables; under least privilege the writer's role made them already.
            await migrate_at_start(pool)
            keys = DataKeys(pool, settings)
            producer = make_producer(settings, "rostersync-api", keys)
            await producer.start()
            stop = asyncio.Event()
            loops: list[asyncio.Task[None]] = []
            try:
                limiter = RateLimiter(settings.api_rate_per_second, settings.api_rate_burst)
                app.state.api = ApiState(settings, pool, keys, producer, limiter)
                loops.append(asyncio.create_task(keep_notifying(app.state.api, stop)))
                loops.append(asyncio.create_task(keep_delivering(app.state.api, stop)))
                yield
            finally:
                stop.set()
                for loop in loops:
                    await loop
                await producer.stop()
        finally:
            await close_pool(pool)

    app = FastAPI(
        title="rostersync admin API",
        version=VERSION,
        description="Districts, sources, runs, holds and uploads. Every request needs"
        " `Authorization: Bearer <token>` (`rostersync api token create`).",
        lifespan=lifespan,
    )
    errors.install(app, html=console.error_page)
    app.include_router(health.router)
    app.include_router(metrics.router)
    # Uploads stop at the size limit as they arrive, also when their length is not said. Added
    # first, so it is inside the metrics middleware: its error is raised where the route reads.
    app.add_middleware(UploadLimit, limit=settings.max_upload_bytes)
    app.middleware("http")(metrics.count_requests)
    for routes in (
        tenants,
        source_test,
        runs,
        holds,
        uploads,
        audit,
        changes,
        history,
        subscriptions,
    ):
        app.include_router(routes.router)
    console.install(app)  # the web console, under /console (same tokens, same routes' code)
    return app
