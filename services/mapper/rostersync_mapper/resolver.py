"""Identity resolution: which internal id each record of a batch gets.

In this order (``docs/identity.md``):

1. the identity map (crosswalk entries, earlier re-keys and matches);
2. for a record whose sourcedId the tenant has never had (not in the map, not in the writer's
   table, archived or not), and only then:
   a. re-keying (users): exactly one existing user of the tenant with the same
      ``matching.rekey_users_by`` key and another sourcedId → its internal id;
   b. the tenant's enabled match rules against the application directory: exactly one candidate
      → its app id;
3. otherwise the default uuid5.

Several candidates are never a guess: the record keeps its default id and a finding says so.
An id a decision already gave to another record of the tenant is never given twice. The database
work is batched per ``resolve`` call and done only for records a decision could apply to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from rostersync_libs.events import EntityType, Operation, RecordEvent
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding
from rostersync_libs.identities import IdentityDecision, Key, Reason
from rostersync_libs.ids import internal_id
from rostersync_libs.tenants import MatchRules, RekeyKey

from rostersync_mapper.identity_map import IdentityMap


class Rule(StrEnum):
    """A match rule of ``MatchRules``, by its option name."""

    TEACHER_BY_EMAIL = "teacher_by_email"
    USER_BY_USERNAME = "user_by_username"
    USER_BY_IDENTIFIER = "user_by_identifier"
    SCHOOL_BY_NCES = "school_by_nces"


# The application directory's column each rule compares (email case-insensitively).
DIRECTORY_COLUMNS = {
    Rule.TEACHER_BY_EMAIL: "email",
    Rule.USER_BY_USERNAME: "username",
    Rule.USER_BY_IDENTIFIER: "identifier",
    Rule.SCHOOL_BY_NCES: "nces_id",
}
# The writer's users column of each re-key key.
REKEY_COLUMNS: dict[RekeyKey, str] = {
    "userMasterIdentifier": "user_master_identifier",
    "username": "username",
    "identifier": "identifier",
}


@dataclass(frozen=True)
class ExistingUser:
    """A user row the tenant already has (any archived state)."""

    sourced_id: str
    internal_id: UUID


# Candidates by (tenant, re-key key, value) and by (tenant, match rule, value).
UserCandidates = dict[tuple[str, RekeyKey, str], list[ExistingUser]]
DirectoryCandidates = dict[tuple[str, Rule, str], list[UUID]]


class Lookups(Protocol):
    """What resolution needs from PostgreSQL; each call covers a whole batch."""

    async def known(self, keys: set[Key]) -> set[Key]:
        """The keys whose sourcedId is in the writer's table of its entity (any archived state)."""
        ...

    async def users_by(
        self, tenant: str, key: RekeyKey, values: set[str]
    ) -> dict[str, list[ExistingUser]]:
        """The tenant's users by the value of one re-key key."""
        ...

    async def directory(
        self, tenant: str, entity: EntityType, rule: Rule, values: set[str]
    ) -> dict[str, list[UUID]]:
        """App ids of the application directory by the (normalised) value a rule compares."""
        ...

    async def claim(self, decisions: list[IdentityDecision]) -> set[Key]:
        """Reserve each decision's internal id for its record; the keys whose claim holds (the id
        was free, or already this record's). Makes two mapper instances agree."""
        ...


@dataclass
class Resolution:
    """A record's internal id and what resolving it found."""

    internal_id: UUID
    rekeyed_from: str | None = None
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class Choice:
    decision: IdentityDecision | None
    findings: list[Finding]


def record_key(event: RecordEvent) -> Key:
    return (event.tenant, event.entity.value, event.sourced_id)


