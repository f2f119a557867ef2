"""The mapper's composition root."""

from __future__ import annotations

import asyncio
import contextlib

from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.stage import Stage
from rostersync_libs.stage_progress import StageProgress
from rostersync_libs.store.migrate import migrate_at_start

from rostersync_mapper.handler import MapperHandler
from rostersync_mapper.identity_map import IdentityMap
from rostersync_mapper.lookups import PgLookups
from rostersync_mapper.match_rules import MatchRulesBook
from rostersync_mapper.resolver import IdentityResolver
from rostersync_mapper.settings import MapperSettings
from rostersync_mapper.store import IdentityStore


async def run(settings: MapperSettings, stop: asyncio.Event) -> None:
    await ensure_topics(settings)
    topics = settings.topics
    pool = await create_pool(settings, max_size=2)
    await migrate_at_start(pool)  # the tables it reads and its claims, before any writer started
    keys = DataKeys(pool, settings)
    store = IdentityStore(settings, IdentityMap(), keys)
    try:
        await store.start()
        rules = MatchRulesBook(pool, settings)
        await rules.refresh()
        resolver = IdentityResolver(store.map, PgLookups(pool), rules, catch_up=store.catch_up)
        stage = Stage(
            name="mapper",
            settings=settings,
            input_topic=topics.validated,
            output_topic=topics.mapped,
            dlq_topic=topics.mapper_dlq,
            handler=MapperHandler(store, resolver),
            keys=keys,
            progress=StageProgress(pool, "mapper"),
        )
        refreshing = asyncio.create_task(rules.keep_current(stop))
        try:
            await stage.run(stop)
        finally:
            refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refreshing
    finally:
        await store.stop()
        await close_pool(pool)
