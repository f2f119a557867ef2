"""A REST source's selection: the pass that decides it, over the collections read in full.

What decides a record comes after it in publishing order (a class keeps its course, an
enrollment its user), so before publishing, a run with a selection reads the deciding collections
(orgs, academicSessions, classes, courses, enrollments, users) in full, keeping ids and
references only, whether the run itself is full or a delta: a delta record is then judged against
the whole district as it is now. The collection endpoints are used, never the school-scoped ones
(``/schools/{id}/classes`` …): a selection by school year, or by an identifier, needs every class
and org anyway, and one code path serves both. The price is those collections read twice.
"""

from __future__ import annotations

from rostersync_libs.events import EntityType
from rostersync_libs.tenants import ApiSource, SourceSelection

from rostersync_fetcher.rest.client import OneRosterClient
from rostersync_fetcher.rest.paging import pages
from rostersync_fetcher.rest.shapes import COLLECTIONS, shape
from rostersync_fetcher.selection import FEED_ORDER, SelectionRules


async def api_selection(
    client: OneRosterClient, source: ApiSource, config: SourceSelection
) -> SelectionRules:
    rules = SelectionRules(config)
    by_entity = {c.entity: c for c in COLLECTIONS}
    for entity in FEED_ORDER:
        collection = by_entity.get(entity)  # roles come inside users (1.2)
        if collection is None or not source.reads(collection.path):
            continue
        async for items in pages(
            client, collection.path, page_size=source.page_size, window=source.max_concurrency
        ):
            for obj in items:
                records = shape(obj, entity, source.version, bulk=True)
                # A 1.2 user's roles attach it: they are fed before the user they follow.
                for record in sorted(records, key=lambda r: r.entity is not EntityType.ROLE):
                    rules.feed(record.entity, record.payload)
    rules.settle()
    return rules
