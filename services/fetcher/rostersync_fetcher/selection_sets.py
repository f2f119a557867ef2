"""The sets a selection decides with (selection.py holds the rules that fill them).

Ids are kept as strings, for the records the run reads of the entities that decide (orgs,
sessions, courses, classes, users; never enrollments): a selection costs about the memory of the
bundle index again, and only for sources that have one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rostersync_libs.events import EntityType as E


def as_list(value: Any) -> list[str]:
    """A reference column's values: a list column's items, a single value, or nothing."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


@dataclass
class Tracked:
    """One entity's ids: those the run read (``known``) and those kept (``None``: all)."""

    known: set[str] = field(default_factory=set)
    kept: set[str] | None = field(default_factory=set)

    def state(self, sourced_id: str) -> bool | None:
        """True kept, False read and skipped, None not read in this run (left to the validator)."""
        if sourced_id not in self.known:
            return None
        return self.kept is None or sourced_id in self.kept


class Hierarchy:
    """Orgs or academic sessions: which are selected (named, grouped, or below a named one)."""

    def __init__(
        self, selectors: tuple[str, ...], *, by_field: str, of_type: str | None = None
    ) -> None:
        self._selectors = frozenset(selectors)
        self._by_field = by_field  # "identifier" (orgs), "title" (schoolYear sessions)
        self._of_type = of_type
        self._parent: dict[str, str] = {}
        self._year: dict[str, str] = {}  # sessions: schoolYear
        self._matched: set[str] = set()
        self._matched_years: set[str] = set()  # sessions: matched ones of type schoolYear
        self.hits: set[str] = set()  # the selectors that named a record of the run
        self.known: set[str] = set()
        self._selected: set[str] | None = None

    def add(self, sourced_id: str, payload: Mapping[str, Any], parent_field: str) -> None:
        self.known.add(sourced_id)
        parent = payload.get(parent_field)
        if parent:
            self._parent[sourced_id] = str(parent)
        if self._of_type is not None and payload.get("schoolYear"):
            self._year[sourced_id] = str(payload["schoolYear"])
        typed = self._of_type is None or payload.get("type") == self._of_type
        named = {sourced_id, str(payload.get(self._by_field, "")).strip() if typed else ""}
        named &= self._selectors
        if named:
            self._matched.add(sourced_id)
            if typed and sourced_id in self._year:
                self._matched_years.add(sourced_id)
        self.hits |= named | ({self._year.get(sourced_id, "")} & self._selectors)

    def settle(self) -> None:
        if not self._selectors:
            return  # everything is selected
        # A named school year brings its sessions of the same schoolYear; a named term does not.
        years = set(self._selectors) | {self._year[m] for m in self._matched_years}
        selected = set(self._matched) | set(self._selectors)  # an id named is selected, read or not
        if self._of_type is not None:  # sessions: every session of a selected school year
            selected |= {s for s, year in self._year.items() if year in years}
        for node in self.known:  # and everything below a selected one
            if self._chain(node) & selected:
                selected.add(node)
        self._selected = selected

    @property
    def selectors(self) -> frozenset[str]:
        return self._selectors

    def _chain(self, node: str) -> set[str]:
        """``node``'s ancestors (a cycle stops the walk; the validator reports it)."""
        seen: set[str] = set()
        parent = self._parent.get(node)
        while parent is not None and parent not in seen:
            seen.add(parent)
            parent = self._parent.get(parent)
        return seen

    def selects(self, sourced_id: object) -> bool:
        return self._selected is None or (sourced_id is not None and sourced_id in self._selected)

    def kept(self, required: Iterable[str]) -> Tracked:
        """The selected ones, those kept records require, and every ancestor of them."""
        if self._selected is None:
            return Tracked(self.known, None)
        kept = self._selected | set(required)
        for node in list(kept):
            kept |= self._chain(node)
        return Tracked(self.known, kept)


@dataclass
class KeptSets:
    orgs: Tracked = field(default_factory=Tracked)
    sessions: Tracked = field(default_factory=Tracked)
    courses: Tracked = field(default_factory=Tracked)
    classes: Tracked = field(default_factory=Tracked)
    users: Tracked = field(default_factory=Tracked)
    required_orgs: set[str] = field(default_factory=set)
    # Records not read in this run that the tenant already holds from this source (a delta's
    # anchors): they were kept when they came, so what hangs on them is kept.
    held: dict[E, set[str]] = field(default_factory=dict)

    def org_state(self, sourced_id: str) -> bool | None:
        return self.orgs.state(sourced_id)

    def _anchor(self, entity: E, tracked: Tracked, sourced_id: Any) -> bool:
        state = tracked.state(str(sourced_id))
        if state is None:
            return str(sourced_id) in self.held.get(entity, set())
        return state

    def decide(self, entity: E, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, int]:
        own = str(payload.get("sourcedId", ""))
        get = payload.get
        if entity in (E.ORG, E.ACADEMIC_SESSION, E.COURSE, E.CLASS, E.USER):
            tracked = {E.ORG: self.orgs, E.ACADEMIC_SESSION: self.sessions,
                       E.COURSE: self.courses, E.CLASS: self.classes, E.USER: self.users}[entity]  # fmt: skip
            if tracked.state(own) is False:
                return None, 0
        elif entity is E.ENROLLMENT:
            if not self._anchor(E.CLASS, self.classes, get("classSourcedId")) or False in (
                self.users.state(str(get("userSourcedId"))),
                self.orgs.state(str(get("schoolSourcedId"))),
            ):
                return None, 0
        elif entity in (E.DEMOGRAPHIC, E.USER_PROFILE, E.ROLE):
            user = get("sourcedId") if entity is E.DEMOGRAPHIC else get("userSourcedId")
            if not self._anchor(E.USER, self.users, user):
                return None, 0
            if entity is E.ROLE and self.orgs.state(str(get("orgSourcedId"))) is False:
                return None, 0
        return self._trimmed(entity, payload)

    def _trimmed(self, entity: E, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, int]:
        """Drop references to records read but not kept; a required list left empty skips."""
        # (column, its targets, required): the references a selection can leave pointing out
        trimmable: dict[E, tuple[tuple[str, Tracked, bool], ...]] = {
            E.COURSE: (("schoolYearSourcedId", self.sessions, False),),
            E.CLASS: (("termSourcedIds", self.sessions, True),),
            E.USER: (
                ("orgSourcedIds", self.orgs, True),
                ("agentSourcedIds", self.users, False),
                ("primaryOrgSourcedId", self.orgs, False),
            ),
        }
        columns = trimmable.get(entity, ())
        trimmed = 0
        result = payload
        for column, tracked, required in columns:
            value = payload.get(column)
            values = as_list(value)
            kept = [v for v in values if tracked.state(v) is not False]
            if len(kept) == len(values):
                continue
            if required and not kept:
                return None, 0
            result = dict(result) if result is payload else result
            trimmed += len(values) - len(kept)
            if not kept:
                del result[column]
            else:
                result[column] = kept if isinstance(value, list) else kept[0]
        return result, trimmed
