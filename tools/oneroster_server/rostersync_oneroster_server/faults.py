"""Fault injection: make the next N matching requests fail the way real providers do.

Kinds: ``"429"`` (with ``Retry-After``), ``"500"``, ``"503"`` (down for maintenance), ``"slow"`` (sleep, then answer normally),
``"drop"`` (close the connection without any response). Rules are consumed in the order they
were added; a request takes at most one fault. Admin requests (``/_admin``) never fault.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["429", "500", "503", "slow", "drop"]
KINDS: tuple[FaultKind, ...] = ("429", "500", "503", "slow", "drop")


@dataclass
class Fault:
    kind: FaultKind
    remaining: int
    path_contains: str | None = None
    retry_after: float = 1.0  # seconds, for 429 (sent as an integer, rounded up)
    delay: float = 1.0  # seconds, for slow


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    status: int | None  # None when the connection was dropped
    fault: FaultKind | None


@dataclass
class Faults:
    """The queue of faults still to inject, and what was injected."""

    rules: list[Fault] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)  # by kind

    def add(
        self,
        kind: FaultKind | int | str,
        count: int = 1,
        *,
        path_contains: str | None = None,
        retry_after: float = 1.0,
        delay: float = 1.0,
    ) -> Fault:
        """Fail the next ``count`` requests whose path contains ``path_contains`` (or any)."""
        name = str(kind)
        if name not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}: one of {', '.join(KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        fault = Fault(KINDS[KINDS.index(name)], count, path_contains, retry_after, delay)
        self.rules.append(fault)
        return fault

    def clear(self) -> None:
        self.rules.clear()

    def take(self, path: str) -> Fault | None:
        """The fault for a request to ``path``, if any (one use of it is consumed)."""
        if path.startswith("/_admin"):
            return None
        for fault in self.rules:
            if fault.path_contains is None or fault.path_contains in path:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.rules.remove(fault)
                self.injected[fault.kind] += 1
                return fault
        return None

    @property
    def pending(self) -> int:
        return sum(f.remaining for f in self.rules)