def _text(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def rekey_probes(event: RecordEvent, rules: MatchRules) -> list[tuple[RekeyKey, str]]:
    """The re-key keys of a new user record, in the tenant's order, with their values."""
    if event.entity is not EntityType.USER or event.operation is not Operation.UPSERT:
        return []
    probes: list[tuple[RekeyKey, str]] = []
    for key in rules.rekey_users_by:
        value = _text(event.payload, key)
        if value is not None:
            probes.append((key, value))
    return probes


def match_probes(event: RecordEvent, rules: MatchRules) -> list[tuple[Rule, str]]:
    """The tenant's enabled match rules that apply to a record, with the value each compares."""
    if event.operation is not Operation.UPSERT:
        return []
    payload = event.payload
    probes: list[tuple[Rule, str]] = []
    if event.entity is EntityType.USER:
        role = _text(payload, "role")  # 1.1 only: a 1.2 user has no role
        email = _text(payload, "email")
        if rules.teacher_by_email and role is not None and role.lower() == "teacher" and email:
            probes.append((Rule.TEACHER_BY_EMAIL, email.lower()))
        username = _text(payload, "username")
        if rules.user_by_username and username is not None:
            probes.append((Rule.USER_BY_USERNAME, username))
        identifier = _text(payload, "identifier")
        if rules.user_by_identifier and identifier is not None:
            probes.append((Rule.USER_BY_IDENTIFIER, identifier))
    elif event.entity is EntityType.ORG:
        org_type = _text(payload, "type")
        nces = _text(payload, "identifier")
        if rules.school_by_nces and org_type == "school" and nces is not None:
            probes.append((Rule.SCHOOL_BY_NCES, nces))
    return probes


def _finding(event: RecordEvent, code: Code, message: str) -> Finding:
    origin = event.origin
    return Finding(
        code=code,
        severity=code.severity(),
        message=message,
        file=origin.file if origin else None,
        row=origin.row if origin else None,
    )


def choose(
    event: RecordEvent,
    rules: MatchRules,
    users: UserCandidates,
    directory: DirectoryCandidates,
    holders: Callable[[UUID], set[str]],
) -> Choice:
    """The decision for one record the tenant has never had, from the candidates found (pure).

    ``users`` and ``directory`` hold the candidates of each (tenant, key or rule, value); ``holders``
    names the sourcedIds of the tenant's entity a decision already gave an internal id to.
    The first key or rule with any candidate decides: one candidate is taken, several are not.
    """
    tenant, sourced_id = event.tenant, event.sourced_id
    for key, value in rekey_probes(event, rules):
        found = {
            u.sourced_id: u
            for u in users.get((tenant, key, value), [])
            if u.sourced_id != sourced_id
        }
        if not found:
            continue
        if len(found) > 1:
            return Choice(None, [_ambiguous(event, f"re-key by {key}", len(found))])
        (old,) = found.values()
        if holders(old.internal_id) - {old.sourced_id, sourced_id}:
            return Choice(None, [_conflict(event, f"re-key by {key}")])
        return Choice(_decision(event, old.internal_id, Reason.REKEY, key, old.sourced_id), [])
    for rule, value in match_probes(event, rules):
        candidates = set(directory.get((tenant, rule, value), []))
        if not candidates:
            continue
        if len(candidates) > 1:
            return Choice(None, [_ambiguous(event, f"match rule {rule}", len(candidates))])
        (app_id,) = candidates
        if holders(app_id) - {sourced_id}:
            return Choice(None, [_conflict(event, f"match rule {rule}")])
        return Choice(_decision(event, app_id, Reason.MATCH, rule.value), [])
    return Choice(None, [])


def _decision(
    event: RecordEvent, iid: UUID, reason: Reason, rule: str, rekeyed_from: str | None = None
) -> IdentityDecision:
    return IdentityDecision(
        tenant=event.tenant,
        entity=event.entity,
        sourced_id=event.sourced_id,
        internal_id=iid,
        reason=reason,
        rule=rule,
        rekeyed_from=rekeyed_from,
    )


def _ambiguous(event: RecordEvent, what: str, count: int) -> Finding:
    return _finding(
        event,
        Code.AMBIGUOUS_MATCH,
        f"{what}: {count} candidates; never guessed, the record keeps its default id"
        " (declare a crosswalk entry to choose)",
    )


def _conflict(event: RecordEvent, what: str) -> Finding:
    return _finding(
        event,
        Code.IDENTITY_CONFLICT,
        f"{what}: the one candidate's id is already another record's; never given twice,"
        " the record keeps its default id",
    )


class KnownKeys:
    """Keys known to exist (in the writer's tables, or decided by this process), bounded."""

    def __init__(self, limit: int = 500_000) -> None:
        self._keys: set[Key] = set()
        self._limit = limit

    def __contains__(self, key: Key) -> bool:
        return key in self._keys

    def add(self, keys: Iterable[Key]) -> None:
        self._keys.update(keys)
        if len(self._keys) > self._limit:
            self._keys.clear()  # a cache: forgetting only costs a lookup


async def _nothing() -> None:
    return None


class IdentityResolver:
    """Resolves the internal ids of a batch of records; new decisions go into ``identity_map``."""

    def __init__(
        self,
        identity_map: IdentityMap,
        lookups: Lookups,
        rules_for: Callable[[str], MatchRules],
        catch_up: Callable[[], Awaitable[None]] = _nothing,
    ) -> None:
        self._map = identity_map
        self._lookups = lookups
        self._rules_for = rules_for
        self._catch_up = catch_up
        self._known = KnownKeys()

    async def resolve(
        self, events: list[RecordEvent]
    ) -> tuple[list[Resolution], list[IdentityDecision]]:
        """One resolution per event, in order, and the decisions made now (to publish)."""
        findings: dict[int, list[Finding]] = {}
        decided = await self._decide(events, findings)
        resolutions = []
        for index, event in enumerate(events):
            decision = self._map.get(record_key(event))  # one look-up: the decision or none
            if decision is None:
                iid = internal_id(event.tenant, event.entity, event.sourced_id)
                resolution = Resolution(iid, None, findings.get(index, []))
            else:
                resolution = Resolution(
                    decision.internal_id, decision.rekeyed_from, findings.get(index, [])
                )
            resolutions.append(resolution)
        return resolutions, decided

    def _may_decide(self, event: RecordEvent) -> bool:
        key = record_key(event)
        if key in self._map or key in self._known:
            return False
        rules = self._rules_for(event.tenant)
        return bool(rekey_probes(event, rules) or match_probes(event, rules))

    async def _decide(
        self, events: list[RecordEvent], findings: dict[int, list[Finding]]
    ) -> list[IdentityDecision]:
        pending = [i for i, event in enumerate(events) if self._may_decide(event)]
        if not pending:
            return []
        keys = {record_key(events[i]) for i in pending}
        known = await self._lookups.known(keys)
        self._known.add(known)
        pending = [i for i in pending if record_key(events[i]) not in known]
        if not pending:
            return []
        await self._catch_up()  # decisions another instance made meanwhile
        pending = [i for i in pending if record_key(events[i]) not in self._map]
        first: dict[Key, int] = {}
        for i in pending:  # one decision per record, whatever versions the batch holds
            first.setdefault(record_key(events[i]), i)
        pending = list(first.values())
        if not pending:
            return []
        users = await self._users(events, pending)
        unmatched = [i for i in pending if not self._has_rekey_candidate(events[i], users)]
        directory = await self._directory(events, unmatched)

        proposed: dict[tuple[str, str, UUID], set[str]] = {}
        proposals: list[tuple[int, IdentityDecision]] = []
        for i in pending:
            event = events[i]
            tenant, entity, _ = record_key(event)

            def holders(iid: UUID, tenant: str = tenant, entity: str = entity) -> set[str]:
                return self._map.holders(tenant, entity, iid) | proposed.get(
                    (tenant, entity, iid), set()
                )

            choice = choose(event, self._rules_for(tenant), users, directory, holders)
            if choice.findings:
                findings.setdefault(i, []).extend(choice.findings)
            if choice.decision is not None:
                d = choice.decision
                proposed.setdefault((tenant, entity, d.internal_id), set()).add(d.sourced_id)
                proposals.append((i, d))
        accepted = await self._lookups.claim([d for _, d in proposals]) if proposals else set()
        decided = []
        for i, decision in proposals:
            if decision.map_key in accepted:
                self._map.apply(decision)
                decided.append(decision)
            else:
                findings.setdefault(i, []).append(
                    _conflict(events[i], decision.rule or decision.reason.value)
                )
        self._known.add(first)  # seen now: never matched again
        return decided

    def _has_rekey_candidate(self, event: RecordEvent, users: UserCandidates) -> bool:
        return any(
            u.sourced_id != event.sourced_id
            for key, value in rekey_probes(event, self._rules_for(event.tenant))
            for u in users.get((event.tenant, key, value), [])
        )

    async def _users(self, events: list[RecordEvent], pending: list[int]) -> UserCandidates:
        wanted: dict[tuple[str, RekeyKey], set[str]] = {}
        for i in pending:
            event = events[i]
            for key, value in rekey_probes(event, self._rules_for(event.tenant)):
                wanted.setdefault((event.tenant, key), set()).add(value)
        found: UserCandidates = {}
        for (tenant, key), values in wanted.items():
            for value, users in (await self._lookups.users_by(tenant, key, values)).items():
                found[(tenant, key, value)] = users
        return found

    async def _directory(
        self, events: list[RecordEvent], pending: list[int]
    ) -> DirectoryCandidates:
        wanted: dict[tuple[str, EntityType, Rule], set[str]] = {}
        for i in pending:
            event = events[i]
            for rule, value in match_probes(event, self._rules_for(event.tenant)):
                wanted.setdefault((event.tenant, event.entity, rule), set()).add(value)
        found: DirectoryCandidates = {}
        for (tenant, entity, rule), values in wanted.items():
            for value, app_ids in (
                await self._lookups.directory(tenant, entity, rule, values)
            ).items():
                found[(tenant, rule, value)] = app_ids
        return found
