"""Which records a source's selection (some schools, some school years) keeps.

The rules (docs in README, "Selection"), decided once per run over what the run reads:

- selected orgs: the orgs a ``schools`` value names (sourcedId or identifier) and the orgs below
  them (departments); selected sessions: the sessions a ``school_years`` value names (sourcedId,
  or title of a ``schoolYear`` session), every session of the same ``schoolYear``, and the
  sessions below them (terms, grading periods). An empty list selects everything.
- classes: at a selected org and in a selected session (one of their terms); their courses, and
  the courses of a selected org in a selected year; enrollments of kept classes.
- users: attached to a selected org (``orgSourcedIds``, 1.2 ``primaryOrg`` or a role there) or
  enrolled in a kept class; then their agents (guardians) and the users naming them as agent.
  Demographics, profiles and roles follow their user (a role also needs its org kept).
- kept orgs and sessions: the selected ones, the ones kept records must name (a shared course's
  org, an enrollment's school) and everything above them (a district), so no required reference
  of a kept record dangles. Optional and list references to records the run read but does not
  keep are trimmed (a user's unselected second school, a course's other year) and counted; a user
  left with no org at all is skipped. References the run did not read are left to the validator.

``feed`` takes the run's records in ``FEED_ORDER`` (ids and references only are kept), then
``decide`` answers for each record to publish. Pure logic: the passes are in selection_pass.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rostersync_libs.events import EntityType as E
from rostersync_libs.tenants import SourceSelection

from rostersync_fetcher.selection_sets import Hierarchy, KeptSets, as_list

FEED_ORDER = (E.ORG, E.ACADEMIC_SESSION, E.CLASS, E.COURSE, E.ENROLLMENT, E.ROLE, E.USER)
# Roles and users are one stage: a user is attached by its own roles, and a REST user object
# carries its roles (roles.csv, read before users.csv, has them all before the users).
STAGE = {entity: min(at, 5) for at, entity in enumerate(FEED_ORDER)}


class SelectionRules:
    def __init__(self, config: SourceSelection) -> None:
        self._config = config
        self._orgs = Hierarchy(config.schools, by_field="identifier")
        self._sessions = Hierarchy(config.school_years, by_field="title", of_type="schoolYear")
        self.sets = KeptSets()
        self._classes: set[str] = set()  # kept classes
        self._courses: set[str] = set()  # kept courses: of kept classes, of selected orgs and years
        self._agents_of: dict[str, list[str]] = {}
        self._attached: set[str] = set()  # users with a role at a selected org (1.2)
        self._no_kept_org: set[str] = set()  # users whose every org is outside the kept ones
        self._base_users: set[str] = set()
        self._stage = -1

    def feed(self, entity: E, payload: Mapping[str, Any]) -> None:
        """One record of the pass; entities must come in ``FEED_ORDER``."""
        if entity not in FEED_ORDER:
            return
        self._advance(STAGE[entity])
        sourced_id = str(payload.get("sourcedId", ""))
        sets = self.sets
        if entity is E.ORG:
            self._orgs.add(sourced_id, payload, "parentSourcedId")
        elif entity is E.ACADEMIC_SESSION:
            self._sessions.add(sourced_id, payload, "parentSourcedId")
        elif entity is E.CLASS:
            sets.classes.known.add(sourced_id)
            terms = as_list(payload.get("termSourcedIds"))
            if self._orgs.selects(payload.get("schoolSourcedId")) and (
                not self._config.school_years or any(self._sessions.selects(t) for t in terms)
            ):
                self._classes.add(sourced_id)
                self._courses.add(str(payload.get("courseSourcedId", "")))
                sets.required_orgs.add(str(payload.get("schoolSourcedId", "")))
        elif entity is E.COURSE:
            sets.courses.known.add(sourced_id)
            year = payload.get("schoolYearSourcedId")
            if self._orgs.selects(payload.get("orgSourcedId")) and (
                not self._config.school_years or (year is not None and self._sessions.selects(year))
            ):
                self._courses.add(sourced_id)
            if sourced_id in self._courses:
                sets.required_orgs.add(str(payload.get("orgSourcedId", "")))
        elif entity is E.ENROLLMENT:
            if payload.get("classSourcedId") in self._classes:
                self._base_users.add(str(payload.get("userSourcedId", "")))
                sets.required_orgs.add(str(payload.get("schoolSourcedId", "")))
        elif entity is E.ROLE:
            if self._orgs.selects(payload.get("orgSourcedId")):
                self._attached.add(str(payload.get("userSourcedId", "")))
        else:
            self._user(sourced_id, payload)

    def _user(self, sourced_id: str, payload: Mapping[str, Any]) -> None:
        self.sets.users.known.add(sourced_id)
        orgs = as_list(payload.get("orgSourcedIds"))
        primary = payload.get("primaryOrgSourcedId")
        agents = as_list(payload.get("agentSourcedIds"))
        if agents:
            self._agents_of[sourced_id] = agents
        if orgs and not any(self.sets.org_state(o) is not False for o in orgs):
            self._no_kept_org.add(sourced_id)  # trimming would leave its required list empty
            return
        if sourced_id in self._attached or any(self._orgs.selects(o) for o in (*orgs, primary)):
            self._base_users.add(sourced_id)

    def _advance(self, stage: int) -> None:
        if stage < self._stage:
            raise ValueError(f"selection pass out of order: {FEED_ORDER[stage]} after"
                             f" {FEED_ORDER[self._stage]}")  # fmt: skip
        for closing in range(self._stage + 1, stage + 1):
            self._close(FEED_ORDER[closing])  # the first entity of each stage
        self._stage = stage

    def _close(self, upcoming: E) -> None:
        """Settle what the entities fed so far decide, before ``upcoming`` is fed."""
        if upcoming is E.CLASS:  # orgs and sessions are all in
            self._orgs.settle()
            self._sessions.settle()
        elif upcoming is E.ROLE:  # classes, courses and enrollments are all in
            self.sets.orgs = self._orgs.kept(self.sets.required_orgs)
            self.sets.sessions = self._sessions.kept(())

    def settle(self) -> None:
        """Everything is fed: the kept users (the base ones, their agents, who names them)."""
        self._advance(STAGE[E.USER])
        held = self.sets.held.get(E.USER, set()) & self.sets.users.known
        base = (self._base_users | held) - self._no_kept_org
        kept = set(base)
        for user, agents in self._agents_of.items():
            if user in base:
                kept.update(a for a in agents if a not in self._no_kept_org)
            elif user not in self._no_kept_org and any(a in base for a in agents):
                kept.add(user)
        self.sets.users.kept = kept
        self.sets.classes.kept = self._classes
        self.sets.courses.kept = self._courses

    def problem(self, complete: set[E]) -> str | None:
        """Why the run must not go on: a list of the selection that names nothing in a complete
        snapshot of its entity (a typo would otherwise skip, then archive, the whole district)."""
        for entity, hierarchy, name in (
            (E.ORG, self._orgs, "schools"),
            (E.ACADEMIC_SESSION, self._sessions, "school_years"),
        ):
            if entity in complete and hierarchy.selectors and not hierarchy.hits:
                listed = ", ".join(sorted(hierarchy.selectors))
                return (f"the source's selection names no {entity.value} record it has:"
                        f" {name} = [{listed}]; nothing was published")  # fmt: skip
        return None

    def unmatched(self) -> list[str]:
        """Selection values that named no record (a school closed, a typo): for the log."""
        return sorted((self._orgs.selectors - self._orgs.hits)
                      | (self._sessions.selectors - self._sessions.hits))  # fmt: skip

    def decide(self, entity: E, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, int]:
        """The record as published (references outside the selection trimmed) and how many
        references were trimmed; ``None`` when the selection skips the record."""
        return self.sets.decide(entity, payload)
