"""The writer alone, on a real Kafka broker and a real PostgreSQL: every entity, findings, runs.

Mapped events are built as the fetcher and mapper build them (``record_event`` + ``map_event``)
and produced straight to the mapped topic; findings and run events to their own topics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from functools import partial
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from rostersync_libs.events import EntityType, Operation, Origin, RecordEvent, encode, record_event
from rostersync_libs.findings import Finding, FindingsEvent, Severity
from rostersync_libs.ids import internal_id
from rostersync_libs.kafka import ensure_topics, partitions_of
from rostersync_libs.markers import run_end_event
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.settings import ServiceSettings
from rostersync_mapper.mapping import map_event
from rostersync_writer import app as writer_app
from rostersync_writer.settings import WriterSettings

from tests.e2e import sealing_producer
from tests.pipeline import wait_for_run
from tests.wire import send_records

pytestmark = pytest.mark.integration

A = "district-a"
B = "district-b"
E = EntityType
AT = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)


def mapped(
    tenant: str,
    run_id: UUID,
    entity: EntityType,
    sourced_id: str,
    row: int,
    payload: dict[str, Any],
    *,
    version: str = "1.1",
    operation: Operation = Operation.UPSERT,
    modified: datetime | None = None,
) -> RecordEvent:
    """A mapped event as the pipeline makes it (delta rows carry status and dateLastModified)."""
    head: dict[str, Any] = {"sourcedId": sourced_id}
    if modified is not None:
        head["status"] = "tobedeleted" if operation is Operation.DELETE else "active"
        head["dateLastModified"] = modified.isoformat().replace("+00:00", "Z")
    event = record_event(
        tenant=tenant,
        source="csv",
        run_id=run_id,
        entity=entity,
        sourced_id=sourced_id,
        payload={**head, **payload},
        operation=operation,
        date_last_modified=modified,
        origin=Origin(file=f"{entity.value}.csv", row=row),
        oneroster_version=version,
        mode="bulk" if modified is None else "delta",
    )
    forward = map_event(event).forward
    assert forward is not None
    return forward


def bundle_1_1(run_id: UUID) -> list[RecordEvent]:
    def m(entity: EntityType, sid: str, row: int, payload: dict[str, Any]) -> RecordEvent:
        return mapped(A, run_id, entity, sid, row, payload)

    return [
        m(E.ORG, "d1", 2, {"name": "District", "type": "district", "identifier": "NCES1"}),
        m(E.ORG, "s1", 3, {"name": "School", "type": "school", "parentSourcedId": "d1"}),
        m(E.ACADEMIC_SESSION, "y1", 2, {"title": "2024-25", "type": "schoolYear",
          "startDate": "2024-08-01", "endDate": "2025-07-01", "schoolYear": "2025"}),
        m(E.ACADEMIC_SESSION, "t1", 3, {"title": "Fall", "type": "term",
          "startDate": "2024-08-15", "endDate": "2024-13-40", "parentSourcedId": "y1",
          "schoolYear": "2025"}),
        m(E.COURSE, "c1", 2, {"schoolYearSourcedId": "y1", "title": "Algebra",
          "courseCode": "ALG1", "grades": ["09", "10"], "orgSourcedId": "s1",
          "subjects": ["Math"], "subjectCodes": ["M1"]}),
        m(E.CLASS, "k1", 2, {"title": "Algebra P1", "grades": ["09"], "courseSourcedId": "c1",
          "classCode": "ALG1-1", "classType": "scheduled", "location": "Room 9",
          "schoolSourcedId": "s1", "termSourcedIds": ["t1", "y1"], "subjects": ["Math"],
          "periods": ["1", "2"], "metadata.room.capacity": "30"}),
        m(E.USER, "t1", 2, {"enabledUser": "true", "orgSourcedIds": ["s1"], "role": "teacher",
          "username": "tina", "givenName": "Tina", "familyName": "Teach",
          "email": "t@x.example", "userIds": ["{LDAP:1}"]}),
        m(E.USER, "st1", 3, {"enabledUser": "true", "orgSourcedIds": ["s1", "d1"],
          "role": "student", "username": "sam", "givenName": "Sam", "familyName": "Study",
          "grades": ["09"], "agentSourcedIds": ["p1"]}),
        m(E.USER, "p1", 4, {"enabledUser": "false", "orgSourcedIds": ["s1"], "role": "parent",
          "username": "pat", "givenName": "Pat", "familyName": "Study",
          "agentSourcedIds": ["st1"]}),
        m(E.ENROLLMENT, "e1", 2, {"classSourcedId": "k1", "schoolSourcedId": "s1",
          "userSourcedId": "t1", "role": "teacher", "primary": "true",
          "beginDate": "2024-08-15", "endDate": "2025-06-30"}),
        m(E.ENROLLMENT, "e2", 3, {"classSourcedId": "k1", "schoolSourcedId": "s1",
          "userSourcedId": "st1", "role": "student", "primary": "false"}),
        m(E.DEMOGRAPHIC, "st1", 2, {"birthDate": "2010-04-05", "sex": "male", "white": "true",
          "cityOfBirth": "Springfield"}),
    ]  # fmt: skip


def bundle_1_2(run_id: UUID) -> list[RecordEvent]:
    def m(entity: EntityType, sid: str, row: int, payload: dict[str, Any]) -> RecordEvent:
        return mapped(B, run_id, entity, sid, row, payload, version="1.2.1")

    return [
        m(E.ORG, "s1", 2, {"name": "School B", "type": "ext:academy"}),
        m(E.USER, "u1", 2, {"enabledUser": "true", "username": "al", "givenName": "Alexander",
          "familyName": "Bee", "userMasterIdentifier": "M-1", "preferredGivenName": "Al",
          "preferredMiddleName": "J", "preferredFamilyName": "B", "primaryOrgSourcedId": "s1",
          "pronouns": "he/him", "metadata.district.house": "red"}),
        m(E.USER_PROFILE, "up1", 2, {"userSourcedId": "u1", "profileType": "lms",
          "vendorId": "acme", "applicationId": "default", "description": "LMS login",
          "credentialType": "login", "username": "al.bee"}),
        m(E.ROLE, "r1", 2, {"userSourcedId": "u1", "roleType": "primary", "role": "teacher",
          "beginDate": "2024-08-01", "endDate": "someday", "orgSourcedId": "s1",
          "userProfileSourcedId": "up1"}),
        m(E.DEMOGRAPHIC, "u1", 2, {"sex": "unspecified", "birthDate": "05/04/2010"}),
    ]  # fmt: skip


def ref(tenant: str, entity: EntityType, sourced_id: str) -> UUID:
    return internal_id(tenant, entity, sourced_id)


# --- harness ---------------------------------------------------------------------------------


class Sender:
    """Produces to the test's topics; markers go to every partition of mapped."""

    def __init__(self, settings: ServiceSettings, producer: AIOKafkaProducer) -> None:
        self.topics = settings.topics
        self.producer = producer

    async def records(self, events: list[RecordEvent]) -> None:
        await send_records(self.producer, self.topics.mapped, events)

    async def end_run(
        self, tenant: str, run_id: UUID, counts: dict[str, int], *, fetched: bool = True
    ) -> None:
        """The run's markers, and (unless the test sent its own) the fetcher's ``fetched`` run
        event: the writer completes a run only with both (run_ends.py)."""
        parts = await partitions_of(self.producer, self.topics.mapped)
        marker = run_end_event(
            tenant=tenant, source="csv", run_id=run_id, fanout=len(parts), counts=counts
        )
        for p in parts:
            await self.producer.send(
                self.topics.mapped, encode(marker), key=marker.key(), partition=p
            )
        if fetched:
            await self.run_events(
                RunEvent(tenant=tenant, run_id=run_id, source="csv", phase=RunPhase.FETCHED,
                         at=AT, file_counts=counts, bulk_entities=[], fanout=len(parts))
            )  # fmt: skip
        await self.producer.flush()

    async def findings(self, *events: FindingsEvent) -> None:
        for event in events:
            data = event.model_dump_json(exclude_none=True).encode()
            await self.producer.send(self.topics.findings, data, key=event.key())
        await self.producer.flush()

    async def run_events(self, *events: RunEvent) -> None:
        for event in events:
            data = event.model_dump_json().encode()
            await self.producer.send(self.topics.runs, data, key=event.key())
        await self.producer.flush()


