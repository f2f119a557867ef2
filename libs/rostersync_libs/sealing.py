"""Sealed values: every event on a topic is encrypted with its tenant's data key.

Why: the record topics are kept forever (the replay source) and hold children's data. Sealing
each value with a per-tenant key (AES-256-GCM) makes a purged tenant's events unreadable the
moment its key is destroyed (crypto-shredding, see ``data_keys.py`` and docs/security.md), and
makes an event that was not sealed with the key fail to open: a message forged on Kafka without
the tenant's key is refused, whatever it claims.

A sealed value is ``MAGIC + nonce + ciphertext``; the tenant (the Kafka key's first field, every
rostersync key starts with ``tenant:``) is authenticated with it, so an event of one tenant
cannot be passed off as another's. Header values are sealed the same way (dead letters' reasons
quote record values). Tombstones (no value) stay tombstones.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"\x00rs1"
NONCE_BYTES = 12
KEY_BYTES = 32
# What an unreadable event's value becomes (compared by identity): a purged tenant's event, or
# one that does not open with its tenant's key. Every consumer skips it but counts its offset.
UNREADABLE = b"\x00rostersync:unreadable"

Headers = list[tuple[str, bytes]]


class NotSealedError(ValueError):
    """The value is not a sealed rostersync event, or does not open with the tenant's key."""


def tenant_of(key: bytes | None) -> str:
    """The tenant a Kafka key belongs to: every rostersync key is ``tenant:…``."""
    if not key:
        raise NotSealedError("an event without a key belongs to no tenant")
    tenant, sep, _ = key.partition(b":")
    if not sep or not tenant:
        raise NotSealedError("an event key without a tenant")
    return tenant.decode("utf-8", "replace")


def tenant_of_or_none(key: bytes | None) -> str:
    """The key's tenant, or "" when it has none."""
    try:
        return tenant_of(key)
    except NotSealedError:
        return ""


def _aad(tenant: str) -> bytes:
    return b"rostersync-event:" + tenant.encode()


def seal(aead: AESGCM, tenant: str, value: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + nonce + aead.encrypt(nonce, value, _aad(tenant))


def is_sealed(value: bytes) -> bool:
    return value.startswith(MAGIC)


def open_sealed(aead: AESGCM, tenant: str, value: bytes) -> bytes:
    if not value.startswith(MAGIC):
        raise NotSealedError("the value is not sealed")
    start = len(MAGIC)
    nonce = value[start : start + NONCE_BYTES]
    try:
        return aead.decrypt(nonce, value[start + NONCE_BYTES :], _aad(tenant))
    except InvalidTag:
        raise NotSealedError(f"the value does not open with tenant {tenant}'s key") from None


def seal_headers(aead: AESGCM, tenant: str, headers: Headers | None) -> Headers | None:
    if not headers:
        return headers
    return [(name, seal(aead, tenant, value)) for name, value in headers]


def open_headers(aead: AESGCM, tenant: str, headers: Headers) -> Headers:
    return [(name, open_sealed(aead, tenant, value)) for name, value in headers]
