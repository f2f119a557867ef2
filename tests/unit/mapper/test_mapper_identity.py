"""Identity resolution decisions, with fake lookups (no Kafka, no PostgreSQL)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from rostersync_libs.events import EntityType, Operation, Origin, RecordEvent, record_event
from rostersync_libs.identities import IdentityDecision, Key, Reason
from rostersync_libs.ids import internal_id
from rostersync_libs.tenants import MatchRules, RekeyKey
from rostersync_mapper.identity_map import IdentityMap
from rostersync_mapper.mapping import map_record
from rostersync_mapper.resolver import ExistingUser, IdentityResolver, Rule

RUN = uuid4()
APP_A = UUID("00000000-0000-4000-8000-00000000000a")
APP_B = UUID("00000000-0000-4000-8000-00000000000b")
ALL_RULES = MatchRules(
    teacher_by_email=True, user_by_username=True, user_by_identifier=True, school_by_nces=True
)


class FakeLookups:
    """The writer's tables, the application directory and the claims, in memory; counts calls."""

    def __init__(self) -> None:
        self.known_keys: set[Key] = set()
        self.users: list[dict[str, Any]] = []  # tenant, sourced_id, internal_id, and keys
        self.directory_rows: list[dict[str, Any]] = []  # tenant, entity, app_id, columns
        self.claims: dict[tuple[str, str, UUID], str] = {}
        self.calls: list[str] = []

    async def known(self, keys: set[Key]) -> set[Key]:
        self.calls.append("known")
        return keys & self.known_keys

    async def users_by(
        self, tenant: str, key: RekeyKey, values: set[str]
    ) -> dict[str, list[ExistingUser]]:
        self.calls.append(f"users_by:{key}")
        found: dict[str, list[ExistingUser]] = {}
        for u in self.users:
            if u["tenant"] == tenant and u.get(key) in values:
                found.setdefault(u[key], []).append(ExistingUser(u["sourced_id"], u["internal_id"]))
        return found

    async def directory(
        self, tenant: str, entity: EntityType, rule: Rule, values: set[str]
    ) -> dict[str, list[UUID]]:
        self.calls.append(f"directory:{rule}")
        column = {"teacher_by_email": "email", "user_by_username": "username",
                  "user_by_identifier": "identifier", "school_by_nces": "nces_id"}[rule]  # fmt: skip
        found: dict[str, list[UUID]] = {}
        for row in self.directory_rows:
            value = row.get(column)
            if value is not None and column == "email":
                value = value.lower()
            if row["tenant"] == tenant and row["entity"] == entity.value and value in values:
                found.setdefault(value, []).append(row["app_id"])
        return found

    async def claim(self, decisions: list[IdentityDecision]) -> set[Key]:
        self.calls.append("claim")
        held: set[Key] = set()
        for d in decisions:
            slot = (d.tenant, d.entity.value, d.internal_id)
            holder = self.claims.get(slot)
            if holder is None or holder in (d.sourced_id, d.rekeyed_from):
                self.claims[slot] = d.sourced_id
                held.add(d.map_key)
        return held


def user(
    sourced_id: str, tenant: str = "t", op: Operation = Operation.UPSERT, **fields: Any
) -> RecordEvent:
    return record_event(
        tenant=tenant,
        source="csv",
        run_id=RUN,
        entity=EntityType.USER,
        sourced_id=sourced_id,
        payload={"sourcedId": sourced_id, **fields},
        operation=op,
        origin=Origin(file="users.csv", row=2),
        oneroster_version="1.1" if "role" in fields else "1.2",
    )


def org(sourced_id: str, **fields: Any) -> RecordEvent:
    return record_event(
        tenant="t", source="csv", run_id=RUN, entity=EntityType.ORG, sourced_id=sourced_id,
        payload={"sourcedId": sourced_id, "name": "N", **fields},
    )  # fmt: skip


def enrollment(sourced_id: str, user_sourced_id: str) -> RecordEvent:
    return record_event(
        tenant="t", source="csv", run_id=RUN, entity=EntityType.ENROLLMENT, sourced_id=sourced_id,
        payload={"sourcedId": sourced_id, "classSourcedId": "k1", "schoolSourcedId": "s1",
                 "userSourcedId": user_sourced_id, "role": "student"},
    )  # fmt: skip


