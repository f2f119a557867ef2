"""Sealed values (sealing.py) and wrapped data keys (data_keys.py): the pure parts."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from rostersync_libs.data_keys import master_key, unwrap, wrap
from rostersync_libs.sealing import (
    MAGIC,
    NotSealedError,
    open_headers,
    open_sealed,
    seal,
    seal_headers,
    tenant_of,
    tenant_of_or_none,
)
from rostersync_libs.settings import ServiceSettings

KEY = AESGCM(AESGCM.generate_key(bit_length=256))
VALUE = b'{"kind":"record","tenant":"d1","payload":{"givenName":"Ada"}}'


def test_a_sealed_value_opens_with_its_tenant_s_key_and_hides_its_content() -> None:
    sealed = seal(KEY, "d1", VALUE)
    assert sealed.startswith(MAGIC)
    assert b"Ada" not in sealed
    assert open_sealed(KEY, "d1", sealed) == VALUE
    assert seal(KEY, "d1", VALUE) != sealed  # a fresh nonce each time


def test_a_value_does_not_open_as_another_tenant_s_with_another_key_or_altered() -> None:
    sealed = seal(KEY, "d1", VALUE)
    with pytest.raises(NotSealedError, match="does not open"):
        open_sealed(KEY, "d2", sealed)  # the tenant is authenticated with the value
    with pytest.raises(NotSealedError, match="does not open"):
        open_sealed(AESGCM(AESGCM.generate_key(bit_length=256)), "d1", sealed)
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(NotSealedError, match="does not open"):
        open_sealed(KEY, "d1", altered)
    with pytest.raises(NotSealedError, match="not sealed"):
        open_sealed(KEY, "d1", VALUE)  # a forged plain event


def test_headers_are_sealed_each() -> None:
    headers = [("rostersync.errors.findings", b'[{"value":"Ada"}]'), ("x", b"")]
    sealed = seal_headers(KEY, "d1", headers)
    assert sealed is not None
    assert all(b"Ada" not in v for _, v in sealed)
    assert open_headers(KEY, "d1", sealed) == headers
    assert seal_headers(KEY, "d1", None) is None


def test_the_tenant_is_the_key_s_first_field() -> None:
    assert tenant_of(b"d1:users:u:1") == "d1"
    assert tenant_of(b"d1:run:abc") == "d1"
    for key in (None, b"", b"nocolon", b":users:u"):
        with pytest.raises(NotSealedError):
            tenant_of(key)
        assert tenant_of_or_none(key) == ""


def test_a_data_key_wrapped_by_the_master_key_unwraps_only_for_its_tenant() -> None:
    master = AESGCM(AESGCM.generate_key(bit_length=256))
    key = AESGCM.generate_key(bit_length=256)
    stored = wrap(master, "d1", key)
    assert key not in stored
    assert unwrap(master, "d1", stored, True) == key
    with pytest.raises(ValueError, match="does not unwrap"):  # bound to its tenant
        unwrap(master, "d2", stored, True)
    with pytest.raises(ValueError, match="ROSTERSYNC_MASTER_KEY_FILE"):
        unwrap(None, "d1", stored, True)
    assert wrap(None, "d1", key) == key  # no master key: stored as it is
    assert unwrap(None, "d1", key, False) == key


def test_the_master_key_is_base64_of_32_bytes_from_a_file_or_the_environment(
    tmp_path: Path,
) -> None:
    raw = bytes(range(32))
    (tmp_path / "master.key").write_text(base64.b64encode(raw).decode() + "\n")
    from_file = ServiceSettings(master_key_file=tmp_path / "master.key")
    assert master_key(from_file) is not None
    assert master_key(ServiceSettings()) is None
    (tmp_path / "short.key").write_text(base64.b64encode(raw[:16]).decode())
    with pytest.raises(ValueError, match="32 random bytes"):
        master_key(ServiceSettings(master_key_file=tmp_path / "short.key"))
    with pytest.raises(ValueError, match="32 random bytes"):
        master_key(ServiceSettings(master_key="not base64!"))
    with pytest.raises(ValueError, match="keep one"):
        ServiceSettings(master_key_file=tmp_path / "master.key", master_key="x")
