"""``sync --wait``'s progress line."""

from __future__ import annotations

from typing import Any

from rostersync_cli.progress import line


def test_the_line_has_a_bar_once_the_fetcher_said_how_many_it_sent() -> None:
    fetching: dict[str, Any] = {"published": None, "fetched": 300, "validated": 200, "mapped": 100,
                "written": 12, "rejected_by_stage": {}}  # fmt: skip
    assert line(fetching) == (
        "fetching… fetched 300, validated 200, mapped 100, written 12, rejected 0"
    )
    shown = line({"published": {"users.csv": 80, "orgs.csv": 20}, "fetched": 100,
                  "validated": 100, "mapped": 90, "written": 45,
                  "rejected_by_stage": {"validator": 5}})  # fmt: skip
    assert shown == (
        "[##########          ]  50%  published 100, validated 100, mapped 90, written 45,"
        " rejected 5"
    )
    full = line({"published": {"users.csv": 10}, "written": 12, "rejected_by_stage": {}})
    assert full.startswith("[####################] 100%")
    assert "validated 0, mapped 0" in full  # a run from before the stages reported progress
