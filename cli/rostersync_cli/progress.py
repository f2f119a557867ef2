"""``sync --wait``: what the run has done so far, and why it waits when nothing moves.

On a terminal one line is rewritten in place (fetched, validated, mapped, written and rejected so
far, the numbers of the API's run view; a bar once the fetcher has said how many records it sent); elsewhere only the hints are printed. A hint comes
when nothing has moved for a while: the command not taken by any fetcher (is one running?), or
the run waiting behind a backlog (which service, how many messages).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO
from uuid import UUID

import asyncpg
from rostersync_libs.run_reports.progress import progress
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store import runs

from rostersync_cli import lag

STILL_SECONDS = 20.0  # nothing moved this long: say why


class ProgressLine:
    def __init__(
        self, settings: ServiceSettings, tenant: str, run_id: UUID, out: TextIO = sys.stderr
    ) -> None:
        self._settings, self._tenant, self._run_id, self._out = settings, tenant, run_id, out
        self._last: Any = None
        self._moved = time.monotonic()
        self._hinted = False

    async def tick(self, conn: asyncpg.Connection) -> None:
        try:
            now = await progress(conn, self._tenant, self._run_id)
        except asyncpg.UndefinedTableError:
            now = None
        if now != self._last:
            self._last, self._moved, self._hinted = now, time.monotonic(), False
            if now is not None and self._out.isatty():
                self._out.write("\r" + line(now) + "   ")
                self._out.flush()
        elif not self._hinted and time.monotonic() - self._moved > STILL_SECONDS:
            self._hinted = True
            self._out.write(("\n" if self._out.isatty() else "") + await self._why(conn) + "\n")

    async def _why(self, conn: asyncpg.Connection) -> str:
        behind = {s: sum(p.values()) for s, p in (await lag.lag(self._settings)).items()}
        started = await runs.run_exists(conn, self._tenant, self._run_id)
        if not started and behind.get("fetcher"):
            return (f"waiting: no fetcher has taken the command ({behind['fetcher']} waiting);"
                    " is one running? (`rostersync serve`)")  # fmt: skip
        backlog = ", ".join(f"{s} {n:,}" for s, n in behind.items() if n and s != "fetcher")
        if backlog:
            return f"waiting behind a backlog (messages not yet done): {backlog}"
        if not started:
            return "waiting: the run has not started (are the services running? `rostersync serve`)"
        return (
            "waiting: the run is started but nothing moved (`rostersync lag`, the services' logs)"
        )


def line(now: dict[str, Any]) -> str:
    """fetched, validated, mapped, written so far (the run's view in the API has the same)."""
    published = sum((now.get("published") or {}).values())
    written, rejected = now.get("written") or 0, sum(now["rejected_by_stage"].values())
    stages = ", ".join(f"{stage} {now.get(stage) or 0:,}" for stage in ("validated", "mapped"))
    text = f"{stages}, written {written:,}, rejected {rejected:,}"
    if not published:
        return f"fetching… fetched {now.get('fetched') or 0:,}, {text}"
    done = min(1.0, (written + rejected) / published)
    bar = "#" * int(done * 20)
    return f"[{bar:<20}] {done:4.0%}  published {published:,}, {text}"
