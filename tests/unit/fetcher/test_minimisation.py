"""A tenant's field policy: what it may name, and what it does to a record."""

from __future__ import annotations

from uuid import uuid4

import pytest
from pydantic import ValidationError
from rostersync_fetcher.minimise import FieldPolicy
from rostersync_libs.events import EntityType, RecordEvent, content_hash, record_event
from rostersync_libs.minimisation import Minimisation


def user(**payload: str) -> RecordEvent:
    return record_event(
        tenant="d1", source="csv", run_id=uuid4(), entity=EntityType.USER,
        sourced_id="u1", payload={"sourcedId": "u1", **payload},
    )  # fmt: skip


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
    event = user(email="ann@school.org", phone="555-0100", givenName="Ann", **{"metadata.ssn": "1"})
    minimised = policy.apply(event)
    assert minimised.payload is not None
    assert set(minimised.payload) == {"sourcedId", "email", "givenName"}
    assert minimised.payload["email"].startswith("hmac-sha256:")
    assert "ann" not in minimised.payload["email"]
    assert minimised.content_hash == content_hash(minimised.payload)
    pseudonym = minimised.payload["email"]
    assert (policy.apply(user(email="ann@school.org")).payload or {})["email"] == pseudonym
    monkeypatch.setenv("K", "key-two")
    other = FieldPolicy(minimisation)
    assert other.problem() is None
    assert (other.apply(user(email="ann@school.org")).payload or {})["email"] != pseudonym
    blank = policy.apply(user(givenName="Ann", email=""))
    assert blank.payload == {"sourcedId": "u1", "givenName": "Ann", "email": ""}
    plain = user(givenName="Ann")  # none of the policy's columns: the same event, not a copy
    assert policy.apply(plain) is plain


def test_a_missing_key_is_a_problem_the_run_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K", raising=False)
    policy = FieldPolicy(
        Minimisation.model_validate({"hash_key_env": "K", "users": {"email": "hash"}})
    )
    assert policy.problem() == "environment variable K (the tenant's pseudonym key) is not set"
    assert FieldPolicy(Minimisation()).problem() is None
