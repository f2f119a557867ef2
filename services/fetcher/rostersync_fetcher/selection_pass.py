"""Applying a source's selection in a run: the pass that decides it, and the per-record filter.

A CSV bundle is read once more before publishing, in ``FEED_ORDER`` (orgs, sessions, classes,
courses, enrollments, roles, users), because what decides a record comes after it in publishing
order (a class keeps its course, an enrollment its user). The REST path reads the deciding
collections in full the same way (rest/selection.py).
"""

from __future__ import annotations

import csv
from collections import Counter
from typing import Any

from rostersync_libs.envelope import EntityType
from rostersync_libs.tenants import SourceSelection

from rostersync_fetcher.csv_bundle import Bundle
from rostersync_fetcher.headers import HeaderMap
from rostersync_fetcher.plan import BundlePlan
from rostersync_fetcher.records import payload_of
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


def bundle_selection(bundle: Bundle, plan: BundlePlan, config: SourceSelection) -> SelectionRules:
    """The selection's decisions over the bundle's published files (runs in a thread)."""
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
    rules.settle()
    return rules
