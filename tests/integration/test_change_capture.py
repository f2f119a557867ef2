"""What the update trigger captures (a real PostgreSQL with the writer's schema and triggers), key
by key: the typed fields that changed, a change only in the payload as ``payload.<key>`` (keys
added, removed and changed), nothing for a change only in the payload's dateLastModified or status
or for a row only marked seen, an archive described by the row before it, a restore."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from rostersync_libs.ids import new_run_id
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate
from rostersync_writer.changes import attribute

pytestmark = pytest.mark.integration

T = "cap"


async def captured(conn: asyncpg.Connection, run: UUID, statement: str, *args: Any) -> list[Any]:
    """The changes ``statement`` captures for ``run`` (in its own transaction, rolled back)."""
    tx = conn.transaction()
    await tx.start()
    try:
        await attribute(conn, run)
        await conn.execute(statement, *args)
        rows = await conn.fetch(
            "SELECT operation, fields, record, school_id FROM change_pending ORDER BY id"
        )
    finally:
        await tx.rollback()
    return [
        (
            r["operation"],
            None if r["fields"] is None else json.loads(r["fields"]),
            json.loads(r["record"]),
            r["school_id"],
        )
        for r in rows
    ]


async def test_an_update_captures_what_changed_and_only_that(
    settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    await db.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.db_schema}"')
    await migrate(db)
    earlier, run, school, user = new_run_id(), new_run_id(), uuid4(), uuid4()
    payload = {"givenName": "Sam", "metadata.a": "1", "metadata.b": "x", "status": "active"}
    await db.execute(
        "INSERT INTO users (tenant_id, sourced_id, internal_id, source, enabled, role, username,"
        " given_name, family_name, grades, content_hash, first_seen_run, last_seen_run, payload,"
        " primary_org_internal_id) VALUES ($1, 'u1', $2, 'csv', true, 'student', 'sam', 'Sam',"
        " 'Lee', '{09}', 'h1', $3, $3, $4, $5)",
        T, user, earlier, json.dumps(payload), school,
    )  # fmt: skip
    update = "UPDATE users SET {} WHERE internal_id = $1"

    typed = await captured(
        db, run, update.format("given_name = 'Samuel', content_hash = 'h2'"), user
    )
    assert len(typed) == 1
    operation, fields, record, place = typed[0]
    assert operation == "update"
    assert fields == {"given_name": {"before": "Sam", "after": "Samuel"}}
    assert record["given_name"] == "Samuel"
    assert record["family_name"] == "Lee"
    assert "payload" not in record
    assert "content_hash" not in record
    assert place == school

    changed = {"givenName": "Sam", "metadata.a": "2", "metadata.c": "new", "status": "active"}
    only_payload = await captured(
        db, run, update.format("payload = $2, content_hash = 'h3'"), user, json.dumps(changed)
    )
    assert [(op, f) for op, f, _, _ in only_payload] == [
        (
            "update",
            {
                "payload.metadata.a": {"before": "1", "after": "2"},
                "payload.metadata.b": {"before": "x", "after": None},
                "payload.metadata.c": {"before": None, "after": "new"},
            },
        )
    ]

    bookkeeping = dict(payload, status="tobedeleted", dateLastModified="2026-12-01")
    no_content = await captured(
        db, run, update.format("payload = $2, content_hash = 'h4'"), user, json.dumps(bookkeeping)
    )
    assert no_content == []
    assert await captured(db, run, update.format("last_seen_run = $2"), user, run) == []

    archived = await captured(
        db, run, update.format("archived_at = now(), given_name = 'Gone', content_hash = 'h5'"),
        user,
    )  # fmt: skip
    assert [(op, f, r["given_name"], p) for op, f, r, p in archived] == [
        ("archive", None, "Sam", school)
    ]

    await db.execute("UPDATE users SET archived_at = now() WHERE internal_id = $1", user)
    restored = await captured(db, run, update.format("archived_at = NULL"), user)
    assert [(op, f) for op, f, _, _ in restored] == [("restore", None)]
