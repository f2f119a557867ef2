"""OAuth1 signing (the reference's ClassLink test vector) and OAuth2 token caching/refresh."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from oauthlib.oauth1.rfc5849.utils import escape  # type: ignore[import-untyped]
from pydantic import SecretStr
from rostersync_fetcher.rest.auth import (
    OAuth1Signer,
    OAuth2ClientCredentials,
    authenticator_for,
    oauth1_signature,
)
from rostersync_fetcher.rest.client import OneRosterClient, RetryPolicy
from rostersync_fetcher.rest.errors import FetchError
from rostersync_libs.tenants import ApiSource, OAuth2Auth

VECTOR_URL = (
    "https://example.oneroster.com/ims/oneroster/v1p1/users"
    "?limit=100&offset=0&filter=dateLastModified%3E%272024-01-01T00%3A00%3A00Z%27"
)


def test_oauth1_signature_matches_the_classlink_test_vector() -> None:
    params, signature = oauth1_signature(
        "GET", VECTOR_URL, key="key", secret="secret", timestamp="1700000000", nonce="abcdefghij"
    )
    assert signature == "PcfBmN6uN5LV6PULofiH9KkskPht7L1C3nUrVteTNY8="
    assert [k for k, _ in params] == [
        "oauth_consumer_key",
        "oauth_signature_method",
        "oauth_timestamp",
        "oauth_nonce",
    ]


def test_oauth1_signature_with_oauth_version_matches_oauthlibs_vector() -> None:
    _, signature = oauth1_signature(
        "GET",
        VECTOR_URL,
        key="key",
        secret="secret",
        timestamp="1700000000",
        nonce="abcdefghij",
        with_version=True,
    )
    assert signature == "dNmT1RVuJK1BFJGzqGTUAeQOFEgBDLIcZqiOmwAj1IY="


async def test_oauth1_signer_signs_the_url_as_sent_in_classlinks_header_form() -> None:
    signer = OAuth1Signer(
        "key", SecretStr("secret"), clock=lambda: 1700000000.9, nonce=lambda n: "abcdefghij"[:n]
    )
    request = httpx.Request("GET", VECTOR_URL)
    await signer.authorize(request)
    assert str(request.url) == VECTOR_URL
    assert request.headers["Authorization"] == (
        'OAuth oauth_consumer_key="key",oauth_signature_method="HMAC-SHA256",'
        'oauth_timestamp="1700000000",oauth_nonce="abcdefghij",'
        'oauth_signature="PcfBmN6uN5LV6PULofiH9KkskPht7L1C3nUrVteTNY8%3D"'
    )


async def test_oauth1_nonce_is_alphanumeric_and_as_long_as_the_timestamp() -> None:
    signer = OAuth1Signer("key", SecretStr("secret"))
    one, two = httpx.Request("GET", VECTOR_URL), httpx.Request("GET", VECTOR_URL)
    await signer.authorize(one)
    await signer.authorize(two)
    nonces = [
        r.headers["Authorization"].split('oauth_nonce="')[1].split('"')[0] for r in (one, two)
    ]
    assert all(len(n) == 10 and n.isalnum() for n in nonces)
    assert nonces[0] != nonces[1]


class TokenServer:
    """A token endpoint and a API that accepts only the latest token."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.issued: list[str] = []
        self.token_requests: list[httpx.Request] = []
        self.expires_in = expires_in
        self.revoked = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            self.token_requests.append(request)
            token = f"t{len(self.issued) + 1}"
            self.issued.append(token)
            self.revoked = False
            return httpx.Response(
                200,
                json={"access_token": token, "expires_in": self.expires_in, "token_type": "bearer"},
            )
        current = f"Bearer {self.issued[-1]}" if self.issued else None
        if self.revoked or request.headers.get("Authorization") != current:
            return httpx.Response(401, json={"imsx_description": "unauthorised"})
        return httpx.Response(200, json={"orgs": []})


