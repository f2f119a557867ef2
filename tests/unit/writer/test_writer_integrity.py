"""The writer's verdict on a record's required references (pure logic)."""

from __future__ import annotations

from uuid import UUID

from rostersync_libs.events import EntityType, Origin, RecordEvent, RecordFacts, record_event
from rostersync_libs.ids import internal_id
from rostersync_mapper.mapping import map_event
from rostersync_writer.integrity import Rejection, TargetState, judge
from rostersync_writer.references import required_references

RUN = UUID("01900000-0000-7000-8000-000000000002")
EARLIER = UUID("01900000-0000-7000-8000-000000000001")
USER = internal_id("d1", EntityType.USER, "u1")
CLASS = internal_id("d1", EntityType.CLASS, "k1")
SCHOOL = internal_id("d1", EntityType.ORG, "s1")


def enrollment(facts: RecordFacts | None = None) -> RecordEvent:
    event = record_event(
        tenant="d1", source="csv", run_id=RUN, entity=EntityType.ENROLLMENT, sourced_id="e1",
        payload={"sourcedId": "e1", "classSourcedId": "k1", "schoolSourcedId": "s1",
                 "userSourcedId": "u1", "role": "student"},
        origin=Origin(file="enrollments.csv", row=12), facts=facts,
    )  # fmt: skip
    mapped = map_event(event).forward
    assert mapped is not None
    return mapped


def active(run: UUID = RUN) -> TargetState:
    return TargetState(active=True, last_seen_run=run)


def test_required_references_are_read_with_the_mappers_ids() -> None:
    refs = required_references(enrollment(RecordFacts(unresolved={"schoolSourcedId": ["s1"]})))
    assert {(r.column, r.target, r.sourced_id, r.internal_id, r.in_run) for r in refs} == {
        ("classSourcedId", EntityType.CLASS, "k1", CLASS, True),
        ("schoolSourcedId", EntityType.ORG, "s1", SCHOOL, False),
        ("userSourcedId", EntityType.USER, "u1", USER, True),
    }


def test_demographics_require_their_user() -> None:
    event = record_event(
        tenant="d1", source="csv", run_id=RUN, entity=EntityType.DEMOGRAPHIC, sourced_id="u1",
        payload={"sourcedId": "u1", "sex": "female"},
    )  # fmt: skip
    mapped = map_event(event).forward
    assert mapped is not None
    [ref] = required_references(mapped)
    assert (ref.column, ref.target, ref.internal_id) == ("sourcedId", EntityType.USER, USER)


def test_accepted_when_every_target_has_its_verdict_in_the_run() -> None:
    event = enrollment()
    states = {USER: active(), CLASS: active(), SCHOOL: active()}
    verdict = judge(event, required_references(event), states, {}, final=False)
    assert verdict.accepted


def test_waits_for_a_target_of_the_run_not_seen_yet_even_if_active_from_before() -> None:
    event = enrollment()
    states = {USER: active(EARLIER), CLASS: active(), SCHOOL: active()}
    verdict = judge(event, required_references(event), states, {}, final=False)
    assert (verdict.waits, verdict.findings) == ([USER], [])
    # When the run completes, the active row is enough.
    assert judge(event, required_references(event), states, {}, final=True).accepted


def test_a_target_outside_the_run_is_judged_by_the_table_alone() -> None:
    event = enrollment(RecordFacts(unresolved={"userSourcedId": ["u1"]}))
    states = {USER: active(EARLIER), CLASS: active(), SCHOOL: active()}
    assert judge(event, required_references(event), states, {}, final=False).accepted


def test_a_target_rejected_in_the_run_rejects_with_the_chain() -> None:
    event = enrollment()
    states = {USER: active(), CLASS: active(), SCHOOL: active()}
    rejected = {USER: Rejection("users.csv", 4, ["invalid_enumeration"])}
    verdict = judge(event, required_references(event), states, rejected, final=False)
    [finding] = verdict.findings
    assert (finding.code, finding.file, finding.row, finding.column, finding.value) == (
        "reference_rejected", "enrollments.csv", 12, "userSourcedId", "u1",
    )  # fmt: skip
    assert finding.message == "that user was rejected in this run (users.csv:4 invalid_enumeration)"
    assert verdict.waits == []


def test_missing_or_archived_targets_reject_only_when_the_run_completes() -> None:
    event = enrollment()
    states = {CLASS: TargetState(active=False, last_seen_run=RUN), SCHOOL: active()}
    waiting = judge(event, required_references(event), states, {}, final=False)
    assert sorted(map(str, waiting.waits)) == sorted(map(str, [CLASS, USER]))
    final = judge(event, required_references(event), states, {}, final=True)
    assert {(f.code, f.column, f.message) for f in final.findings} == {
        ("reference_missing", "classSourcedId", "class 'k1' is archived"),
        ("reference_missing", "userSourcedId", "user 'u1' is not a record of this tenant"),
    }


def test_records_without_required_references_are_always_accepted() -> None:
    org = record_event(
        tenant="d1", source="csv", run_id=RUN, entity=EntityType.ORG, sourced_id="s1",
        payload={"sourcedId": "s1", "name": "S", "type": "school", "parentSourcedId": "d"},
    )  # fmt: skip
    assert required_references(org) == []
    assert judge(org, [], {}, {}, final=False).accepted
