"""The upload size limit holds while the body arrives: a chunked upload (no Content-Length) is
stopped with 413 once past the limit, before more of it is spooled to disk, and leaves no file."""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import Any

import asyncpg
import pytest
import starlette.formparsers
from rostersync_api.upload_limit import FRAMING
from rostersync_libs.settings import ServiceSettings

from tests.api import api, api_settings, token
from tests.bundles import write_tenants

pytestmark = pytest.mark.integration

LIMIT = 100_000
BOUNDARY = "rostersync-test-boundary"


class Spooled(SpooledTemporaryFile):  # type: ignore[type-arg]
    """Starlette's spool for an uploaded part, recording how much was written to it."""

    largest = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.written = 0

    def write(self, data: Any) -> int:
        self.written += len(data)
        Spooled.largest = max(Spooled.largest, self.written)
        return super().write(data)


async def chunked(content: bytes, total: int) -> AsyncIterator[bytes]:
    """A multipart body holding ``total`` bytes of ``content`` repeated, sent in chunks (httpx
    sends an async iterator with Transfer-Encoding: chunked and no Content-Length)."""
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"bundle\";"
           f" filename=\"b.zip\"\r\nContent-Type: application/zip\r\n\r\n").encode()  # fmt: skip
    for start in range(0, total, len(content)):
        yield content[: total - start]
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def test_a_chunked_upload_past_the_limit_is_stopped_as_it_arrives(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", Spooled)
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "bundle")
    operator = await token(db, settings, "operator")
    uploads = tmp_path / "uploads"
    limited = api_settings(settings, tenants, uploads).model_copy(
        update={"max_upload_bytes": LIMIT}
    )
    headers = {**operator, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    small = tmp_path / "small.zip"
    with zipfile.ZipFile(small, "w") as archive:
        archive.writestr("manifest.csv", "propertyName,value\n")

    async with api(limited) as http:
        stopped = await http.post("/api/v1/tenants/d1/uploads", headers=headers,
                                  content=chunked(b"\0" * 16384, 8_000_000))  # fmt: skip
        assert "content-length" not in stopped.request.headers
        assert stopped.request.headers["transfer-encoding"] == "chunked"
        assert stopped.status_code == 413
        assert stopped.json()["error"]["code"] == "payload_too_large"
        assert f"{LIMIT:,} bytes" in stopped.json()["error"]["message"]
        # Stopped at the limit: the spool on disk never held much more than the limit.
        assert 0 < Spooled.largest <= LIMIT + FRAMING
        assert not uploads.exists() or not any(uploads.rglob("*"))  # no file left behind

        Spooled.largest = 0
        said = await http.post("/api/v1/tenants/d1/uploads", headers=operator,
                               files={"bundle": ("b.zip", b"\0" * 300_000, "application/zip")})  # fmt: skip
        assert said.status_code == 413
        assert said.json()["error"]["code"] == "payload_too_large"
        assert Spooled.largest == 0  # its Content-Length said so: not a byte spooled

        within = await http.post("/api/v1/tenants/d1/uploads", headers=headers,
                                 content=chunked(small.read_bytes(), small.stat().st_size))  # fmt: skip
        assert within.status_code == 202, within.text
        kept = list((uploads / "d1").iterdir())
        assert [p.name for p in kept] == [f"{within.json()['run_id']}.zip"]
        assert kept[0].read_bytes() == small.read_bytes()
        assert (await http.get("/healthz")).status_code == 200  # the server took it in stride

    audited = [r["action"] for r in await db.fetch("SELECT action FROM api_audit")]
    assert audited == ["sync"]  # only the upload within the limit was acted on