AUTH2 = OAuth2Auth(
    kind="oauth2",
    token_url="https://sis.example/token",
    client_id="cid",
    secret_env="SIS_SECRET",
    scopes=("https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly", "x.readonly"),
)


async def test_oauth2_token_is_fetched_once_with_scopes_and_basic_auth() -> None:
    server = TokenServer()
    now = [0.0]
    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
        auth = OAuth2ClientCredentials(AUTH2, SecretStr("s3cret"), http, clock=lambda: now[0])
        assert list(await asyncio.gather(auth.token(), auth.token())) == ["t1", "t1"]
        now[0] = 3000.0
        assert await auth.token() == "t1"
        now[0] = 3545.0  # within the renewal margin before expiry (60 s)
        assert await auth.token() == "t2"
    request = server.token_requests[0]
    body = request.content.decode()
    assert "grant_type=client_credentials" in body
    assert (
        "scope=https%3A%2F%2Fpurl.imsglobal.org%2Fspec%2For%2Fv1p1%2Fscope%2Froster.readonly+x.readonly"
        in body
    )
    assert request.headers["Authorization"].startswith("Basic ")


async def test_a_401_refreshes_the_token_once_and_retries() -> None:
    server = TokenServer()
    source = ApiSource(id="api", kind="oneroster-api", base_url="https://sis.example", auth=AUTH2)
    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
        auth = OAuth2ClientCredentials(AUTH2, SecretStr("s"), http)
        client = OneRosterClient(source, http, auth, asyncio.Semaphore(2))
        assert (await client.page("orgs", offset=0, limit=10)).items == []
        server.revoked = True  # the server forgot the token: one 401, then a new token works
        assert (await client.page("orgs", offset=0, limit=10)).items == []
        assert server.issued == ["t1", "t2"]


async def test_a_second_401_fails_the_request() -> None:
    def always_401(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 60})
        return httpx.Response(401)

    source = ApiSource(id="api", kind="oneroster-api", base_url="https://sis.example", auth=AUTH2)
    async with httpx.AsyncClient(transport=httpx.MockTransport(always_401)) as http:
        auth = OAuth2ClientCredentials(AUTH2, SecretStr("s"), http)
        client = OneRosterClient(source, http, auth, asyncio.Semaphore(1), policy=RetryPolicy())
        with pytest.raises(FetchError, match="HTTP 401"):
            await client.page("orgs", offset=0, limit=10)


async def test_refused_client_credentials_fail_without_the_secret() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_client"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        auth = OAuth2ClientCredentials(AUTH2, SecretStr("s3cret"), http)
        with pytest.raises(FetchError, match="refused the client credentials") as caught:
            await auth.token()
        assert "s3cret" not in str(caught.value)


async def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    source = ApiSource(id="api", kind="oneroster-api", base_url="https://sis.example", auth=AUTH2)
    monkeypatch.delenv("SIS_SECRET", raising=False)
    async with httpx.AsyncClient() as http:
        with pytest.raises(FetchError, match="SIS_SECRET"):
            authenticator_for(source, http)
        monkeypatch.setenv("SIS_SECRET", "from-env")
        auth = authenticator_for(source, http)
        assert isinstance(auth, OAuth2ClientCredentials)
        assert "from-env" not in repr(AUTH2.secret())


def test_oauth1_hmac_sha1_signature_matches_oauthlibs_own_client() -> None:
    from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, Client  # type: ignore[import-untyped]

    reference = Client(
        "key", client_secret="secret", signature_method=SIGNATURE_HMAC_SHA1,
        timestamp="1700000000", nonce="abcdefghij",
    )  # fmt: skip
    _, headers, _ = reference.sign(VECTOR_URL, "GET")
    params, signature = oauth1_signature(
        "GET", VECTOR_URL, key="key", secret="secret", timestamp="1700000000",
        nonce="abcdefghij", with_version=True, method_name="HMAC-SHA1",
    )  # fmt: skip
    assert dict(params)["oauth_signature_method"] == "HMAC-SHA1"
    assert f'oauth_signature="{escape(signature)}"' in headers["Authorization"]
