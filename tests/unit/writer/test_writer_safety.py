"""The writer's hold is the stricter of a run's marker and the tenants file."""

from __future__ import annotations

import os
from pathlib import Path

from rostersync_libs.events import RunMarker
from rostersync_writer.safety import Hold, SafetyLimits

TENANTS = (
    '[[tenants]]\nid = "d1"\nname = "D"\nhold_threshold = {threshold}\nhold_min_records = 50\n'
    '[[tenants.sources]]\nid = "csv"\npath = "/srv/d1"\n'
)


def marker(threshold: float, min_records: int = 20) -> RunMarker:
    return RunMarker(
        origin_partition=0,
        origin_count=1,
        fanout=1,
        hold_threshold=threshold,
        hold_min_records=min_records,
    )


def test_a_marker_can_tighten_the_hold_but_never_loosen_it(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(TENANTS.format(threshold=0.3))
    limits = SafetyLimits(path)
    assert limits.hold_for("d1", marker(1.0, 0)) == Hold(0.3, 0)
    assert limits.hold_for("d1", marker(0.05, 1000)) == Hold(0.05, 50)
    # A tenant the file does not name, or no file at all: the defaults are the ceiling.
    assert limits.hold_for("nobody", marker(1.0, 1000)) == Hold(0.10, 20)
    assert SafetyLimits(tmp_path / "missing.toml").hold_for("d1", marker(1.0)) == Hold(0.10, 20)


def test_the_tenants_file_is_read_again_when_it_changes_and_kept_when_it_breaks(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(TENANTS.format(threshold=0.3))
    limits = SafetyLimits(path)
    assert limits.hold_for("d1", marker(1.0)).threshold == 0.3
    path.write_text(TENANTS.format(threshold=0.25) + "\n")
    os.utime(path, ns=(1, 10**18))  # a new stamp even within the clock's resolution
    assert limits.hold_for("d1", marker(1.0)).threshold == 0.25
    path.write_text("this is [not toml")
    os.utime(path, ns=(1, 2 * 10**18))
    assert limits.hold_for("d1", marker(1.0)).threshold == 0.25  # the last good reading
