"""Source drivers by ``kind``: each driver module registers a factory; the fetcher builds one
driver per kind at start.

Every module of the ``sources`` package is imported before the drivers are built (``discover``):
a driver is found because its module is there, not because a list names it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, TypeVar

from rostersync_fetcher.sources.driver import Fetching, SourceDriver

DriverFactory = Callable[[Fetching], SourceDriver[Any]]
F = TypeVar("F", bound=DriverFactory)

_FACTORIES: dict[str, DriverFactory] = {}


def driver(kind: str) -> Callable[[F], F]:
    """Register a driver factory (a driver class, usually) for the sources of this ``kind``."""

    def register(factory: F) -> F:
        known = _FACTORIES.get(kind)
        if known is not None and known is not factory:
            raise ValueError(f"two drivers for source kind {kind!r}: {known} and {factory}")
        _FACTORIES[kind] = factory
        return factory

    return register


def discover() -> None:
    """Import every module of the sources package (their ``@driver`` registrations run)."""
    package = importlib.import_module("rostersync_fetcher.sources")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def build_drivers(fetching: Fetching) -> dict[str, SourceDriver[Any]]:
    """One driver per registered kind, sharing the fetcher's parts."""
    discover()
    return {kind: factory(fetching) for kind, factory in _FACTORIES.items()}


def forget(kind: str) -> None:
    """Drop a kind's driver (tests that register a trial kind)."""
    _FACTORIES.pop(kind, None)
