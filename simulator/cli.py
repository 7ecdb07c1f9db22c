"""``kmt kci``: run the fake KCI host and print its URL, partner credentials, terminal and cards."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from .app import Simulator, run_simulator
from .config import Config


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "kci", help="run the fake KCI host (simulator)", description=__doc__
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8470, help="port (0 = ephemeral; default 8470)")
    parser.add_argument("--state", type=Path, help="SQLite file that keeps the state across restarts")
    parser.add_argument("--seed", type=int, default=1, help="seed of the registered cards and partner secret")
    parser.add_argument("--cards", type=int, default=5, help="how many cards of --seed to register")
    parser.add_argument("--balance", type=int, default=50_000, help="issue balance of the seeded cards")
    parser.add_argument("--no-journal", action="store_true", help="do not keep the request journal")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every card frame (>> / <<)")
    parser.set_defaults(func=handler)


def describe(sim: Simulator) -> str:
    p = sim.partner
    lines = [
        f"KCI API   {sim.url}",
        f"admin     {sim.admin_url}/   metrics {sim.root_url}/metrics",
        f"partner   id={p.partner_id} secret={p.secret}",
        f"terminal  tid={p.tid} mid={p.mid}",
        "cards:",
    ]
    for card in sim.kci.store.cards.values():
        lines.append(f"  {card.card_no}  idm={card.idm}  issued={card.issued_balance}  {card.status}")
    return "\n".join(lines)


async def serve(config: Config) -> None:
    async with run_simulator(config) as sim:
        print(describe(sim), flush=True)
        await asyncio.Event().wait()


def handler(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(name)s %(message)s")
    config = Config(
        host=args.host,
        port=args.port,
        state=args.state,
        seed=args.seed,
        cards=args.cards,
        card_balance=args.balance,
        journal=not args.no_journal,
    )
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        return 0
    return 0
