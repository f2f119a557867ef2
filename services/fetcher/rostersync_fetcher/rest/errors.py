"""Why a REST run fails."""

from __future__ import annotations


class FetchError(Exception):
    """The source could not be read; the run fails with this message (never a secret)."""


class TransientError(FetchError):
    """Worth another attempt (429, 5xx, time-out, connection error)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the server asked us to wait, if it said


class ForbiddenError(FetchError):
    """HTTP 403: the credentials may not read this (a scope the district did not grant)."""


class LimitError(FetchError):
    """An answer passed one of the source's limits (never retried: it would again)."""
