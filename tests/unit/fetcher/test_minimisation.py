"""A tenant's field policy: what it may name, and what it does to a record."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import pytest
from pydantic import ValidationError
from rostersync_fetcher.csv.run import CsvRun
from rostersync_fetcher.minimise import FieldPolicy
from rostersync_libs.events import EntityType, content_hash
from rostersync_libs.minimisation import Minimisation
from rostersync_libs.runs import RunPhase
from rostersync_libs.tenants import CsvSource, Tenant
from rostersync_libs.topics import Topics

from tests.fakes import RecordingProducer, records_in


def user(**payload: str) -> dict[str, Any]:
    return {"sourcedId": "u1", **payload}


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"users": {"sourcedId": "drop"}}, "users.sourcedId identifies the record"),
        ({"users": {"orgSourcedIds": "drop"}}, "users.orgSourcedIds names other records"),
        ({"users": {"givenName": "drop"}}, "users.givenName is required: it can be hashed"),
        ({"demographics": {"birthDate": "hash"}, "hash_key_env": "K"}, "is not free text"),
        ({"users": {"shoeSize": "drop"}}, "users has no column 'shoeSize'"),
        ({"users": {"email": "hash"}}, "hashing a column needs hash_key_env"),
        ({"users": {"email": "scramble"}}, "Input should be 'drop' or 'hash'"),
    ],
)
def test_a_policy_that_cannot_apply_is_refused_with_its_reason(
    policy: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Minimisation.model_validate(policy)


def test_dropped_columns_go_and_hashed_ones_become_stable_keyed_pseudonyms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("K", "key-one")
    minimisation = Minimisation.model_validate(
        {"hash_key_env": "K", "users": {"email": "hash", "phone": "drop", "metadata.ssn": "drop"}}
    )
    policy = FieldPolicy(minimisation)
    assert policy.problem() is None
    payload = user(
        email="ann@school.org", phone="555-0100", givenName="Ann", **{"metadata.ssn": "1"}
    )
    minimised = policy.treat(EntityType.USER, payload)
    assert set(minimised) == {"sourcedId", "email", "givenName"}
    assert minimised["email"].startswith("hmac-sha256:")
    assert "ann" not in minimised["email"]
    assert payload["phone"] == "555-0100"  # the row's own values are left as they were
    pseudonym = minimised["email"]
    assert policy.treat(EntityType.USER, user(email="ann@school.org"))["email"] == pseudonym
    monkeypatch.setenv("K", "key-two")
    other = FieldPolicy(minimisation)
    assert other.problem() is None
    assert other.treat(EntityType.USER, user(email="ann@school.org"))["email"] != pseudonym
    blank = policy.treat(EntityType.USER, user(givenName="Ann", email=""))
    assert blank == {"sourcedId": "u1", "givenName": "Ann", "email": ""}
    plain = user(givenName="Ann")  # none of the policy's columns: the same payload, not a copy
    assert policy.treat(EntityType.USER, plain) is plain
    assert policy.treat(EntityType.ORG, payload) is payload  # no policy for orgs


def test_a_missing_key_is_a_problem_the_run_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K", raising=False)
    policy = FieldPolicy(
        Minimisation.model_validate({"hash_key_env": "K", "users": {"email": "hash"}})
    )
    assert policy.problem() == "environment variable K (the tenant's pseudonym key) is not set"
    assert FieldPolicy(Minimisation()).problem() is None


async def test_a_run_sends_the_policys_payloads_hashed_once_as_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("K", "key-one")
    (tmp_path / "manifest.csv").write_text(
        "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.users,bulk\n"
    )
    (tmp_path / "users.csv").write_text(
        "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
        "givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,"
        "password\n"
        "u1,tobedeleted,2026-01-02,true,o1,student,sam,,Sam,Smith,,ID-7,sam@school.org,,,,,\n"
    )
    source = CsvSource(id="csv", path=tmp_path)
    users = {"email": "hash", "identifier": "drop"}
    minimise = Minimisation.model_validate({"hash_key_env": "K", "users": users})
    tenant = Tenant(id="t", name="T", sources=[source], minimise=minimise)
    producer = RecordingProducer(partitions=3)
    outcome = await CsvRun(producer=cast(Any, producer), topics=Topics(), tenant=tenant,
                           source=source, run_id=uuid4()).run()  # fmt: skip
    assert outcome.phase is RunPhase.FETCHED
    (record,) = records_in(producer.events(Topics().fetched))
    assert "identifier" not in record.payload
    assert record.payload["email"].startswith("hmac-sha256:")
    assert b"sam@school.org" not in b"".join(m.value for m in producer.messages)
    assert record.content_hash == content_hash(record.payload)  # the hash of what is sent
    assert record.operation == "delete"  # read from the row's status
