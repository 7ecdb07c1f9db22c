"""``kmt backend``: serve the reference backend until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from .app import run_backend
from .config import BackendConfig, TerminalCredential
from .errors import ConfigInvalid

DEFAULT_DB = "kmt-backend.sqlite3"


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "backend",
        help="run the reference /topup-kci backend against a KCI URL",
        description="Serve POST /topup-kci/{card-check,pending,update,confirm}. Every option can also come from "
        "a KMT_BACKEND_* environment variable (KCI_URL, KCI_PARTNER_ID, KCI_PARTNER_SECRET, TERMINALS, HOST, "
        "PORT, DB, DB_SYNCHRONOUS, CONNECT_TIMEOUT, READ_TIMEOUT, SIGNATURE_WINDOW, REPLAY_WINDOW); options win.",
    )
    parser.add_argument("--kci-url", help="KCI base URL, e.g. http://127.0.0.1:8100 (/kci/v1 is appended)")
    parser.add_argument("--kci-partner-id", help="this backend's KCI partner id")
    parser.add_argument("--kci-partner-secret", help="this backend's KCI partner secret")
    parser.add_argument(
        "--terminal",
        action="append",
        metavar="KEY_ID:TID:MID:SECRET[:SCHEME]",
        help="a terminal's credentials (repeatable); SCHEME is bearer, hmac or both (default)",
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 0: any free port, printed)")
    parser.add_argument("--db", help="SQLite file (default kmt-backend.sqlite3; ':memory:' keeps nothing)")
    parser.add_argument("--connect-timeout", type=float, help="seconds to connect to KCI (default 3)")
    parser.add_argument("--read-timeout", type=float, help="seconds to wait for KCI's answer (default 10)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log frames (>> command, << card answer)")
    parser.set_defaults(func=main)


def build_config(args: argparse.Namespace) -> BackendConfig:
    overrides: dict[str, object] = {
        "kci_url": args.kci_url,
        "kci_partner_id": args.kci_partner_id,
        "kci_partner_secret": args.kci_partner_secret,
        "host": args.host,
        "port": args.port,
        "connect_timeout": args.connect_timeout,
        "read_timeout": args.read_timeout,
    }
    if args.terminal:
        overrides["terminals"] = tuple(TerminalCredential.parse(t) for t in args.terminal)
    env = dict(os.environ)
    db = args.db if args.db is not None else env.get("KMT_BACKEND_DB") or DEFAULT_DB
    env.pop("KMT_BACKEND_DB", None)
    config = BackendConfig.from_env(env, **overrides)
    return replace(config, db_path=None if db == ":memory:" else Path(db))


async def _serve(config: BackendConfig) -> None:
    async with run_backend(config) as backend:
        print(f"kmt backend: {backend.url}/topup-kci (KCI {config.kci_base}, db {config.db_path or ':memory:'})")
        if not config.terminals:
            print("kmt backend: no --terminal configured; every request will be refused with 401")
        await asyncio.Event().wait()


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        config = build_config(args)
    except ConfigInvalid as exc:
        print(f"kmt backend: {exc}")
        return 2
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        return 0
    return 0
