"""Authenticating requests: OAuth 1.0a HMAC-SHA256 signing (ClassLink's recipe) and OAuth 2.0
client credentials with a cached token.

OAuth1 (reference §4.6): the signed parameters are exactly ``oauth_consumer_key``,
``oauth_signature_method=HMAC-SHA256``, ``oauth_timestamp`` and ``oauth_nonce`` (no
``oauth_version``, token or callback), merged with the query's parameters; base string and
HMAC-SHA256 come from oauthlib's RFC 5849 helpers, so the request is verified by any RFC 5849
server as well as by ClassLink's. The signature is computed over the URL exactly as it is sent.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from oauthlib.oauth1.rfc5849 import signature as rfc5849  # type: ignore[import-untyped]
from oauthlib.oauth1.rfc5849.utils import escape  # type: ignore[import-untyped]
from pydantic import SecretStr
from rostersync_libs.tenants import ApiSource, OAuth1Auth, OAuth2Auth

from rostersync_fetcher.rest.body import Received, read_body
from rostersync_fetcher.rest.errors import FetchError, LimitError, TransientError

# A token answer is a few hundred bytes; a server sending more is not answering for a token.
MAX_TOKEN_ANSWER_BYTES = 64 * 1024

NONCE_ALPHABET = string.ascii_letters + string.digits


class Authenticator(Protocol):
    async def authorize(self, request: httpx.Request) -> None:
        """Add the request's credentials (it is sent as it is after this)."""

    async def invalidate(self) -> bool:
        """The server answered 401: drop cached credentials; True if a new attempt may pass."""


SignatureMethod = Literal["HMAC-SHA256", "HMAC-SHA1"]
SIGNERS: dict[str, Callable[[str, SimpleNamespace], str]] = {
    "HMAC-SHA256": rfc5849.sign_hmac_sha256_with_client,
    "HMAC-SHA1": rfc5849.sign_hmac_sha1_with_client,
}


def oauth1_signature(
    method: str,
    url: str,
    *,
    key: str,
    secret: str,
    timestamp: str,
    nonce: str,
    with_version: bool = False,
    method_name: SignatureMethod = "HMAC-SHA256",
) -> tuple[list[tuple[str, str]], str]:
    """The signed OAuth parameters and the base64 HMAC signature of one request."""
    parts = urlsplit(url)
    oauth = [
        ("oauth_consumer_key", key),
        ("oauth_signature_method", method_name),
        ("oauth_timestamp", timestamp),
        ("oauth_nonce", nonce),
    ]
    if with_version:  # what oauthlib's own Client sends; servers accept both
        oauth.append(("oauth_version", "1.0"))
    query = rfc5849.collect_parameters(uri_query=parts.query, exclude_oauth_signature=False)
    normalized = rfc5849.normalize_parameters([*oauth, *query])
    base_uri = rfc5849.base_string_uri(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))
    base = rfc5849.signature_base_string(method.upper(), base_uri, normalized)
    keys = SimpleNamespace(client_secret=secret, resource_owner_secret="")  # no token secret
    return oauth, str(SIGNERS[method_name](base, keys))


def oauth1_header(oauth: list[tuple[str, str]], signature: str) -> str:
    """``OAuth k="v",k="v"`` (ClassLink's form: comma without space, no realm)."""
    items = [*oauth, ("oauth_signature", signature)]
    return "OAuth " + ",".join(f'{k}="{escape(v)}"' for k, v in items)


class OAuth1Signer:
    """Signs every request anew (fresh timestamp and nonce)."""

    def __init__(
        self,
        key: str,
        secret: SecretStr,
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[int], str] | None = None,
        method_name: SignatureMethod = "HMAC-SHA256",
    ) -> None:
        self._key = key
        self._secret = secret
        self._method_name: SignatureMethod = method_name
        self._clock = clock
        self._nonce = nonce or (lambda n: "".join(secrets.choice(NONCE_ALPHABET) for _ in range(n)))

    async def authorize(self, request: httpx.Request) -> None:
        timestamp = str(int(self._clock()))
        oauth, signature = oauth1_signature(
            request.method,
            str(request.url),
            key=self._key,
            secret=self._secret.get_secret_value(),
            timestamp=timestamp,
            nonce=self._nonce(len(timestamp)),
            method_name=self._method_name,
        )
        request.headers["Authorization"] = oauth1_header(oauth, signature)

    async def invalidate(self) -> bool:
        return False  # a signature is computed per request: nothing cached to refresh


class OAuth2ClientCredentials:
    """A bearer token from the client-credentials grant, reused until shortly before it expires."""

    def __init__(
        self,
        auth: OAuth2Auth,
        secret: SecretStr,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        margin_seconds: float = 60.0,
    ) -> None:
        self._auth = auth
        self._secret = secret
        self._http = http
        self._clock = clock
        self._margin = margin_seconds
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetched = 0  # tokens obtained (for tests and logs)

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                await self._fetch()
            assert self._token is not None
            return self._token

    async def _fetch(self) -> None:
        data = {"grant_type": "client_credentials"}
        if self._auth.scopes:
            data["scope"] = " ".join(self._auth.scopes)
        try:
            async with self._http.stream(
                "POST",
                self._auth.token_url,
                data=data,
                auth=(self._auth.client_id, self._secret.get_secret_value()),
                headers={"Accept": "application/json"},
            ) as response:
                status = response.status_code
                if status == 429 or status >= 500:
                    raise TransientError(f"token endpoint answered HTTP {status}")
                if status != 200:
                    raise FetchError(
                        f"token endpoint refused the client credentials (HTTP {status})"
                    )
                raw = await read_body(
                    response, MAX_TOKEN_ANSWER_BYTES, Received(), "the limit of a token answer"
                )
        except httpx.TransportError as exc:
            raise TransientError(f"token endpoint: {type(exc).__name__}") from exc
        except LimitError as exc:
            raise FetchError(f"token endpoint: {exc}") from None
        try:
            body = orjson.loads(raw)
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in") or 3600)
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
            raise FetchError("token endpoint answered without an access_token") from exc
        self._token = token
        # Renew shortly before expiry: a request must not carry a token that dies in flight.
        self._expires_at = self._clock() + max(0.0, lifetime - min(self._margin, lifetime / 10))
        self.fetched += 1

    async def authorize(self, request: httpx.Request) -> None:
        request.headers["Authorization"] = f"Bearer {await self.token()}"

    async def invalidate(self) -> bool:
        async with self._lock:
            self._token = None
        return True


def authenticator_for(
    source: ApiSource, http: httpx.AsyncClient, stored: SecretStr | None = None
) -> Authenticator:
    """The source's authenticator: with the secret stored through the admin API when given,
    else read from the environment now (``secret_env``)."""
    auth = source.auth
    try:
        secret = stored or auth.secret()
    except KeyError as exc:
        raise FetchError(str(exc.args[0])) from exc
    if isinstance(auth, OAuth1Auth):
        return OAuth1Signer(auth.key, secret, method_name=auth.signature_method)
    return OAuth2ClientCredentials(auth, secret, http)
