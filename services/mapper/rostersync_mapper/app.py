"""The mapper's composition root."""

from __future__ import annotations

import asyncio

from rostersync_libs.kafka import ensure_topics
from rostersync_libs.stage import PerRecord, Stage

from rostersync_mapper.mapping import map_event
from rostersync_mapper.settings import MapperSettings


async def run(settings: MapperSettings, stop: asyncio.Event) -> None:
    await ensure_topics(settings)
    topics = settings.topics
    stage = Stage(
        name="mapper",
        settings=settings,
        input_topic=topics.validated,
        output_topic=topics.mapped,
        dlq_topic=topics.mapper_dlq,
        handler=PerRecord(map_event),
    )
    await stage.run(stop)