def default(sourced_id: str, entity: EntityType = EntityType.USER, tenant: str = "t") -> UUID:
    return internal_id(tenant, entity, sourced_id)


def resolver(
    lookups: FakeLookups, rules: MatchRules | None = None, ids: IdentityMap | None = None
) -> IdentityResolver:
    chosen = rules or MatchRules()
    return IdentityResolver(IdentityMap() if ids is None else ids, lookups, lambda tenant: chosen)


def crosswalk(
    sourced_id: str, app_id: UUID, entity: EntityType = EntityType.USER
) -> IdentityDecision:
    return IdentityDecision(
        tenant="t", entity=entity, sourced_id=sourced_id, internal_id=app_id,
        reason=Reason.CROSSWALK,
    )  # fmt: skip


async def test_identity_map_entries_win_without_any_lookup() -> None:
    ids = IdentityMap()
    ids.apply(crosswalk("u1", APP_A))
    lookups = FakeLookups()
    lookups.directory_rows.append(
        {"tenant": "t", "entity": "users", "app_id": APP_B, "username": "sam"}
    )
    found, decided = await resolver(lookups, ALL_RULES, ids).resolve([user("u1", username="sam")])
    assert [r.internal_id for r in found] == [APP_A]
    assert decided == []
    assert lookups.calls == []


async def test_no_lookup_when_no_rule_can_apply() -> None:
    lookups = FakeLookups()
    events = [
        org("s1", type="school", identifier="340000100001"),  # school_by_nces is off
        enrollment("e1", "u1"),
        user("u1", role="student", username="sam"),  # 1.1: no userMasterIdentifier to re-key by
        user("u2", op=Operation.DELETE, userMasterIdentifier="M1"),
        user("u3", op=Operation.SEEN),
    ]
    found, decided = await resolver(lookups).resolve(events)
    assert [r.internal_id for r in found] == [
        default("s1", EntityType.ORG), default("e1", EntityType.ENROLLMENT),
        default("u1"), default("u2"), default("u3"),
    ]  # fmt: skip
    assert decided == []
    assert lookups.calls == []


async def test_lookups_are_batched_and_known_records_are_not_rekeyed() -> None:
    lookups = FakeLookups()
    lookups.known_keys = {("t", "users", f"u{i}") for i in range(5)}
    lookups.users.append({"tenant": "t", "sourced_id": "old", "internal_id": APP_A,
                          "userMasterIdentifier": "M1"})  # fmt: skip
    events = [user(f"u{i}", userMasterIdentifier="M1") for i in range(5)]
    found, decided = await resolver(lookups).resolve(events)
    assert [r.internal_id for r in found] == [default(f"u{i}") for i in range(5)]
    assert decided == []
    assert lookups.calls == ["known"]  # one query for the batch, nothing else
    await resolver(lookups).resolve(events)


async def test_a_rekeyed_user_keeps_its_old_id_and_references_follow() -> None:
    lookups = FakeLookups()
    old_id = default("old-u1")
    lookups.users.append({"tenant": "t", "sourced_id": "old-u1", "internal_id": old_id,
                          "userMasterIdentifier": "M1", "username": "sam"})  # fmt: skip
    ids = IdentityMap()
    events = [user("new-u1", userMasterIdentifier="M1"), enrollment("e1", "new-u1")]
    found, decided = await resolver(lookups, ids=ids).resolve(events)
    assert found[0].internal_id == old_id
    assert found[0].rekeyed_from == "old-u1"
    assert [(d.sourced_id, d.reason, d.rule, d.rekeyed_from) for d in decided] == [
        ("new-u1", Reason.REKEY, "userMasterIdentifier", "old-u1")
    ]
    mapped_user = map_record(events[0], found[0], ids).forward
    mapped_enrollment = map_record(events[1], found[1], ids).forward
    assert mapped_user is not None
    assert mapped_enrollment is not None
    assert mapped_user.internal_id == old_id
    assert mapped_user.payload["_rekeyedFrom"] == "old-u1"
    assert mapped_enrollment.payload["userInternalId"] == str(old_id)
    assert lookups.calls == ["known", "users_by:userMasterIdentifier", "claim"]


