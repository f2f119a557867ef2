"""Authentication: OAuth 1.0a request signatures (1.1) and OAuth 2 client-credentials tokens.

OAuth 1.0a is verified with oauthlib's signature functions, leniently, as real 1.1 clients
differ (reference §4.6): HMAC-SHA256 or HMAC-SHA1; with or without ``oauth_version``; parameter
values encoded per RFC 5849 (``/`` → ``%2F``) or as Python's ``quote`` does (``/`` kept, the
ClassLink recipe); an ``Authorization: OAuth, …`` header (old ClassLink .NET) is read too.
Nonces are not remembered (no replay check): this is a test server.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote

from oauthlib.oauth1.rfc5849 import signature, utils  # type: ignore[import-untyped]

SCOPE_V1P2 = "https://purl.imsglobal.org/spec/or/v1p2/scope/"
SCOPE_V1P1 = "https://purl.imsglobal.org/spec/or/v1p1/scope/"
ROSTER = "roster.readonly"
CORE = "roster-core.readonly"
DEMOGRAPHICS = "roster-demographics.readonly"
ALL_SCOPES = tuple(p + s for p in (SCOPE_V1P2, SCOPE_V1P1) for s in (ROSTER, CORE, DEMOGRAPHICS))
CORE_COLLECTIONS = frozenset(
    [
        "orgs",
        "schools",
        "academicSessions",
        "terms",
        "gradingPeriods",
        "courses",
        "classes",
        "users",
        "students",
        "teachers",
    ]
)
SIGNERS = {
    "HMAC-SHA256": signature.sign_hmac_sha256_with_client,
    "HMAC-SHA1": signature.sign_hmac_sha1_with_client,
}


class AuthError(Exception):
    """Refused: ``status`` 401 (who are you?) or 403 (not allowed to read that)."""

    def __init__(self, description: str, status: int = 401) -> None:
        super().__init__(description)
        self.description = description
        self.status = status


def needed_scopes(collection: str, version: str) -> frozenset[str]:
    """Any one of these scopes allows reading ``collection`` (1.1 also accepts v1p2 names)."""
    names = {DEMOGRAPHICS} if collection == "demographics" else {ROSTER}
    if collection in CORE_COLLECTIONS:
        names.add(CORE)
    prefixes = (SCOPE_V1P2,) if version == "1.2" else (SCOPE_V1P1, SCOPE_V1P2)
    return frozenset(p + n for p in prefixes for n in names)


# --- OAuth 1.0a ----------------------------------------------------------------------------


def oauth1_params(header: str) -> dict[str, str]:
    """The ``oauth_*`` parameters of an ``Authorization: OAuth …`` header (values decoded)."""
    rest = header.strip()
    if rest[:5].lower() != "oauth":
        raise AuthError("not an OAuth authorization header")
    rest = rest[5:].lstrip(" ,")
    pairs = utils.parse_authorization_header("OAuth " + rest)
    return {str(k): str(utils.unescape(v)) for k, v in pairs if k != "realm"}


@dataclass(frozen=True)
class _Secrets:
    """What oauthlib's ``sign_*_with_client`` reads from a client."""

    client_secret: str
    resource_owner_secret: str | None = None


def _normalized_variants(params: list[tuple[str, str]]) -> list[str]:
    rfc = signature.normalize_parameters(params)
    classlink = "&".join(sorted(f"{utils.escape(k)}={quote(v, safe='/~')}" for k, v in params))
    return [rfc] if classlink == rfc else [rfc, classlink]


def verify_oauth1(
    method: str,
    url: str,
    authorization: str,
    consumers: Mapping[str, str],
    *,
    max_skew: float | None = 600,
    now: float | None = None,
    methods: Collection[str] = tuple(SIGNERS),
) -> str:
    """Verify a signed request; returns the consumer key or raises ``AuthError``.

    ``url`` is the full URL the client asked for (scheme, host, port, path, raw query).
    """
    oauth = oauth1_params(authorization)
    key = oauth.get("oauth_consumer_key", "")
    if key not in consumers:
        raise AuthError("unknown oauth_consumer_key")
    method_name = oauth.get("oauth_signature_method", "")
    signer = SIGNERS.get(method_name) if method_name in methods else None
    if signer is None:
        raise AuthError(f"unsupported oauth_signature_method {method_name!r}")
    given = oauth.get("oauth_signature", "")
    try:
        stamp = int(oauth.get("oauth_timestamp", ""))
    except ValueError as exc:
        raise AuthError("missing or bad oauth_timestamp") from exc
    if max_skew is not None and abs((time.time() if now is None else now) - stamp) > max_skew:
        raise AuthError("oauth_timestamp too far from now")
    base_url, _, query = url.partition("?")
    query_params = parse_qsl(query, keep_blank_values=True)
    signed = [(k, v) for k, v in oauth.items() if k != "oauth_signature"]
    variants = [signed]
    if "oauth_version" in oauth:
        variants.append([(k, v) for k, v in signed if k != "oauth_version"])
    else:
        variants.append([*signed, ("oauth_version", "1.0")])
    uri = signature.base_string_uri(base_url)
    for oauth_params in variants:
        for normalized in _normalized_variants([*query_params, *oauth_params]):
            base = signature.signature_base_string(method, uri, normalized)
            expected = str(signer(base, _Secrets(consumers[key])))
            if secrets.compare_digest(expected, given):
                return key
    raise AuthError("invalid oauth_signature")


# --- OAuth 2 client credentials ------------------------------------------------------------


@dataclass
class Token:
    value: str
    client_id: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class TokenIssuer:
    """Issues and checks bearer tokens; ``ttl`` seconds of life (tests make it short)."""

    clients: Mapping[str, str]
    ttl: float = 3600.0
    tokens: dict[str, Token] = field(default_factory=dict)
    issued: int = 0

    def issue(self, client_id: str, client_secret: str, scope: str | None) -> Token:
        known = self.clients.get(client_id)
        if known is None or not secrets.compare_digest(known, client_secret):
            raise AuthError("invalid_client")
        wanted = frozenset(scope.split()) if scope else frozenset(ALL_SCOPES)
        granted = wanted & frozenset(ALL_SCOPES)
        if not granted:
            raise AuthError("invalid_scope", status=400)
        token = Token(secrets.token_urlsafe(24), client_id, granted, time.monotonic() + self.ttl)
        self.tokens[token.value] = token
        self.issued += 1
        return token

    def check(self, bearer: str, allowed: frozenset[str]) -> Token:
        token = self.tokens.get(bearer)
        if token is None:
            raise AuthError("unknown bearer token")
        if time.monotonic() >= token.expires_at:
            raise AuthError("bearer token expired")
        if not token.scopes & allowed:
            raise AuthError("the token's scopes do not allow this request", status=403)
        return token

    def expire_all(self) -> None:
        """Make every token issued so far expired now (to test a client's refresh)."""
        for token in self.tokens.values():
            token.expires_at = 0.0