@pytest.fixture
async def send(settings: ServiceSettings) -> AsyncIterator[Sender]:
    """A running writer (and a producer): the writer stops, and must not have failed, at the end."""
    await ensure_topics(settings)
    stop = asyncio.Event()
    writer = asyncio.create_task(writer_app.run(WriterSettings(**settings.model_dump()), stop))
    try:
        async with sealing_producer(settings, "test-writer-entities") as producer:
            yield Sender(settings, producer)
    finally:
        stop.set()
        await writer  # re-raises whatever stopped the writer


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError):
                if await check():
                    return
            await asyncio.sleep(0.2)


async def rows(db: asyncpg.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await db.fetch(sql)]


TABLES = (
    "orgs", "academic_sessions", "courses", "classes", "class_terms", "users", "user_orgs",
    "guardian_links", "enrollments", "demographics", "user_profiles", "user_roles", "findings",
    "sync_runs", "run_markers",
)  # fmt: skip


async def snapshot(db: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order (updated_at included where there is one)."""
    return {t: sorted(map(tuple, await db.fetch(f"SELECT * FROM {t}")), key=repr) for t in TABLES}


# --- the tests ---------------------------------------------------------------------------------


async def test_every_entity_findings_and_run_events_land_in_their_tables(
    send: Sender, settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    run_a, run_b, run_failed = uuid4(), uuid4(), uuid4()
    manifest = {"manifest.version": "1.0", "oneroster.version": "1.1", "file.orgs": "bulk"}
    started_a = RunEvent(tenant=A, run_id=run_a, source="csv", phase=RunPhase.STARTED, at=AT)
    fetched_a = started_a.model_copy(
        update={"phase": RunPhase.FETCHED, "oneroster_version": "1.1", "manifest": manifest,
                "file_counts": {"orgs.csv": 2, "users.csv": 3},
                "skipped_files": {"results.csv": "gradebook is not ingested"},
                "at": datetime(2025, 9, 1, 8, 5, tzinfo=UTC)}
    )  # fmt: skip
    fetched_b = RunEvent(
        tenant=B, run_id=run_b, source="csv", phase=RunPhase.FETCHED, at=AT,
        oneroster_version="1.2.1", file_counts={"orgs.csv": 1},
    )  # fmt: skip
    late_started_b = fetched_b.model_copy(update={"phase": RunPhase.STARTED, "file_counts": {}})
    started_failed = RunEvent(
        tenant=A, run_id=run_failed, source="csv", phase=RunPhase.STARTED, at=AT
    )
    failed = started_failed.model_copy(
        update={"phase": RunPhase.FAILED, "reason": "bundle.zip: not a zip file"}
    )

    await send.run_events(started_a)
    await send.records(bundle_1_1(run_a))
    await send.records(bundle_1_2(run_b))
    await send.run_events(fetched_b, late_started_b, started_failed, failed)

    bad_role = Finding(code="invalid_enumeration", severity=Severity.ERROR, message="not a role",
                       file="users.csv", row=5, column="role", value="principal")  # fmt: skip
    no_name = Finding(code="missing_required_data", severity=Severity.ERROR,
                      message="users.csv requires a value in familyName", file="users.csv",
                      row=5, column="familyName")  # fmt: skip
    record_findings = FindingsEvent(tenant=A, run_id=str(run_a), stage="validator",
                                    entity="users", sourced_id="bad1", rejected=True,
                                    findings=[bad_role, no_name])  # fmt: skip
    file_finding = FindingsEvent(
        tenant=A, run_id=str(run_a), stage="validator", entity="orgs",
        findings=[Finding(code="unknown_column", severity=Severity.WARNING,
                          message="extra column", file="orgs.csv", column="colour")],
    )  # fmt: skip
    # The record's findings twice (redelivery), the file's once per partition (as a stage does).
    await send.findings(record_findings, record_findings, file_finding, file_finding, file_finding)
    await send.run_events(fetched_a)
    # Its fetched_a (above) published these counts: markers count only with them (run_ends.py).
    await send.end_run(A, run_a, {"orgs.csv": 2, "users.csv": 3}, fetched=False)
    await send.end_run(B, run_b, {"orgs.csv": 1}, fetched=False)

    await wait_for_run(settings, A, run_a)
    await wait_for_run(settings, B, run_b)

    async def side_topics_done() -> bool:
        found = await db.fetchval("SELECT count(*) FROM findings")
        fetched = await db.fetchval(
            "SELECT count(*) FROM sync_runs WHERE fetch_status <> 'started'"
        )
        return bool(found == 3 and fetched == 3)

    await eventually(side_topics_done)

    a, b = partial(ref, A), partial(ref, B)

    assert await rows(db, "SELECT tenant_id, sourced_id, internal_id, name, org_type, identifier,"
                          " parent_internal_id, source, archived_at FROM orgs"
                          " ORDER BY tenant_id, sourced_id") == [
        (A, "d1", a(E.ORG, "d1"), "District", "district", "NCES1", None, "csv", None),
        (A, "s1", a(E.ORG, "s1"), "School", "school", None, a(E.ORG, "d1"), "csv", None),
        (B, "s1", b(E.ORG, "s1"), "School B", "ext:academy", None, None, "csv", None),
    ]  # fmt: skip
    assert await rows(db, "SELECT sourced_id, title, session_type, start_date, end_date,"
                          " parent_internal_id, school_year FROM academic_sessions"
                          " ORDER BY sourced_id") == [
        # t1's endDate does not parse: NULL here, as sent in the payload
        ("t1", "Fall", "term", date(2024, 8, 15), None, a(E.ACADEMIC_SESSION, "y1"), 2025),
        ("y1", "2024-25", "schoolYear", date(2024, 8, 1), date(2025, 7, 1), None, 2025),
    ]  # fmt: skip
    assert (
        await db.fetchval(
            "SELECT payload->>'endDate' FROM academic_sessions WHERE sourced_id = 't1'"
        )
        == "2024-13-40"
    )
    assert await rows(db, "SELECT sourced_id, title, course_code, grades, org_internal_id,"
                          " school_year_internal_id, subjects FROM courses") == [
        ("c1", "Algebra", "ALG1", ["09", "10"], a(E.ORG, "s1"), a(E.ACADEMIC_SESSION, "y1"),
         ["Math"]),
    ]  # fmt: skip
    assert await rows(db, "SELECT sourced_id, title, class_code, class_type, location,"
                          " course_internal_id, school_internal_id, grades, subjects, periods,"
                          " payload->>'metadata.room.capacity' FROM classes") == [
        ("k1", "Algebra P1", "ALG1-1", "scheduled", "Room 9", a(E.COURSE, "c1"), a(E.ORG, "s1"),
         ["09"], ["Math"], ["1", "2"], "30"),
    ]  # fmt: skip
    assert set(await rows(db, "SELECT tenant_id, class_internal_id, term_internal_id"
                              " FROM class_terms")) == {
        (A, a(E.CLASS, "k1"), a(E.ACADEMIC_SESSION, "t1")),
        (A, a(E.CLASS, "k1"), a(E.ACADEMIC_SESSION, "y1")),
    }  # fmt: skip
    assert await rows(db, "SELECT tenant_id, sourced_id, enabled, role, username, given_name,"
                          " family_name, email, grades, user_master_identifier,"
                          " preferred_given_name, preferred_family_name, primary_org_internal_id"
                          " FROM users ORDER BY tenant_id, sourced_id") == [
        (A, "p1", False, "parent", "pat", "Pat", "Study", None, [], None, None, None, None),
        (A, "st1", True, "student", "sam", "Sam", "Study", None, ["09"], None, None, None, None),
        (A, "t1", True, "teacher", "tina", "Tina", "Teach", "t@x.example", [], None, None, None,
         None),
        (B, "u1", True, None, "al", "Alexander", "Bee", None, [], "M-1", "Al", "B",
         b(E.ORG, "s1")),
    ]  # fmt: skip
    payload = orjson.loads(await db.fetchval("SELECT payload FROM users WHERE sourced_id = 'u1'"))
    assert payload["metadata.district.house"] == "red"
    assert payload["pronouns"] == "he/him"
    assert set(await rows(db, "SELECT tenant_id, user_internal_id, org_internal_id, role"
                              " FROM user_orgs")) == {
        (A, a(E.USER, "t1"), a(E.ORG, "s1"), "teacher"),
        (A, a(E.USER, "st1"), a(E.ORG, "s1"), "student"),
        (A, a(E.USER, "st1"), a(E.ORG, "d1"), "student"),
        (A, a(E.USER, "p1"), a(E.ORG, "s1"), "parent"),
    }  # fmt: skip
    assert set(await rows(db, "SELECT tenant_id, user_internal_id, agent_internal_id"
                              " FROM guardian_links")) == {
        (A, a(E.USER, "st1"), a(E.USER, "p1")),
        (A, a(E.USER, "p1"), a(E.USER, "st1")),
    }  # fmt: skip
    assert await rows(db, "SELECT sourced_id, class_internal_id, school_internal_id,"
                          " user_internal_id, role, is_primary, begin_date, end_date"
                          " FROM enrollments ORDER BY sourced_id") == [
        ("e1", a(E.CLASS, "k1"), a(E.ORG, "s1"), a(E.USER, "t1"), "teacher", True,
         date(2024, 8, 15), date(2025, 6, 30)),
        ("e2", a(E.CLASS, "k1"), a(E.ORG, "s1"), a(E.USER, "st1"), "student", False, None,
         None),
    ]  # fmt: skip
    assert await rows(db, "SELECT tenant_id, sourced_id, internal_id, user_internal_id,"
                          " birth_date, sex, payload->>'cityOfBirth' FROM demographics"
                          " ORDER BY tenant_id") == [
        (A, "st1", a(E.DEMOGRAPHIC, "st1"), a(E.USER, "st1"), date(2010, 4, 5), "male",
         "Springfield"),
        (B, "u1", b(E.DEMOGRAPHIC, "u1"), b(E.USER, "u1"), None, "unspecified", None),
    ]  # fmt: skip
    assert await rows(db, "SELECT tenant_id, sourced_id, user_internal_id, profile_type,"
                          " vendor_id, application_id, credential_type, username,"
                          " payload->>'description' FROM user_profiles") == [
        (B, "up1", b(E.USER, "u1"), "lms", "acme", "default", "login", "al.bee", "LMS login"),
    ]  # fmt: skip
    assert await rows(db, "SELECT tenant_id, sourced_id, user_internal_id, org_internal_id,"
                          " role_type, role, begin_date, end_date, user_profile_internal_id"
                          " FROM user_roles") == [
        (B, "r1", b(E.USER, "u1"), b(E.ORG, "s1"), "primary", "teacher", date(2024, 8, 1),
         None, b(E.USER_PROFILE, "up1")),
    ]  # fmt: skip
    # Every roster row has its bookkeeping.
    for table in ("orgs", "academic_sessions", "courses", "classes", "users", "enrollments",
                  "demographics", "user_profiles", "user_roles"):  # fmt: skip
        assert await rows(db, f"SELECT DISTINCT first_seen_run = last_seen_run,"
                              f" content_hash IS NOT NULL, source_date_last_modified IS NULL,"
                              f" archived_at IS NULL FROM {table}") == [(True, True, True, True)]  # fmt: skip

    assert await rows(db, "SELECT tenant_id, run_id, stage, entity, sourced_id, rejected, code,"
                          " severity, file, row, column_name, value, message FROM findings"
                          " ORDER BY code") == [
        (A, run_a, "validator", "users", "bad1", True, "invalid_enumeration", "error",
         "users.csv", 5, "role", "principal", "not a role"),
        (A, run_a, "validator", "users", "bad1", True, "missing_required_data", "error",
         "users.csv", 5, "familyName", None, "users.csv requires a value in familyName"),
        (A, run_a, "validator", "orgs", None, False, "unknown_column", "warning", "orgs.csv",
         None, "colour", None, "extra column"),
    ]  # fmt: skip

    runs = {r["run_id"]: r for r in await db.fetch("SELECT * FROM sync_runs")}
    assert set(runs) == {run_a, run_b, run_failed}
    ra, rb, rf = runs[run_a], runs[run_b], runs[run_failed]
    assert (ra["status"], ra["fetch_status"], ra["oneroster_version"], ra["source"]) == (
        "completed", "fetched", "1.1", "csv",
    )  # fmt: skip
    assert orjson.loads(ra["manifest"]) == manifest
    assert orjson.loads(ra["file_counts"]) == {"orgs.csv": 2, "users.csv": 3}
    assert orjson.loads(ra["skipped_files"]) == {"results.csv": "gradebook is not ingested"}
    assert (ra["fetch_started_at"], ra["fetched_at"], ra["fetch_error"]) == (
        AT, datetime(2025, 9, 1, 8, 5, tzinfo=UTC), None,
    )  # fmt: skip
    assert orjson.loads(ra["published_counts"]) == {"orgs.csv": 2, "users.csv": 3}
    # The late "started" neither undid "fetched" nor its counts.
    assert (rb["status"], rb["fetch_status"], rb["oneroster_version"]) == (
        "completed", "fetched", "1.2.1",
    )  # fmt: skip
    assert orjson.loads(rb["file_counts"]) == {"orgs.csv": 1}
    assert (rb["fetched_at"], rb["fetch_started_at"], rb["manifest"]) == (AT, AT, None)
    assert (rf["status"], rf["fetch_status"], rf["fetch_error"], rf["completed_at"]) == (
        "failed", "failed", "bundle.zip: not a zip file", AT,
    )  # fmt: skip


async def test_redelivery_changes_nothing_older_versions_lose_and_deletes_archive(
    send: Sender, settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    run_1 = uuid4()
    first = bundle_1_1(run_1) + bundle_1_2(run_1)
    findings = FindingsEvent(
        tenant=A, run_id=str(run_1), stage="mapper", entity="users", sourced_id="t1",
        findings=[Finding(code="w", severity=Severity.WARNING, message="m", row=2)],
    )  # fmt: skip
    started = RunEvent(tenant=A, run_id=run_1, source="csv", phase=RunPhase.STARTED, at=AT)
    fetched = started.model_copy(update={"phase": RunPhase.FETCHED, "file_counts": {"x": 1}})
    await send.run_events(started, fetched)
    await send.records(first)
    await send.findings(findings)
    await send.end_run(A, run_1, {"x": 1}, fetched=False)  # its own run events, above
    await send.end_run(B, run_1, {})
    await wait_for_run(settings, A, run_1)
    await wait_for_run(settings, B, run_1)
    await eventually(lambda: _count(db, "findings", 1))
    await eventually(lambda: _count(db, "sync_runs WHERE fetch_status = 'fetched'", 2))  # A, B
    before = await snapshot(db)

    # Everything again, exactly as before; then a sentinel run, complete only once the writer has
    # read past the redelivered events on every partition.
    await send.run_events(started, fetched, started)
    await send.records(first)
    await send.findings(findings, findings)
    await send.end_run(A, run_1, {"x": 1}, fetched=False)
    sentinel = uuid4()
    await send.end_run(A, sentinel, {})
    await wait_for_run(settings, A, sentinel)
    after = await snapshot(db)
    assert {t: v for t, v in after.items() if t not in ("sync_runs", "run_markers")} == {
        t: v for t, v in before.items() if t not in ("sync_runs", "run_markers")
    }
    assert [r for r in after["sync_runs"] if r[1] == run_1] == before["sync_runs"]

    # A delta with a newer version of t1 (moved to d1, no agents), then an older one.
    run_2, run_3 = uuid4(), uuid4()
    newer = datetime(2025, 10, 1, tzinfo=UTC)
    older = datetime(2025, 9, 15, tzinfo=UTC)

    def teacher(run_id: UUID, name: str, orgs: list[str], modified: datetime) -> RecordEvent:
        return mapped(A, run_id, E.USER, "t1", 2, {
            "enabledUser": "true", "orgSourcedIds": orgs, "role": "teacher", "username": "tina",
            "givenName": name, "familyName": "Teach", "agentSourcedIds": ["p1"],
        }, modified=modified)  # fmt: skip

    await send.records([teacher(run_2, "Christina", ["d1"], newer)])
    await send.end_run(A, run_2, {})
    await wait_for_run(settings, A, run_2)
    await send.records(
        [
            teacher(run_3, "Tina", ["s1"], older),
            mapped(A, run_3, E.CLASS, "k1", 2, {}, operation=Operation.DELETE, modified=newer),
            mapped(A, run_3, E.ENROLLMENT, "e2", 3, {}, operation=Operation.DELETE, modified=newer),
        ]
    )
    await send.end_run(A, run_3, {})
    await wait_for_run(settings, A, run_3)

    t1 = await db.fetchrow("SELECT * FROM users WHERE tenant_id = $1 AND sourced_id = 't1'", A)
    assert (t1["given_name"], t1["source_date_last_modified"], t1["archived_at"]) == (
        "Christina", newer, None,
    )  # fmt: skip
    assert (t1["first_seen_run"], t1["last_seen_run"]) == (run_1, run_2)
    assert await rows(db, "SELECT org_internal_id, role FROM user_orgs"
                          f" WHERE user_internal_id = '{ref(A, E.USER, 't1')}'") == [
        (ref(A, E.ORG, "d1"), "teacher"),
    ]  # fmt: skip
    assert await rows(db, "SELECT agent_internal_id FROM guardian_links"
                          f" WHERE user_internal_id = '{ref(A, E.USER, 't1')}'") == [
        (ref(A, E.USER, "p1"),),
    ]  # fmt: skip

    archived = await rows(db, "SELECT 'classes', sourced_id, last_seen_run,"
                              " source_date_last_modified FROM classes WHERE archived_at IS NOT NULL"
                              " UNION ALL SELECT 'enrollments', sourced_id, last_seen_run,"
                              " source_date_last_modified FROM enrollments"
                              " WHERE archived_at IS NOT NULL ORDER BY 1, 2")  # fmt: skip
    # Archiving keeps the run that last saw the record; a class's enrollments go with it.
    assert archived == [
        ("classes", "k1", run_1, newer),
        ("enrollments", "e1", run_1, None),
        ("enrollments", "e2", run_1, newer),
    ]
    # The class's link rows go; nothing else changes.
    assert await _count(db, "class_terms", 0)
    assert await _count(db, "enrollments WHERE archived_at IS NULL", 0)
    assert await _count(db, "users WHERE archived_at IS NULL", 4)

    # An archived record that comes back is live again.
    run_4 = uuid4()
    revived = {"title": "Algebra P1", "courseSourcedId": "c1", "classType": "scheduled",
               "schoolSourcedId": "s1", "termSourcedIds": ["t1"]}  # fmt: skip
    later = datetime(2025, 11, 1, tzinfo=UTC)
    await send.records(
        [
            mapped(A, run_4, E.CLASS, "k1", 2, revived, modified=later),
            # A delete older than the stored version is ignored, as an older upsert is.
            mapped(A, run_4, E.USER, "t1", 2, {}, operation=Operation.DELETE, modified=older),
        ]
    )
    await send.end_run(A, run_4, {})
    await wait_for_run(settings, A, run_4)
    assert await _count(db, "users WHERE archived_at IS NULL", 4)
    k1 = await db.fetchrow("SELECT * FROM classes WHERE sourced_id = 'k1'")
    assert (k1["archived_at"], k1["periods"], k1["last_seen_run"]) == (None, [], run_4)
    assert await rows(db, "SELECT term_internal_id FROM class_terms") == [
        (ref(A, E.ACADEMIC_SESSION, "t1"),)
    ]


async def _count(db: asyncpg.Connection, table_and_filter: str, expected: int) -> bool:
    return bool(await db.fetchval(f"SELECT count(*) FROM {table_and_filter}") == expected)


async def test_garbage_on_the_mapped_topic_is_kept_as_a_rejection_and_never_blocks_the_writer(
    send: Sender, settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    run_id = uuid4()
    await send.producer.send(settings.topics.mapped, b"\x00not json", key=b"d1:users:junk")
    await send.records([e for e in bundle_1_1(run_id) if e.entity is EntityType.ORG])

    async def landed() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM orgs")) and bool(
            await db.fetchval("SELECT count(*) FROM rejected_records")
        )

    await eventually(landed)
    rejected = await db.fetchrow("SELECT tenant_id, stage, findings FROM rejected_records")
    assert (rejected["tenant_id"], rejected["stage"]) == ("d1", "writer")
    assert orjson.loads(rejected["findings"])[0]["code"] == "envelope_undecodable"
