"""Webhooks of the change feed on real Kafka and PostgreSQL: a receiver that fails twice then
succeeds gets every change once, in order, signed; a filter; a cursor reset replays."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from rostersync_cli.actions import request_sync
from rostersync_libs.settings import ServiceSettings

from tests import districts
from tests.api import api, api_settings, token
from tests.bundles import write_bundle, write_tenants
from tests.e2e import cli_settings
from tests.integration.test_change_feed import students_moved
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration
SECRET = "a-webhook-secret-of-some-length"


class Receiver:
    """An HTTP endpoint that answers 500 to its first ``failures`` POSTs and 200 after."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes, int]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = {k.lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in head.split("\r\n")[1:] if line)}  # fmt: skip
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        status = 500 if len(self.requests) < self.failures else 200
        self.requests.append((headers, body, status))
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())  # fmt: skip
        await writer.drain()
        writer.close()

    def accepted(self) -> list[dict[str, Any]]:
        """Every change of the requests answered 200, in the order they came."""
        return [item for _, body, status in self.requests if status == 200
                for item in orjson.loads(body)["items"]]  # fmt: skip


@asynccontextmanager
async def receiving(failures: int = 0) -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver(failures)
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    try:
        yield found, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    finally:
        server.close()
        await server.wait_closed()


async def until(check: Any, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.1)


async def test_a_failing_receiver_gets_every_change_once_in_order(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "bundle", districts.bundle_1_1())
    tenants = write_tenants(tmp_path / "tenants.toml", "d1", bundle)
    admin = await token(db, settings, "admin", ["d1"])
    viewer = await token(db, settings, "viewer", ["d1"])
    stranger = await token(db, settings, "admin", ["d2"])
    base = "/api/v1/tenants/d1/change-subscriptions"

    async with (
        receiving(failures=2) as (hook, url),
        receiving() as (only_enrollments, url2),
        running_pipeline(settings, tenants),
        api(api_settings(settings, tenants, tmp_path / "uploads")) as http,
    ):
        made = await http.post(base, json={"url": url, "secret": SECRET}, headers=admin)
        assert made.status_code == 201
        subscription = made.json()["id"]
        assert "secret" not in made.json()
        filtered = {"url": url2, "secret": SECRET, "entities": ["enrollments"]}
        assert (await http.post(base, json=filtered, headers=admin)).status_code == 201
        assert (await http.post(base, json=filtered, headers=viewer)).status_code == 403
        assert (await http.post(base, json=filtered, headers=stranger)).status_code == 404
        assert (await http.get(base, headers=stranger)).status_code == 404
        short = {"url": url, "secret": "short"}
        assert (await http.post(base, json=short, headers=admin)).status_code == 422

        for files in (districts.bundle_1_1(), students_moved()):
            write_bundle(bundle, files)
            command = await request_sync(cli_settings(settings, tenants), "d1", None)
            await wait_for_run(settings, "d1", command.run_id)
        last = await db.fetchval("SELECT last_seq FROM change_sequences WHERE tenant_id = 'd1'")
        await until(lambda: len(hook.accepted()) >= last)

        # Two failures, then every change once, in order; each request signed.
        assert [status for _, _, status in hook.requests[:3]] == [500, 500, 200]
        failed, delivered = (orjson.loads(hook.requests[n][1])["items"] for n in (0, 2))
        assert failed == delivered[: len(failed)]  # the same page again (it may have grown)
        assert [c["sequence"] for c in hook.accepted()] == list(range(1, last + 1))
        for headers, body, _ in hook.requests:
            stamp = headers["x-rostersync-timestamp"]
            mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
            assert headers["x-rostersync-signature"] == "sha256=" + mac.hexdigest()
        shown = (await http.get(f"{base}/{subscription}", headers=viewer)).json()
        assert shown["cursor"] == last
        assert shown["attempts"] == 0

        # The filtered subscription: enrollments only, in order.
        await until(lambda: any(c["sourced_id"] == "e5" for c in only_enrollments.accepted()))
        got = only_enrollments.accepted()
        assert {c["entity"] for c in got} == {"enrollments"}
        assert [c["sequence"] for c in got] == sorted({c["sequence"] for c in got})

        # A reset cursor replays from there.
        before = len(hook.accepted())
        reset = await http.patch(f"{base}/{subscription}", json={"cursor": last - 3}, headers=admin)
        assert reset.status_code == 200
        await until(lambda: len(hook.accepted()) >= before + 3)
        assert [c["sequence"] for c in hook.accepted()[before:]] == [last - 2, last - 1, last]

        assert (await http.delete(f"{base}/{subscription}", headers=admin)).status_code == 204
        assert (await http.get(f"{base}/{subscription}", headers=viewer)).status_code == 404
        assert len((await http.get(base, headers=viewer)).json()["items"]) == 1
