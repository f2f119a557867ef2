"""The admin API's settings (the shared ones, and where it listens and keeps uploads)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from rostersync_libs.settings import ServiceSettings


class ApiSettings(ServiceSettings):
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8470, ge=0, le=65535)  # 0: any free port (tests)
    # Bundles uploaded by hand are streamed here, one file per upload, then synced from here.
    upload_dir: Path = Path("uploads")
    max_upload_bytes: int = Field(default=1 << 30, ge=1)  # a large district's zip is ≈ 100 MB
