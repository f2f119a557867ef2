"""Applying a source's selection in a run: the pass that decides it, and the per-record filter.

A CSV bundle is read once more before publishing, in ``FEED_ORDER`` (orgs, sessions, classes,
courses, enrollments, roles, users), because what decides a record comes after it in publishing
order (a class keeps its course, an enrollment its user). The REST path reads the deciding
collections in full the same way (rest/selection.py).
"""

from __future__ import annotations

import asyncio
import csv
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from rostersync_libs.events import EntityType
from rostersync_libs.oneroster.bundle import Bundle
from rostersync_libs.tenants import SourceSelection

from rostersync_fetcher.csv.headers import HeaderMap
from rostersync_fetcher.csv.plan import BundlePlan
from rostersync_fetcher.csv.records import payload_of
from rostersync_fetcher.selection import FEED_ORDER, SelectionRules


class Selector:
    """Filters a run's records through its selection, counting per file what it skips and trims."""

    def __init__(self, rules: SelectionRules, skipped: Counter[str], trimmed: Counter[str]) -> None:
        self.rules = rules
        self._skipped = skipped
        self._trimmed = trimmed

    def apply(
        self, entity: EntityType, payload: dict[str, Any], label: str
    ) -> dict[str, Any] | None:
        """The payload to publish (references outside the selection trimmed), or ``None``."""
        kept, trimmed = self.rules.decide(entity, payload)
        if kept is None:
            self._skipped[label] += 1
        elif trimmed:
            self._trimmed[label] += trimmed
        return kept


# What the tenant holds (active, from this source) of an entity: the sourcedIds.
HeldLookup = Callable[[EntityType], Awaitable[set[str]]]
DECIDING = frozenset(FEED_ORDER) - {EntityType.ROLE}


def bulk_entities(plan: BundlePlan) -> set[EntityType]:
    return {f.spec.entity for f in plan.files if f.published and f.facts.mode == "bulk"}


async def bundle_rules(
    bundle: Bundle, plan: BundlePlan, config: SourceSelection, held: HeldLookup | None
) -> SelectionRules:
    """The selection's decisions over the bundle. A bundle that is not a complete snapshot of
    the deciding files (a delta) cannot see every anchor: the classes and users the tenant
    already holds from this source count as selected (they were, when they came), so a delta's
    enrollment of a held class, or a held user's change, is kept."""
    rules = await asyncio.to_thread(_feed_bundle, bundle, plan, config)
    if held is not None and not bulk_entities(plan) >= DECIDING:
        rules.sets.held = {e: await held(e) for e in (EntityType.CLASS, EntityType.USER)}
    rules.settle()
    return rules


def _feed_bundle(bundle: Bundle, plan: BundlePlan, config: SourceSelection) -> SelectionRules:
    """The bundle's published files fed to the rules, in ``FEED_ORDER`` (runs in a thread)."""
    rules = SelectionRules(config)
    planned = {f.spec.entity: f for f in plan.files if f.published and f.encoding is not None}
    for entity in FEED_ORDER:
        file = planned.get(entity)
        if file is None or file.encoding is None:
            continue
        try:
            with bundle.reader(file.facts.file, file.encoding) as (header, rows):
                columns = HeaderMap.build(header, file.spec)
                for row in rows:
                    rules.feed(entity, payload_of(columns.values(row.values), file.spec))
        except csv.Error:
            pass  # the publishing pass meets the same error and reports it with its line
    return rules
