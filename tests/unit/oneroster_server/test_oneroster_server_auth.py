"""The OneRoster server's auth: OAuth 1.0a verification (reference §4.6) and OAuth 2 tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote, quote_plus, unquote

import pytest
from oauthlib.oauth1 import Client  # type: ignore[import-untyped]
from rostersync_oneroster_server.auth import (
    SCOPE_V1P1,
    SCOPE_V1P2,
    AuthError,
    TokenIssuer,
    needed_scopes,
    verify_oauth1,
)

VECTOR_URL = (
    "https://example.oneroster.com/ims/oneroster/v1p1/users?limit=100&offset=0"
    "&filter=dateLastModified%3E%272024-01-01T00%3A00%3A00Z%27"
)


def classlink_header(
    url: str,
    key: str,
    secret: str,
    timestamp: str = "1700000000",
    nonce: str = "abcdefghij",
    *,
    with_version: bool = False,
) -> tuple[str, str]:
    """The ClassLink recipe of reference §4.6, step by step: (signature, Authorization)."""
    base_url, query = url.split("?", 1)
    params = {
        "oauth_consumer_key": key,
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_timestamp": timestamp,
        "oauth_nonce": nonce,
    }
    if with_version:
        params["oauth_version"] = "1.0"
    for pair in query.split("&"):
        name, value = pair.split("=", 1)
        params[name] = unquote(value)
    joined = "&".join(f"{k}={quote(v)}" for k, v in sorted(params.items()))
    base = "GET&" + quote_plus(base_url) + "&" + quote_plus(joined)
    digest = hmac.new((quote_plus(secret) + "&").encode(), base.encode(), hashlib.sha256).digest()
    params["oauth_signature"] = base64.b64encode(digest).decode()
    header = "OAuth " + ",".join(
        f'{k}="{quote_plus(v)}"' for k, v in params.items() if k.startswith("oauth_")
    )
    return params["oauth_signature"], header


@pytest.mark.parametrize(
    ("with_version", "expected"),
    [
        (False, "PcfBmN6uN5LV6PULofiH9KkskPht7L1C3nUrVteTNY8="),
        (True, "dNmT1RVuJK1BFJGzqGTUAeQOFEgBDLIcZqiOmwAj1IY="),
    ],
)
def test_reference_vector(with_version: bool, expected: str) -> None:
    signature, header = classlink_header(VECTOR_URL, "key", "secret", with_version=with_version)
    assert signature == expected  # the recipe is built right
    assert verify_oauth1("GET", VECTOR_URL, header, {"key": "secret"}, max_skew=None) == "key"
    with pytest.raises(AuthError, match="invalid oauth_signature"):
        verify_oauth1("GET", VECTOR_URL, header, {"key": "wrong"}, max_skew=None)
    with pytest.raises(AuthError, match="consumer_key"):
        verify_oauth1("GET", VECTOR_URL, header, {"other": "secret"}, max_skew=None)


def test_slash_in_a_value_either_encoding() -> None:
    url = "http://127.0.0.1:1/ims/oneroster/v1p1/users?filter=email~%27a%2Fb%27"
    _, classlink = classlink_header(url, "k", "s", timestamp=str(int(time.time())))
    assert verify_oauth1("GET", url, classlink, {"k": "s"}) == "k"  # "/" left as is
    for method in ("HMAC-SHA256", "HMAC-SHA1"):  # RFC 5849 ("/" → %2F), oauth_version sent
        _, headers, _ = Client("k", client_secret="s", signature_method=method).sign(url)
        assert verify_oauth1("GET", url, headers["Authorization"], {"k": "s"}) == "k"
        old_style = headers["Authorization"].replace("OAuth ", "OAuth, ", 1)  # old ClassLink .NET
        assert verify_oauth1("GET", url, old_style, {"k": "s"}) == "k"


def test_rejections() -> None:
    url = "http://127.0.0.1:1/ims/oneroster/v1p1/orgs"
    _, headers, _ = Client("k", client_secret="s", signature_method="PLAINTEXT").sign(url)
    with pytest.raises(AuthError, match="unsupported"):
        verify_oauth1("GET", url, headers["Authorization"], {"k": "s"})
    _, stale = classlink_header(url + "?limit=1", "k", "s", timestamp="1700000000")
    with pytest.raises(AuthError, match="timestamp"):
        verify_oauth1("GET", url + "?limit=1", stale, {"k": "s"})
    _, headers, _ = Client("k", client_secret="s").sign(url + "?limit=1")
    with pytest.raises(AuthError):  # the query was changed after signing
        verify_oauth1("GET", url + "?limit=2", headers["Authorization"], {"k": "s"})
    with pytest.raises(AuthError):
        verify_oauth1("GET", url, "Bearer x", {"k": "s"})


def test_scopes_needed() -> None:
    assert needed_scopes("users", "1.2") == {
        SCOPE_V1P2 + "roster.readonly",
        SCOPE_V1P2 + "roster-core.readonly",
    }
    assert needed_scopes("enrollments", "1.2") == {SCOPE_V1P2 + "roster.readonly"}
    assert needed_scopes("demographics", "1.2") == {SCOPE_V1P2 + "roster-demographics.readonly"}
    assert SCOPE_V1P1 + "roster.readonly" in needed_scopes("enrollments", "1.1")


def test_tokens_scopes_and_expiry() -> None:
    issuer = TokenIssuer({"c": "s"}, ttl=0.2)
    core = SCOPE_V1P2 + "roster-core.readonly"
    token = issuer.issue("c", "s", core + " https://example.org/unknown")
    assert token.scopes == {core}
    assert issuer.check(token.value, needed_scopes("users", "1.2")) is token
    with pytest.raises(AuthError) as forbidden:
        issuer.check(token.value, needed_scopes("enrollments", "1.2"))
    assert forbidden.value.status == 403
    every = issuer.issue("c", "s", None)  # no scope asked: every rostering scope
    assert issuer.check(every.value, needed_scopes("demographics", "1.1"))
    with pytest.raises(AuthError, match="invalid_client"):
        issuer.issue("c", "wrong", None)
    with pytest.raises(AuthError, match="invalid_scope"):
        issuer.issue("c", "s", "https://example.org/unknown")
    time.sleep(0.25)
    with pytest.raises(AuthError, match="expired"):
        issuer.check(token.value, needed_scopes("users", "1.2"))
    fresh = issuer.issue("c", "s", None)
    issuer.expire_all()
    with pytest.raises(AuthError, match="expired"):
        issuer.check(fresh.value, needed_scopes("users", "1.2"))
    with pytest.raises(AuthError, match="unknown"):
        issuer.check("nope", needed_scopes("users", "1.2"))
