"""The validator's composition root."""

from __future__ import annotations

import asyncio

from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.stage import Stage
from rostersync_libs.stage_progress import StageProgress
from rostersync_libs.store.migrate import migrate_at_start

from rostersync_validator.handler import ValidatorHandler
from rostersync_validator.known import KnownKeys
from rostersync_validator.settings import ValidatorSettings


async def run(settings: ValidatorSettings, stop: asyncio.Event) -> None:
    await ensure_topics(settings)
    pool = await create_pool(settings, max_size=2)
    await migrate_at_start(pool)  # the tables it reads, even before any writer has started
    topics = settings.topics
    stage = Stage(
        name="validator",
        settings=settings,
        input_topic=topics.fetched,
        output_topic=topics.validated,
        dlq_topic=topics.validator_dlq,
        handler=ValidatorHandler(KnownKeys(pool)),
        keys=DataKeys(pool, settings),
        progress=StageProgress(pool, "validator"),
    )
    try:
        await stage.run(stop)
    finally:
        await close_pool(pool)
