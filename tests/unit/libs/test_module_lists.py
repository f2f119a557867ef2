"""The lists a newcomer reads first stay true: libs' modules and the CLI's commands."""

from __future__ import annotations

import argparse
import pkgutil

import rostersync_cli.__main__ as cli
import rostersync_libs


def test_libs_docstring_names_every_module() -> None:
    doc = rostersync_libs.__doc__ or ""
    modules = [m.name for m in pkgutil.iter_modules(rostersync_libs.__path__)]
    assert len(modules) > 30
    assert [m for m in modules if f" {m}" not in doc and f"{m}," not in doc] == []


def test_cli_docstring_names_every_command() -> None:
    doc = cli.__doc__ or ""
    (commands,) = [a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert [name for name in commands.choices if f"rostersync {name} " not in doc] == []
