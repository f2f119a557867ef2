"""When the next scheduled run of a REST source starts.

``every_seconds``: that long after the previous run *started* (a run longer than the period is
followed at once by the next); the first run at once. ``daily_at``: the next occurrence of that
local time in the schedule's time zone (DST handled by zoneinfo). Either way a start that falls in
a pause window (local ``HH:MM-HH:MM``; a window may wrap midnight) moves to the window's end.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rostersync_libs.tenants import ApiSchedule


def parse_window(window: str) -> tuple[time, time]:
    start, end = window.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def pause_end(moment: datetime, windows: tuple[str, ...], zone: ZoneInfo) -> datetime | None:
    """If ``moment`` is in a pause window, when that window ends (aware); else None."""
    local = moment.astimezone(zone)
    now = local.time().replace(tzinfo=None)
    day = local.date()
    for window in windows:
        start, end = parse_window(window)
        if start == end:
            continue
        if start < end:
            if start <= now < end:
                return datetime.combine(day, end, zone)
        elif now >= start:  # wraps midnight, we are before it
            return datetime.combine(day + timedelta(days=1), end, zone)
        elif now < end:  # wraps midnight, we are after it
            return datetime.combine(day, end, zone)
    return None


def outside_pauses(moment: datetime, schedule: ApiSchedule) -> datetime:
    """The first instant at or after ``moment`` that is in no pause window."""
    zone = ZoneInfo(schedule.timezone)
    for _ in range(len(schedule.pause) + 2):  # windows can chain; each step leaves one
        end = pause_end(moment, schedule.pause, zone)
        if end is None:
            return moment
        moment = end.astimezone(UTC)
    return moment


def next_run(schedule: ApiSchedule, now: datetime, last_start: datetime | None) -> datetime:
    """The next scheduled start (UTC) at or after ``now``."""
    if schedule.every_seconds is not None:
        candidate = now
        if last_start is not None:
            candidate = max(now, last_start + timedelta(seconds=schedule.every_seconds))
    else:
        assert schedule.daily_at is not None
        zone = ZoneInfo(schedule.timezone)
        local = now.astimezone(zone)
        candidate = datetime.combine(local.date(), schedule.daily_at, zone)
        if candidate.astimezone(UTC) < now or (
            last_start is not None and candidate.astimezone(UTC) <= last_start
        ):
            candidate = datetime.combine(local.date() + timedelta(days=1), schedule.daily_at, zone)
    return outside_pauses(candidate.astimezone(UTC), schedule)
