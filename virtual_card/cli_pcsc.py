"""``kmt card serve``: the PC/SC side of the card's command line (virtual_card.cli calls in here).

:func:`add_serve_command` adds ``serve`` to the ``kmt card`` subcommands; :func:`register` is a
fallback that creates a ``card`` group holding only ``serve``, for a CLI without virtual_card.cli.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from .card import KmtCard
from .errors import VirtualCardError
from .factory import make_card_image
from .image import CardImage
from .pcsc_serve import CardServer, serve
from .reader import DEFAULT_TIMEOUT
from .vpcd import VpcdSlot, parse_address


def add_serve_command(card_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``kmt card`` subparsers and return its parser."""
    p: argparse.ArgumentParser = card_subparsers.add_parser(
        "serve",
        help="put a virtual card into a PC/SC reader (pcscd + vsmartcard vpcd) until Ctrl-C",
        description=(
            "Connects a virtual KMT card to vpcd's reader slot and keeps it there until Ctrl-C. "
            "SIGUSR1 removes the card, SIGUSR2 inserts it again; --admin adds GET /card, "
            "POST /card/remove and POST /card/insert on a loopback HTTP port."
        ),
    )
    p.add_argument(
        "--vpcd",
        metavar="HOST:PORT",
        nargs="?",
        const="",
        default="",
        help="vpcd slot to connect to (default 127.0.0.1:35963 = 'Virtual PCD 00 00'; 35964 = '... 00 01')",
    )
    p.add_argument("--card", metavar="FILE", type=Path, help="card image (JSON); default: a generated card")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated card (default 1)")
    p.add_argument("--index", type=int, default=0, help="index of the generated card (default 0)")
    p.add_argument("--save", action="store_true", help="write the card image back to --card on removal and exit")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds the virtual reader waits for a card answer (default {DEFAULT_TIMEOUT})",
    )
    p.add_argument("--admin", metavar="HOST:PORT", help="serve the admin HTTP API there (loopback, port 0 = any)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every APDU as hex (>> / <<)")
    p.set_defaults(func=run_serve)
    return p


def register(sub: Any) -> None:
    """Fallback: a ``card`` group with only ``serve`` (virtual_card.cli normally owns ``kmt card``)."""
    card = sub.add_parser("card", help="the virtual KMT card")
    add_serve_command(card.add_subparsers(dest="card_command", metavar="ACTION", required=True))


def _admin_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise VirtualCardError(f"--admin {text!r}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


def run_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    try:
        image = CardImage.load(args.card) if args.card else make_card_image(args.seed, args.index)
        host, port = parse_address(args.vpcd)
        admin = _admin_address(args.admin) if args.admin else None
    except (VirtualCardError, OSError) as exc:
        print(f"kmt card serve: {exc}", file=sys.stderr)
        return 2
    if args.save and args.card is None:
        print("kmt card serve: --save needs --card FILE", file=sys.stderr)
        return 2
    card = KmtCard(image)
    server = CardServer(card, VpcdSlot(port, host), timeout=args.timeout, save_path=args.card if args.save else None)
    print(f"card {card.card_no} (IDm {card.idm.hex()}) -> vpcd {host}:{port}; Ctrl-C to stop", flush=True)
    try:
        asyncio.run(serve(server, admin=admin))
    except VirtualCardError as exc:
        print(f"kmt card serve: {exc}", file=sys.stderr)
        return 1
    return 0
