"""When REST sources run: periods, daily times in a time zone, pause windows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from pydantic import ValidationError
from rostersync_fetcher.rest.schedule import next_run
from rostersync_libs.tenants import ApiSchedule

CHICAGO = "America/Chicago"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_every_seconds_runs_at_once_then_a_period_after_each_start() -> None:
    schedule = ApiSchedule(every_seconds=5)
    now = utc(2025, 1, 6, 12, 0, 0)
    assert next_run(schedule, now, None) == now
    assert next_run(schedule, now, now - timedelta(seconds=2)) == now + timedelta(seconds=3)
    # a run longer than the period is followed at once
    assert next_run(schedule, now, now - timedelta(seconds=60)) == now


def test_daily_at_is_local_time_in_the_schedules_zone() -> None:
    schedule = ApiSchedule(daily_at=time(2, 30), timezone=CHICAGO)
    # 2025-01-06 07:00 UTC = 01:00 in Chicago (CST, UTC-6): today 02:30 local = 08:30 UTC
    assert next_run(schedule, utc(2025, 1, 6, 7, 0), None) == utc(2025, 1, 6, 8, 30)
    # after today's run: tomorrow
    assert next_run(schedule, utc(2025, 1, 6, 9, 0), utc(2025, 1, 6, 8, 30)) == utc(
        2025, 1, 7, 8, 30
    )
    # summer (CDT, UTC-5)
    assert next_run(schedule, utc(2025, 7, 1, 0, 0), None) == utc(2025, 7, 1, 7, 30)


def test_a_scheduled_start_in_a_pause_window_waits_for_its_end() -> None:
    schedule = ApiSchedule(every_seconds=300, timezone=CHICAGO, pause=("07:30-15:30",))
    # 14:00 UTC = 08:00 CST: in the window, which ends 15:30 CST = 21:30 UTC
    assert next_run(schedule, utc(2025, 1, 6, 14, 0), None) == utc(2025, 1, 6, 21, 30)
    # 13:00 UTC = 07:00 CST: before the window
    assert next_run(schedule, utc(2025, 1, 6, 13, 0), None) == utc(2025, 1, 6, 13, 0)


def test_pause_windows_can_wrap_midnight_and_chain() -> None:
    schedule = ApiSchedule(every_seconds=60, pause=("22:00-02:00", "02:00-03:00"))
    assert next_run(schedule, utc(2025, 1, 6, 23, 0), None) == utc(2025, 1, 7, 3, 0)
    assert next_run(schedule, utc(2025, 1, 7, 1, 0), None) == utc(2025, 1, 7, 3, 0)
    assert next_run(schedule, utc(2025, 1, 7, 21, 59), None) == utc(2025, 1, 7, 21, 59)


def test_daily_time_inside_a_pause_moves_to_its_end() -> None:
    schedule = ApiSchedule(daily_at=time(8, 0), pause=("07:30-15:30",))
    assert next_run(schedule, utc(2025, 1, 6, 0, 0), None) == utc(2025, 1, 6, 15, 30)


def test_schedule_configuration_is_checked() -> None:
    assert ApiSchedule.model_validate({"daily_at": "02:30"}).daily_at == time(2, 30)
    with pytest.raises(ValidationError, match="exactly one"):
        ApiSchedule(every_seconds=5, daily_at=time(2, 30))
    with pytest.raises(ValidationError, match="exactly one"):
        ApiSchedule()
    with pytest.raises(ValidationError, match="unknown time zone"):
        ApiSchedule(every_seconds=5, timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="HH:MM-HH:MM"):
        ApiSchedule(every_seconds=5, pause=("7:30-15",))