async def test_rekey_by_several_keys_in_the_tenants_order() -> None:
    lookups = FakeLookups()
    lookups.users.append({"tenant": "t", "sourced_id": "old", "internal_id": APP_A,
                          "username": "sam"})  # fmt: skip
    rules = MatchRules(rekey_users_by=("userMasterIdentifier", "username"))
    found, decided = await resolver(lookups, rules).resolve(
        [user("new", userMasterIdentifier="M9", username="sam")]
    )
    assert found[0].internal_id == APP_A
    assert decided[0].rule == "username"


async def test_two_old_users_with_the_key_is_ambiguous_and_keeps_the_default() -> None:
    lookups = FakeLookups()
    for n in (1, 2):
        lookups.users.append({"tenant": "t", "sourced_id": f"old{n}", "internal_id": uuid4(),
                              "userMasterIdentifier": "M1"})  # fmt: skip
    found, decided = await resolver(lookups).resolve([user("new", userMasterIdentifier="M1")])
    assert found[0].internal_id == default("new")
    assert decided == []
    assert [(f.code, f.severity.value) for f in found[0].findings] == [
        ("ambiguous_match", "warning")
    ]
    assert "2 candidates" in found[0].findings[0].message
    assert "M1" not in found[0].findings[0].message  # no personal values
    assert (found[0].findings[0].file, found[0].findings[0].row) == ("users.csv", 2)


async def test_teacher_by_email_is_case_insensitive_and_only_for_1_1_teachers() -> None:
    lookups = FakeLookups()
    lookups.directory_rows.append(
        {"tenant": "t", "entity": "users", "app_id": APP_A, "email": "Tina@D1.example"}
    )
    rules = MatchRules(teacher_by_email=True)
    events = [
        user("t1", role="teacher", email="tina@d1.EXAMPLE"),
        user("s1", role="student", email="tina@d1.example"),
        user("x1", email="tina@d1.example", userMasterIdentifier="M-x1"),  # 1.2: no role
    ]
    found, decided = await resolver(lookups, rules).resolve(events)
    assert [r.internal_id for r in found] == [APP_A, default("s1"), default("x1")]
    assert [(d.sourced_id, d.reason, d.rule) for d in decided] == [
        ("t1", Reason.MATCH, "teacher_by_email")
    ]
    assert "directory:teacher_by_email" in lookups.calls


async def test_several_directory_candidates_are_never_guessed() -> None:
    lookups = FakeLookups()
    for app_id in (APP_A, APP_B):
        lookups.directory_rows.append(
            {"tenant": "t", "entity": "users", "app_id": app_id, "username": "sam"}
        )
    found, decided = await resolver(lookups, MatchRules(user_by_username=True)).resolve(
        [user("u1", role="student", username="sam")]
    )
    assert found[0].internal_id == default("u1")
    assert decided == []
    (finding,) = found[0].findings
    assert finding.code == "ambiguous_match"
    assert "user_by_username" in finding.message
    assert "2 candidates" in finding.message
    assert "sam" not in finding.message


async def test_an_app_id_is_never_given_twice() -> None:
    lookups = FakeLookups()
    lookups.directory_rows.append(
        {"tenant": "t", "entity": "users", "app_id": APP_A, "username": "sam"}
    )
    lookups.directory_rows.append(
        {"tenant": "t", "entity": "users", "app_id": APP_B, "identifier": "S9"}
    )
    ids = IdentityMap()
    ids.apply(crosswalk("other", APP_B))  # an operator gave APP_B to another record
    events = [
        user("u1", role="student", username="sam"),
        user("u2", role="student", username="sam"),  # same batch, same candidate
        user("u3", role="student", identifier="S9"),
    ]
    found, decided = await resolver(lookups, ALL_RULES, ids).resolve(events)
    assert [r.internal_id for r in found] == [APP_A, default("u2"), default("u3")]
    assert [d.sourced_id for d in decided] == ["u1"]
    assert [f.code for f in found[1].findings] == ["identity_conflict"]
    assert [f.code for f in found[2].findings] == ["identity_conflict"]


