"""The mapper's composition root."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.stage import Stage
from rostersync_libs.tenants import MatchRules, TenantsConfig, load_tenants

from rostersync_mapper.handler import MapperHandler
from rostersync_mapper.identity_map import IdentityMap
from rostersync_mapper.lookups import PgLookups
from rostersync_mapper.resolver import IdentityResolver
from rostersync_mapper.settings import MapperSettings
from rostersync_mapper.store import IdentityStore

log = logging.getLogger(__name__)


def match_rules(settings: MapperSettings) -> Callable[[str], MatchRules]:
    """Each tenant's match rules (read once at start); an unknown tenant gets the defaults."""
    try:
        config = load_tenants(settings.tenants_file)
    except FileNotFoundError:
        log.warning("no tenants file at %s: default match rules", settings.tenants_file)
        config = TenantsConfig(tenants=[])
    rules = {tenant.id: tenant.matching for tenant in config.tenants}
    default = MatchRules()
    return lambda tenant: rules.get(tenant, default)


async def run(settings: MapperSettings, stop: asyncio.Event) -> None:
    await ensure_topics(settings)
    topics = settings.topics
    pool = await create_pool(settings, max_size=2)
    keys = DataKeys(pool, settings)
    store = IdentityStore(settings, IdentityMap(), keys)
    try:
        await store.start()
        resolver = IdentityResolver(
            store.map, PgLookups(pool), match_rules(settings), catch_up=store.catch_up
        )
        stage = Stage(
            name="mapper",
            settings=settings,
            input_topic=topics.validated,
            output_topic=topics.mapped,
            dlq_topic=topics.mapper_dlq,
            handler=MapperHandler(store, resolver),
            keys=keys,
        )
        await stage.run(stop)
    finally:
        await store.stop()
        await close_pool(pool)
