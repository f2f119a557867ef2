"""The test OneRoster server in process (no socket): given collections, tokens, faults, 404s."""

from __future__ import annotations

import httpx
import pytest
from rostersync_oneroster_server import OneRosterServer

from tests.rest_district import district_1_1

V1P2 = "https://sis.example/ims/oneroster/rostering/v1p2"


async def test_given_collections_are_served_as_they_are_behind_a_token() -> None:
    data = district_1_1()
    server = OneRosterServer(collections=data, oauth2={"client": "s3cret"})
    async with httpx.AsyncClient(transport=server.transport()) as http:
        assert (await http.get(f"{V1P2}/orgs")).status_code == 401
        token = await http.post(
            "https://sis.example/token",
            data={"grant_type": "client_credentials"},
            auth=("client", "s3cret"),
        )
        assert token.status_code == 200
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        page = await http.get(f"{V1P2}/orgs", params={"limit": 1, "offset": 1}, headers=bearer)
        assert page.status_code == 200
        assert page.json() == {"orgs": [data["orgs"][1]]}
        assert page.headers["X-Total-Count"] == "2"
        data["orgs"].pop()  # changed between requests: the next answer says so
        assert (await http.get(f"{V1P2}/orgs", headers=bearer)).json() == {"orgs": data["orgs"]}
        missing = await http.get(f"{V1P2}/nothing", headers=bearer)
        assert missing.status_code == 404


async def test_filters_are_logged_and_faults_injected_in_process() -> None:
    server = OneRosterServer(collections=district_1_1())
    url = "https://sis.example/ims/oneroster/v1p1/users"
    async with httpx.AsyncClient(transport=server.transport()) as http:
        newer = await http.get(url, params={"filter": "dateLastModified>'2025-06-01'"})
        assert newer.json() == {"users": []}
        server.faults.add("503", path_contains="/users")
        assert (await http.get(url)).status_code == 503
        server.faults.add("drop", path_contains="/users")
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(url)
        assert (await http.get(url)).status_code == 200
    assert server.filters("users") == ["dateLastModified>'2025-06-01'", None, None, None]


def test_a_server_serves_a_bundle_or_given_collections() -> None:
    with pytest.raises(ValueError, match="one of them"):
        OneRosterServer()
