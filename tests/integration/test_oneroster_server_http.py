"""The OneRoster test server over HTTP: paging, errors, auth, faults and mutations.

Needs no Kafka or PostgreSQL: the server runs in this test's event loop on a free port.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from oauthlib.oauth1 import Client  # type: ignore[import-untyped]
from rostersync_cli.generate import DistrictShape, generate
from rostersync_oneroster_server import OneRosterServer, write_bundle
from yarl import URL

KEY, SECRET = "key", "secret"
CLIENT, CLIENT_SECRET = "client", "client-secret"
SCOPE = "https://purl.imsglobal.org/spec/or/v1p2/scope/"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("or12")
    generate(folder, DistrictShape(students=40, version="1.2"))
    return folder


@pytest.fixture
async def server(bundle: Path) -> AsyncIterator[OneRosterServer]:
    async with OneRosterServer(
        bundle, oauth1={KEY: SECRET}, oauth2={CLIENT: CLIENT_SECRET}, token_ttl=60
    ) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def token(http: aiohttp.ClientSession, server: OneRosterServer, scope: str = "") -> str:
    form = {"grant_type": "client_credentials", "scope": scope}
    basic = aiohttp.encode_basic_auth(CLIENT, CLIENT_SECRET)
    async with http.post(server.token_url, data=form, headers={"Authorization": basic}) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 60
    return str(body["access_token"])


async def get(
    http: aiohttp.ClientSession, url: str, bearer: str | None = None
) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with http.get(URL(url, encoded=True), headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


def links(header: str) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header)}


def code_minor(body: Any) -> str:
    assert body["imsx_codeMajor"] == "failure"
    assert body["imsx_severity"] == "error"
    return str(body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"])


async def test_paging_through_users_with_links(
    server: OneRosterServer, http: aiohttp.ClientSession
) -> None:
    bearer = await token(http, server)
    total = len(server.data.records("users"))
    url: str | None = server.v1p2_url + "/users?limit=7"
    seen: list[str] = []
    pages = 0
    while url is not None:
        status, body, headers = await get(http, url, bearer)
        assert status == 200
        assert int(headers["X-Total-Count"]) == total
        rels = links(headers["Link"])
        assert set(rels) >= {"first", "last"}
        assert ("prev" in rels) == (pages > 0)
        assert len(body["users"]) == (7 if "next" in rels else total - 7 * pages)
        seen += [u["sourcedId"] for u in body["users"]]
        url, pages = rels.get("next"), pages + 1
    assert seen == sorted(seen)
    assert len(set(seen)) == total
    assert pages == -(-total // 7)
    assert rels["last"].endswith(f"offset={7 * (pages - 1)}")
    assert server.requests_served["/ims/oneroster/rostering/v1p2/users"] == pages


async def test_filter_fields_sort_and_errors(
    server: OneRosterServer, http: aiohttp.ClientSession
) -> None:
    bearer = await token(http, server)
    base = server.v1p2_url
    status, body, headers = await get(
        http, base + "/users?filter=roles.role%3D%27teacher%27&fields=sourcedId,roles", bearer
    )
    assert status == 200
    assert int(headers["X-Total-Count"]) == len(body["users"]) > 0
    assert all(set(u) == {"sourcedId", "roles"} for u in body["users"])
    status, teachers, headers = await get(http, base + "/teachers?limit=1000", bearer)
    assert [u["sourcedId"] for u in teachers["users"]] == [u["sourcedId"] for u in body["users"]]
    status, body, _ = await get(http, base + "/users?sort=familyName&orderBy=desc", bearer)
    names = [u["familyName"] for u in body["users"]]
    assert names == sorted(names, reverse=True)
    status, body, _ = await get(http, base + "/schools", bearer)
    assert {o["type"] for o in body["orgs"]} == {"school"}

    status, body, _ = await get(http, base + "/users?filter=shoeSize%3D%2742%27", bearer)
    assert status == 400
    assert code_minor(body) == "invalid_filter_field"
    status, body, _ = await get(http, base + "/users?fields=shoeSize", bearer)
    assert status == 400
    assert code_minor(body) == "invalid_selection_field"
    status, body, _ = await get(http, base + "/users/nobody", bearer)
    assert status == 404
    assert code_minor(body) == "unknownobject"
    status, body, _ = await get(http, base + "/users/usr-0000001", bearer)
    assert status == 200
    assert body["user"]["sourcedId"] == "usr-0000001"


async def test_auth(server: OneRosterServer, http: aiohttp.ClientSession) -> None:
    status, body, headers = await get(http, server.v1p2_url + "/users")
    assert status == 401
    assert code_minor(body) == "unauthorisedrequest"
    assert headers["WWW-Authenticate"] == "Bearer"
    status, body, _ = await get(http, server.v1p2_url + "/users", "made-up")
    assert status == 401
    core = await token(http, server, SCOPE + "roster-core.readonly")
    assert (await get(http, server.v1p2_url + "/orgs", core))[0] == 200
    status, body, _ = await get(http, server.v1p2_url + "/demographics", core)
    assert status == 403
    assert code_minor(body) == "forbidden"
    async with http.post(
        server.token_url,
        data={"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": "no"},
    ) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "invalid_client"
    # 1.1: OAuth 1.0a signatures (SHA-256 and SHA-1), or a bearer token.
    url = server.v1p1_url + "/users?limit=5&filter=status%3D%27active%27"
    for method in ("HMAC-SHA256", "HMAC-SHA1"):
        signed_url, headers, _ = Client(KEY, client_secret=SECRET, signature_method=method).sign(
            url
        )
        async with http.get(URL(signed_url, encoded=True), headers=headers) as resp:
            assert resp.status == 200
            assert len((await resp.json())["users"]) == 5
    _, headers, _ = Client(KEY, client_secret="wrong").sign(url)
    async with http.get(URL(url, encoded=True), headers=headers) as resp:
        assert resp.status == 401
    assert (await get(http, url, await token(http, server)))[0] == 200
    # Expired tokens are refused; a new token works.
    bearer = await token(http, server)
    assert server.tokens is not None
    server.tokens.expire_all()
    assert (await get(http, server.v1p2_url + "/orgs", bearer))[0] == 401
    assert (await get(http, server.v1p2_url + "/orgs", await token(http, server)))[0] == 200


async def test_faults(server: OneRosterServer, http: aiohttp.ClientSession) -> None:
    bearer = await token(http, server)
    users = server.v1p2_url + "/users"
    server.faults.add("429", count=2, retry_after=1.5, path_contains="/users")
    for _ in range(2):
        status, body, headers = await get(http, users, bearer)
        assert status == 429
        assert headers["Retry-After"] == "2"
        assert code_minor(body) == "server_busy"
    assert (await get(http, server.v1p2_url + "/orgs", bearer))[0] == 200  # not matching
    assert (await get(http, users, bearer))[0] == 200
    assert server.requests_served["/ims/oneroster/rostering/v1p2/users"] == 3

    server.faults.add("500")
    status, body, _ = await get(http, users, bearer)
    assert status == 500
    assert code_minor(body) == "internal_server_error"

    server.faults.add("slow", delay=0.3)
    started = time.monotonic()
    assert (await get(http, users, bearer))[0] == 200
    assert time.monotonic() - started >= 0.3

    # aiohttp retries a dropped idempotent request once by itself: drop two to see the error.
    server.faults.add("drop", count=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await get(http, users, bearer)
    server.faults.add("drop")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /ims/oneroster/rostering/v1p2/orgs HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing answered
    writer.close()
    assert server.faults.pending == 0
    assert server.faults.injected == {"429": 2, "500": 1, "slow": 1, "drop": 3}
    assert [r.fault for r in server.request_log if r.fault][-1] == "drop"


async def test_mutations(
    server: OneRosterServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    bearer = await token(http, server)
    users = server.v1p2_url + "/users"
    total = len(server.data.records("users"))
    mark = server.data.loaded_at

    def since(moment: str) -> str:
        return users + f"?filter=dateLastModified%3E%27{moment}%27"

    assert (await get(http, since(mark), bearer))[1]["users"] == []
    touched = server.data.touch("users", "usr-0000001")
    server.data.mark_deleted("users", "usr-0000002")
    server.data.hard_delete("users", "usr-0000003")
    status, body, _ = await get(http, since(mark), bearer)
    assert [(u["sourcedId"], u["status"]) for u in body["users"]] == [
        ("usr-0000001", "active"),
        ("usr-0000002", "tobedeleted"),
    ]
    assert body["users"][0]["dateLastModified"] == touched > mark
    status, body, _headers = await get(http, users + "/usr-0000003", bearer)
    assert status == 404
    assert int((await get(http, users, bearer))[2]["X-Total-Count"]) == total - 1

    delta = write_bundle(
        tmp_path / "delta",
        {"users": [{"sourcedId": "usr-new", "status": "active", "enabledUser": "true",
                    "username": "new", "givenName": "New", "familyName": "Person"}],
         "roles": [{"sourcedId": "usr-new-r0", "status": "active", "userSourcedId": "usr-new",
                    "roleType": "primary", "role": "teacher", "orgSourcedId": "org-es1"}]},
        "1.2",
    )  # fmt: skip
    previous = server.data.records("users")["usr-0000002"].date_last_modified
    assert server.data.apply_delta_bundle(delta) == {"users": 1, "roles": 1}
    status, body, _ = await get(http, since(previous), bearer)
    assert [u["sourcedId"] for u in body["users"]] == ["usr-new"]
    assert body["users"][0]["roles"][0]["role"] == "teacher"

    # The same through the admin endpoints.
    async with http.post(
        server.base_url + "/_admin/data/touch", json={"entity": "orgs", "sourcedId": "org-es1"}
    ) as resp:
        stamp = (await resp.json())["dateLastModified"]
    status, body, _ = await get(http, server.v1p2_url + "/orgs/org-es1", bearer)
    assert body["org"]["dateLastModified"] == stamp
    async with http.post(
        server.base_url + "/_admin/faults", json={"kind": "500", "path_contains": "/orgs"}
    ) as resp:
        assert (await resp.json())["faultsPending"] == 1
    async with http.get(server.base_url + "/_admin/status") as resp:
        assert (await resp.json())["records"]["users"] == total
