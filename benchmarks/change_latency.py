"""Source change → change event latency, to an API long-poll client and to a webhook receiver.

On the local stack (or KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL): the four services as child
processes, the admin API in this process (uvicorn), a webhook receiver in this process. Two
tenants: ``rest``, a OneRoster REST source (the bundled server, in this process) polled every
5 s, and ``drop``, an inbox scanned every 5 s (the defaults). After each tenant's first load,
N users are renamed one at a time (a marker in ``givenName``, 0.3 to 1 s apart): on the REST
server (``data.upsert``), or as a one-row delta bundle dropped in the inbox (an atomic rename).
For each, the time from the change to (a) the long-poll client (``GET …/changes?wait=30``)
receiving the user's ``update`` event, and (b) the webhook receiver getting it. Prints p50/p99
per source and path; JSON to ``.benchmarks/change-latency.json``.

    .venv/bin/python -m benchmarks.change_latency          # 30 changes per source, 300 students
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import uvicorn
from rostersync_api.app import create_app
from rostersync_api.auth import create_token
from rostersync_api.settings import ApiSettings
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.processes import running_services
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.store.migrate import migrate
from rostersync_oneroster_server import OneRosterServer

from benchmarks.csv_memory import cleanup, settings_for
from benchmarks.rest_latency import OVERLAP_SECONDS, SECRET_ENV, percentile, tenants_text

Seen = dict[str, float]


class Receiver:
    """The webhook receiver: when each marker arrived."""

    def __init__(self) -> None:
        self.seen: Seen = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = next(int(line.split(":")[1]) for line in head.split("\r\n")
                      if line.lower().startswith("content-length"))  # fmt: skip
        note(orjson.loads(await reader.readexactly(length))["items"], self.seen)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


def note(items: list[dict[str, Any]], seen: Seen) -> None:
    now = time.perf_counter()
    for item in items:
        name = ((item.get("fields") or {}).get("given_name") or {}).get("after")
        if isinstance(name, str) and name.startswith("L"):
            seen.setdefault(name, now)


async def long_poll(http: httpx.AsyncClient, tenant: str, seen: Seen) -> None:
    after = 0
    while True:
        page = (await http.get(f"/api/v1/tenants/{tenant}/changes",
                               params={"after": after, "wait": 30, "entity": "users"})).json()  # fmt: skip
        note(page["items"], seen)
        after = page["next"]


def drop_delta(bundle: Path, inbox: Path, row: dict[str, str], n: int) -> None:
    """A one-user delta bundle, dropped by an atomic rename."""
    staging = inbox.parent / f"staging-{n}"
    # A delta row carries its status and when it changed (OneRoster CSV, delta mode).
    row = row | {
        "status": "active",
        "dateLastModified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    staging.mkdir()
    with (bundle / "manifest.csv").open() as handle:
        lines = [r for r in csv.reader(handle)]
    manifest = [[k, ("delta" if k == "file.users" else "absent") if k.startswith("file.") else v]
                for k, v in lines]  # fmt: skip
    with (staging / "manifest.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(manifest)
    with (staging / "users.csv").open("w", newline="") as handle:
        out = csv.DictWriter(handle, fieldnames=list(row))
        out.writeheader()
        out.writerow(row)
    archive = Path(shutil.make_archive(str(staging), "zip", staging))
    archive.rename(inbox / f"delta-{n:03d}.zip")


async def measure(change: Callable[[dict[str, str], int], object], users: list[dict[str, str]],
                  paths: dict[str, Seen], changes: int, tag: str) -> dict[str, list[float]]:  # fmt: skip
    rng = random.Random(7)  # noqa: S311 (timing spread, not cryptography)
    changed_at: dict[str, float] = {}
    for i, row in enumerate(rng.sample(users, changes)):
        marker = f"L{tag}-{i:03d}"
        changed_at[marker] = time.perf_counter()
        change(row | {"givenName": marker}, i)
        await asyncio.sleep(rng.uniform(0.3, 1.0))
    async with asyncio.timeout(180):
        while any(len([m for m in changed_at if m in seen]) < changes for seen in paths.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return {path: [seen[m] - at for m, at in changed_at.items()] for path, seen in paths.items()}


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 0.5), 2), "p99": round(percentile(values, 0.99), 2),
            "max": round(max(values), 2)}  # fmt: skip


async def main(changes: int, students: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    settings = settings_for(f"chg_{tag}")
    os.environ[SECRET_ENV] = "bench-secret"
    result: dict[str, Any] = {"changes_per_source": changes, "students": students}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        generate(bundle, DistrictShape(students=students))
        with (bundle / "users.csv").open() as handle:
            users = list(csv.DictReader(handle))
        inbox = Path(tmp) / "inbox"
        inbox.mkdir()
        async with OneRosterServer(bundle, oauth2={"bench": "bench-secret"}) as server:
            tenants = Path(tmp) / "tenants.toml"
            tenants.write_text(tenants_text(server).replace('id = "bench"', 'id = "rest"', 1)
                               + '\n[[tenants]]\nid = "drop"\nname = "Drop"\n[[tenants.sources]]\n'
                               f'id = "sftp"\nkind = "inbox"\npath = "{inbox}"\nsettle_seconds = 0\n')  # fmt: skip
            settings = settings.model_copy(update={"tenants_file": tenants, "log_level": "WARNING"})
            await ensure_topics(settings)
            conn = await asyncpg.connect(settings.database_url.get_secret_value(),
                                         server_settings={"search_path": settings.db_schema})  # fmt: skip
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.db_schema}"')
            await migrate(conn)
            _, secret = await create_token(conn, settings.control, "bench", "admin", None)
            api = ApiSettings(**{**settings.model_dump(), "api_port": 0,
                                 "upload_dir": Path(tmp) / "uploads"})  # fmt: skip
            server_api = uvicorn.Server(uvicorn.Config(create_app(api), host="127.0.0.1", port=0,
                                                       log_config=None, access_log=False))  # fmt: skip
            serving = asyncio.create_task(server_api.serve())
            receiver = Receiver()
            hooks = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
            try:
                while not server_api.started:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                base = f"http://127.0.0.1:{server_api.servers[0].sockets[0].getsockname()[1]}"
                hook = f"http://127.0.0.1:{hooks.sockets[0].getsockname()[1]}/hook"
                with running_services(settings):
                    async with httpx.AsyncClient(base_url=base, timeout=60,
                                                 headers={"Authorization": f"Bearer {secret}"}) as http:  # fmt: skip
                        for tenant in ("rest", "drop"):
                            await http.post(f"/api/v1/tenants/{tenant}/change-subscriptions",
                                            json={"url": hook, "secret": "s" * 32, "entities": ["users"]})  # fmt: skip
                        full = Path(shutil.make_archive(str(Path(tmp) / "full"), "zip", bundle))
                        full.rename(inbox / "full.zip")  # noqa: ASYNC240
                        polled: dict[str, Seen] = {"rest": {}, "drop": {}}
                        pollers = [
                            asyncio.create_task(long_poll(http, t, polled[t])) for t in polled
                        ]
                        while await conn.fetchval("SELECT count(DISTINCT tenant_id) FROM change_relay"  # noqa: ASYNC110
                                                  " WHERE relayed_seq > 0") < 2:  # fmt: skip
                            await asyncio.sleep(0.5)
                        await asyncio.sleep(OVERLAP_SECONDS + 1)  # the REST deltas' overlap window
                        result["rest"] = await measure(
                            lambda row, _: server.data.upsert("users", row), users,
                            {"long_poll": polled["rest"], "webhook": receiver.seen}, changes, tag + "r")  # fmt: skip
                        result["inbox"] = await measure(
                            lambda row, n: drop_delta(bundle, inbox, row, n), users,
                            {"long_poll": polled["drop"], "webhook": receiver.seen}, changes, tag + "i")  # fmt: skip
                        for poller in pollers:
                            poller.cancel()
            finally:
                hooks.close()
                server_api.should_exit = True
                await serving
                await conn.close()
                await cleanup(settings)
    return result


if __name__ == "__main__":
    n_changes = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    n_students = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    found = asyncio.run(main(n_changes, n_students))
    for source in ("rest", "inbox"):
        for path, values in found[source].items():
            s = summary(values)
            print(f"{source:<6} (poll/scan every 5 s) → {path:<9} p50 {s['p50']} s, p99 {s['p99']} s, max {s['max']} s")  # fmt: skip
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "change-latency.json").write_text(json.dumps(found, indent=2) + "\n")
