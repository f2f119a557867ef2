"""A small trend of records and rejections over a tenant's last runs, drawn as inline SVG.

Drawn by the server (``_trend.html``), so the page needs no chart library and works without
script. Rejections get their own scale (a handful beside thousands of records); the label, read by
screen readers and shown on hover, gives the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 120, 32, 3


@dataclass(frozen=True)
class Point:
    records: int
    rejections: int


@dataclass(frozen=True)
class Trend:
    width: int
    height: int
    records: str  # an SVG polyline's points
    rejections: str
    label: str


def _line(values: Sequence[int]) -> str:
    top = max(values) or 1
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    return " ".join(
        f"{PAD + i * step:.1f},{HEIGHT - PAD - (v / top) * (HEIGHT - 2 * PAD):.1f}"
        for i, v in enumerate(values)
    )


def trend(oldest_first: Sequence[Point]) -> Trend | None:
    if not oldest_first:
        return None
    records = [p.records for p in oldest_first]
    rejections = [p.rejections for p in oldest_first]
    label = (
        f"Last {len(oldest_first)} runs, oldest first: records "
        f"{', '.join(map(str, records))}; rejected {', '.join(map(str, rejections))}"
    )
    return Trend(WIDTH, HEIGHT, _line(records), _line(rejections), label)
