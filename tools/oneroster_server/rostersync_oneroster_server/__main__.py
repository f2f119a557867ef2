"""``rostersync-oneroster-server BUNDLE``: serve a CSV bundle over OneRoster REST until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from pathlib import Path

from rostersync_oneroster_server.server import OneRosterServer

ENV = "ONEROSTER_SERVER_"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rostersync-oneroster-server",
        description="Serve a OneRoster CSV bundle (folder or zip, 1.1 or 1.2) as OneRoster "
        "1.1 and 1.2 REST APIs, in memory, on 127.0.0.1. A test and demo tool.",
    )
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--port", type=int, default=8990)
    parser.add_argument("--oauth1-key", default=os.environ.get(ENV + "OAUTH1_KEY"))
    parser.add_argument("--oauth1-secret", default=os.environ.get(ENV + "OAUTH1_SECRET"))
    parser.add_argument(
        "--oauth1-signature-method",
        choices=("HMAC-SHA256", "HMAC-SHA1"),
        action="append",
        help="accept only this OAuth 1 signature method (repeatable; default: both)",
    )
    parser.add_argument("--oauth2-client", default=os.environ.get(ENV + "OAUTH2_CLIENT"))
    parser.add_argument("--oauth2-secret", default=os.environ.get(ENV + "OAUTH2_SECRET"))
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="seconds (default 3600)")
    parser.add_argument("--max-limit", type=int, default=10000, help="largest page (10000)")
    parser.add_argument("--no-admin", action="store_true", help="no /_admin endpoints")
    args = parser.parse_args(argv)
    for name in ("oauth1", "oauth2"):
        key = getattr(args, f"{name}_key" if name == "oauth1" else "oauth2_client")
        if bool(key) != bool(getattr(args, f"{name}_secret")):
            parser.error(f"--{name} needs both an id and a secret")
    return args


async def serve(args: argparse.Namespace) -> None:
    server = OneRosterServer(
        args.bundle,
        port=args.port,
        oauth1={args.oauth1_key: args.oauth1_secret} if args.oauth1_key else None,
        oauth2={args.oauth2_client: args.oauth2_secret} if args.oauth2_client else None,
        oauth1_methods=tuple(args.oauth1_signature_method or ("HMAC-SHA256", "HMAC-SHA1")),
        token_ttl=args.token_ttl,
        max_limit=args.max_limit,
        admin_api=not args.no_admin,
    )
    async with server:
        counts = {e: len(server.data.records(e)) for e in ("orgs", "users", "enrollments")}
        print(f"OneRoster {server.data.version} bundle {args.bundle} loaded: {counts}")
        auth1 = "OAuth1 or bearer" if server.oauth1 else "bearer" if server.tokens else "open"
        print(f"1.1 API   {server.v1p1_url}   ({auth1})")
        print(f"1.2 API   {server.v1p2_url}   ({'bearer' if server.tokens else 'open'})")
        if server.tokens is not None:
            print(f"token URL {server.token_url}   (client credentials)")
        if not args.no_admin:
            print(f"admin     {server.base_url}/_admin/status")
        print("Ctrl-C to stop.", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
