"""Demographics reference their user: demographics.csv's sourcedId is the user's sourcedId, and is
checked like any reference (bundle facts in the fetcher, CSV and REST; judged by the validator)."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from rostersync_fetcher.rest.index import RunIndex
from rostersync_libs.events import EntityType, Origin, record_event
from rostersync_libs.oneroster.columns import spec_for
from rostersync_mapper.mapping import map_event

from tests import districts
from tests.bundles import write_bundle
from tests.judging import judge

E = EntityType

STRAY = {"sourcedId": "u-nobody", "birthDate": "2011-02-03", "sex": "female"}


async def test_a_demographics_row_whose_user_is_not_in_the_bulk_users_file_is_dangling(
    tmp_path: Path,
) -> None:
    files = districts.bundle_1_1() | {"demographics": [*districts.DEMOGRAPHICS, STRAY]}
    judged = await judge(write_bundle(tmp_path / "b", files))

    stray = judged.record(E.DEMOGRAPHIC, "u-nobody")
    assert stray.facts is not None
    assert stray.facts.dangling == {"sourcedId": ["u-nobody"]}
    assert judged.record(E.DEMOGRAPHIC, "u-s1").facts is None  # its user is in users.csv
    assert judged.where() == {
        ("dangling_reference", "demographics.csv", 3, "sourcedId", "u-nobody"),
    }
    (finding,) = judged.findings
    assert finding.message == "users 'u-nobody' is not in this bulk file"
    assert judged.rejected == {"demographics.csv:3"}


async def test_without_users_in_the_bundle_the_user_is_looked_up_among_the_tenants(
    tmp_path: Path,
) -> None:
    bundle = write_bundle(
        tmp_path / "delta",
        {"demographics": [d | {"status": "active", "dateLastModified": "2026-02-01T08:00:00Z"}
                          for d in (districts.DEMOGRAPHICS[0], STRAY)]},
        mode="delta",
    )  # fmt: skip
    known_user = {("t", "users", "u-s1")}
    judged = await judge(bundle, known=known_user)

    facts = judged.record(E.DEMOGRAPHIC, "u-nobody").facts
    assert facts is not None
    assert facts.unresolved == {"sourcedId": ["u-nobody"]}
    assert judged.where() == {
        ("dangling_reference", "demographics.csv", 3, "sourcedId", "u-nobody"),
    }
    assert "is neither in this bundle nor known for this tenant" in judged.findings[0].message
    assert judged.rejected == {"demographics.csv:3"}
    # Both users known: nothing to report.
    both = known_user | {("t", "users", "u-nobody")}
    assert (await judge(bundle, known=both)).findings == []


def test_the_mapper_still_links_demographics_to_their_user_and_adds_no_sourced_internal_id() -> (
    None
):
    event = record_event(
        tenant="t",
        source="csv",
        run_id=uuid4(),
        entity=E.DEMOGRAPHIC,
        sourced_id="u-s1",
        payload={"sourcedId": "u-s1", "sex": "male"},
        origin=Origin(file="demographics.csv", row=2),
        mode="bulk",
        oneroster_version="1.1",
    )
    mapped = map_event(event).forward
    assert mapped is not None
    assert "sourcedInternalId" not in mapped.payload
    assert "userInternalId" in mapped.payload
    spec = spec_for("1.1", E.DEMOGRAPHIC)
    assert spec.references == ()  # what the mapper resolves: unchanged
    assert spec.target_of("sourcedId") is E.USER  # what facts and the validator check


def test_the_rest_run_index_states_the_demographics_user_fact_too() -> None:
    spec = spec_for("1.2", E.DEMOGRAPHIC)
    payload = {"sourcedId": "u9"}
    full = RunIndex(bulk=True)
    full.reading([E.USER])
    full.add(E.USER, "u1")
    full.finish([E.USER])
    full.reading([E.DEMOGRAPHIC])
    assert full.facts(spec, {"sourcedId": "u1"}) is None
    facts = full.facts(spec, payload)
    assert facts is not None
    assert facts.dangling == {"sourcedId": ["u9"]}  # users were read to their end
    delta = RunIndex(bulk=False)
    delta.finish([E.USER])
    delta.reading([E.DEMOGRAPHIC])
    facts = delta.facts(spec, payload)
    assert facts is not None
    assert facts.unresolved == {"sourcedId": ["u9"]}  # a delta: ask the tenant's records