async def test_a_claim_held_by_another_instance_is_a_conflict() -> None:
    lookups = FakeLookups()
    lookups.directory_rows.append(
        {"tenant": "t", "entity": "users", "app_id": APP_A, "username": "sam"}
    )
    lookups.claims[("t", "users", APP_A)] = "elsewhere"
    ids = IdentityMap()
    found, decided = await resolver(lookups, ALL_RULES, ids).resolve(
        [user("u1", role="student", username="sam")]
    )
    assert found[0].internal_id == default("u1")
    assert decided == []
    assert ("t", "users", "u1") not in ids
    assert [f.code for f in found[0].findings] == ["identity_conflict"]


async def test_records_seen_before_are_never_matched_again() -> None:
    lookups = FakeLookups()
    r = resolver(lookups, MatchRules(user_by_username=True))
    first, _ = await r.resolve([user("u1", role="student", username="sam")])
    assert first[0].internal_id == default("u1")  # nothing in the directory yet
    lookups.directory_rows.append(
        {"tenant": "t", "entity": "users", "app_id": APP_A, "username": "sam"}
    )
    lookups.calls.clear()
    again, decided = await r.resolve([user("u1", role="student", username="sam")])
    assert again[0].internal_id == default("u1")
    assert decided == []
    assert lookups.calls == []


async def test_two_versions_of_one_record_in_a_batch_get_one_decision() -> None:
    lookups = FakeLookups()
    lookups.directory_rows.append(
        {"tenant": "t", "entity": "users", "app_id": APP_A, "username": "sam"}
    )
    events = [
        user("u1", role="student", username="sam"),
        user("u1", role="student", username="sam"),
    ]
    found, decided = await resolver(lookups, ALL_RULES).resolve(events)
    assert [r.internal_id for r in found] == [APP_A, APP_A]
    assert len(decided) == 1
    assert found[1].findings == []


async def test_school_by_nces_only_for_schools() -> None:
    lookups = FakeLookups()
    lookups.directory_rows.append(
        {"tenant": "t", "entity": "orgs", "app_id": APP_A, "nces_id": "340000100001"}
    )
    events = [
        org("s1", type="school", identifier="340000100001"),
        org("d1", type="district", identifier="340000100001"),
    ]
    found, decided = await resolver(lookups, MatchRules(school_by_nces=True)).resolve(events)
    assert [r.internal_id for r in found] == [APP_A, default("d1", EntityType.ORG)]
    assert [(d.entity, d.rule) for d in decided] == [(EntityType.ORG, "school_by_nces")]


async def test_tenants_never_see_each_others_candidates() -> None:
    lookups = FakeLookups()
    lookups.users.append({"tenant": "a", "sourced_id": "old", "internal_id": APP_A,
                          "userMasterIdentifier": "M1"})  # fmt: skip
    events = [user("new", tenant="b", userMasterIdentifier="M1"),
              user("new", tenant="a", userMasterIdentifier="M1")]  # fmt: skip
    found, _ = await resolver(lookups).resolve(events)
    assert [r.internal_id for r in found] == [default("new", tenant="b"), APP_A]


async def test_a_returning_old_sourced_id_takes_the_person_back() -> None:
    lookups = FakeLookups()
    person = default("old")
    lookups.users.append({"tenant": "t", "sourced_id": "old", "internal_id": person,
                          "userMasterIdentifier": "M1"})  # fmt: skip
    ids = IdentityMap()
    r = resolver(lookups, ids=ids)
    first, _ = await r.resolve([user("new", userMasterIdentifier="M1")])
    assert first[0].internal_id == person
    # The writer moved the row: "old" is gone, "new" has the person's id. Then "old" returns.
    lookups.users = [{"tenant": "t", "sourced_id": "new", "internal_id": person,
                      "userMasterIdentifier": "M1"}]  # fmt: skip
    back, decided = await r.resolve([user("old", userMasterIdentifier="M1")])
    assert back[0].internal_id == person
    assert back[0].rekeyed_from == "new"
    assert [d.rekeyed_from for d in decided] == ["new"]


async def test_a_seen_record_keeps_its_payload_and_gets_its_mapped_id() -> None:
    ids = IdentityMap()
    ids.apply(crosswalk("u1", APP_A))
    event = user("u1", op=Operation.SEEN, grades=["9"], role="administrator")
    found, _ = await resolver(FakeLookups(), ids=ids).resolve([event])
    mapped = map_record(event, found[0], ids).forward
    assert mapped is not None
    assert mapped.internal_id == APP_A
    assert mapped.payload == event.payload
    assert mapped.operation is Operation.SEEN
