"""Notifications of a failed run: a signed webhook (retried after a 500) and an e-mail, against a
real local HTTP receiver and a real SMTP sink (aiosmtpd), with the four services running; and of
a cancelled run, to the webhooks subscribed to cancellations."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from rostersync_libs.ids import new_run_id
from rostersync_libs.settings import ServiceSettings

from tests.api import api, api_settings, token
from tests.pipeline import running_pipeline
from tests.proxy import free_port

pytestmark = pytest.mark.integration
SECRET = "hook-secret"


class Receiver:
    """An HTTP endpoint that answers 500 to the first POST and 200 after, keeping each."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = {k.lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in head.split("\r\n")[1:] if line)}  # fmt: skip
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        status = "500 Oops" if len(self.requests) == 1 else "200 OK"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    found = Receiver()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    try:
        yield found, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_failed_run_is_notified_by_a_signed_webhook_and_an_email(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROSTERSYNC_TEST_HOOK_SECRET", SECRET)
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    admin = await token(db, settings, "admin")
    no_file = tmp_path / "none.toml"
    try:
        async with receiver() as (http_receiver, port):
            options = api_settings(settings, no_file, tmp_path).model_copy(update={
                "notify_poll_seconds": 0.3, "notify_retry_seconds": 0.3,
                "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
            })  # fmt: skip
            district = {
                "id": "d1", "name": "D1",
                "sources": [{"id": "csv", "kind": "csv", "path": str(tmp_path / "no-such-bundle")}],
                "notify": {"email": ["rostering@d1.example"],
                           "webhooks": [{"url": f"http://127.0.0.1:{port}/hook",
                                         "secret_env": "ROSTERSYNC_TEST_HOOK_SECRET"}]},
            }  # fmt: skip
            async with running_pipeline(settings, no_file), api(options) as http:
                assert (
                    await http.post("/api/v1/tenants", json=district, headers=admin)
                ).status_code == 201
                run_id = (await http.post("/api/v1/tenants/d1/syncs", headers=admin)).json()[
                    "run_id"
                ]
                async with asyncio.timeout(60):
                    while len(http_receiver.requests) < 2 or not mailbox.messages:
                        await asyncio.sleep(0.2)
                await asyncio.sleep(1.5)  # a few more polls: a delivered notification stays sent
    finally:
        smtp.stop()

    (_first_headers, first_body), (headers, body) = http_receiver.requests[:2]
    assert first_body == body  # the same notification, again after the 500
    detail = json.loads(body)
    assert (detail["tenant"], detail["run_id"], detail["event"]) == ("d1", run_id, "failed")
    stamp = headers["x-rostersync-timestamp"]
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["x-rostersync-signature"] == f"sha256={expected}"
    mail = message_from_bytes(mailbox.messages[0])
    assert mail["To"] == "rostering@d1.example"
    assert mail["Subject"] == "rostersync: run of d1 failed"
    rows = {
        r["target"]: r for r in await db.fetch("SELECT * FROM notifications WHERE tenant_id = 'd1'")
    }
    hook = rows[f"http://127.0.0.1:{port}/hook"]
    assert (hook["attempts"], hook["last_error"]) == (2, None)
    assert hook["delivered_at"] is not None
    assert rows["mailto:rostering@d1.example"]["delivered_at"] is not None
    assert len(http_receiver.requests) == 2  # delivered once, never sent again


async def test_a_cancelled_run_is_notified_to_who_subscribed_to_cancellations(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run an operator cancelled, as the writer records it (sync_runs.status ``cancelled``, the
    reason saying who: tests/integration/test_run_endings.py makes one through the pipeline):
    the webhook subscribed to ``cancelled`` and the e-mail hear of it, one subscribed to failed
    and held runs does not."""
    monkeypatch.setenv("ROSTERSYNC_TEST_HOOK_SECRET", SECRET)
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    admin = await token(db, settings, "admin")
    no_file = tmp_path / "none.toml"
    run_id = new_run_id()
    try:
        async with receiver() as (cancels, port), receiver() as (failures, other_port):
            options = api_settings(settings, no_file, tmp_path).model_copy(update={
                "notify_poll_seconds": 0.3, "notify_retry_seconds": 0.3,
                "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
            })  # fmt: skip
            district = {
                "id": "d2", "name": "D2",
                "sources": [{"id": "csv", "kind": "csv", "path": str(tmp_path / "bundle")}],
                "notify": {"email": ["rostering@d2.example"], "webhooks": [
                    {"url": f"http://127.0.0.1:{port}/hook", "on": ["cancelled"],
                     "secret_env": "ROSTERSYNC_TEST_HOOK_SECRET"},
                    {"url": f"http://127.0.0.1:{other_port}/hook", "on": ["failed", "held"]},
                ]},
            }  # fmt: skip
            async with api(options) as http:
                assert (
                    await http.post("/api/v1/tenants", json=district, headers=admin)
                ).status_code == 201
                await db.execute(
                    "INSERT INTO sync_runs (tenant_id, run_id, source, status, fetch_error)"
                    " VALUES ('d2', $1, 'csv', 'cancelled', 'cancelled by alice')",
                    run_id,
                )
                async with asyncio.timeout(60):
                    while len(cancels.requests) < 2 or not mailbox.messages:
                        await asyncio.sleep(0.2)
                await asyncio.sleep(1.5)  # a few more polls: nothing else is sent
    finally:
        smtp.stop()

    assert failures.requests == []  # subscribed to failed and held runs only
    (_, first_body), (headers, body) = cancels.requests  # a 500, then delivered; once
    assert first_body == body
    detail = json.loads(body)
    assert detail == {
        "tenant": "d2", "run_id": str(run_id), "source": "csv", "event": "cancelled",
        "status": "cancelled", "detail": "cancelled by alice", "rejected_records": 0,
    }  # fmt: skip
    stamp = headers["x-rostersync-timestamp"]
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["x-rostersync-signature"] == f"sha256={expected}"
    (message,) = mailbox.messages
    mail = message_from_bytes(message)
    assert mail["Subject"] == "rostersync: run of d2 cancelled"
    assert "cancelled by alice" in mail.get_payload()
    rows = await db.fetch("SELECT * FROM notifications WHERE tenant_id = 'd2' ORDER BY target")
    assert [(r["event"], r["target"]) for r in rows] == [
        ("cancelled", f"http://127.0.0.1:{port}/hook"),
        ("cancelled", "mailto:rostering@d2.example"),
    ]
    assert all(r["delivered_at"] is not None for r in rows)
