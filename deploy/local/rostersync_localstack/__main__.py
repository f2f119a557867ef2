"""Command line: ``python -m rostersync_localstack up|down|status|reset``.

``up`` prints ``KEY=value`` lines on stdout (progress goes to stderr), so a
shell can do ``eval "$(deploy/local/stack up)"``.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from ._common import StackError
from .stack import default_state_dir, down, reset, status, up


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rostersync-stack",
        description="Local Kafka (KRaft) + PostgreSQL for rostersync, without Docker.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where configs, data, logs and PID files live (default: $ROSTERSYNC_STACK_DIR, "
        "else <repo>/.stack, else ~/.cache/rostersync/stack)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start (or reuse) the stack and print its settings")
    start.add_argument("--reset", action="store_true", help="stop and wipe all data first")
    commands.add_parser("down", help="stop the processes this stack started (data are kept)")
    commands.add_parser("status", help="show each component; exit 3 unless all are running")
    commands.add_parser("reset", help="stop the stack and delete its data and logs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="stack: %(message)s",
        stream=sys.stderr,
    )
    state_dir: Path = (args.state_dir or default_state_dir()).resolve()
    try:
        if args.command == "up":
            info = up(state_dir, reset=args.reset)
            for key, value in info.env().items():
                print(f"{key}={shlex.quote(value)}")
        elif args.command == "down":
            down(state_dir)
        elif args.command == "reset":
            reset(state_dir)
        else:
            report = status(state_dir)
            for name, line in report.items():
                print(f"{name}: {line}")
            print(f"state: {state_dir}")
            return 0 if all(line.startswith("running") for line in report.values()) else 3
    except StackError as exc:
        print(f"rostersync-stack: error: {exc.message}", file=sys.stderr)
        if exc.details:
            print(exc.details, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rostersync-stack: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # e.g. a permission problem on the state dir
        print(f"rostersync-stack: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
