"""``kmt card``: make, inspect and talk to virtual card images on disk."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from .card import KmtCard
from .cli_pcsc import add_serve_command
from .errors import VirtualCardError
from .factory import DEFAULT_MASTER_KEY, make_card_image
from .frames import ReadWithoutEncryption, ReadWithoutEncryptionResponse, describe
from .image import CardImage
from .profile import CardInfo, card_check_read


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    card = sub.add_parser("card", help="virtual KMT cards: make, show, send frames, serve into a reader")
    card_sub = card.add_subparsers(dest="card_command", metavar="CARD_COMMAND", required=True)

    new = card_sub.add_parser("new", help="write a reproducible card image (JSON)")
    new.add_argument("--seed", type=int, default=1, help="seed of the card set (default 1)")
    new.add_argument("--index", type=int, default=0, help="index of the card in the set (default 0)")
    new.add_argument("--balance", type=int, default=None, help="balance in rupiah (default: drawn from the seed)")
    new.add_argument("--master-key", default=DEFAULT_MASTER_KEY.hex(), help="issuer master key, 32 hex digits")
    new.add_argument("--out", required=True, help="where to write the image")
    new.set_defaults(func=_new)

    show = card_sub.add_parser("show", help="print a card image: number, IDm, balance, counter, history")
    show.add_argument("card", help="card image file")
    show.add_argument("--json", action="store_true", help="print the card check as JSON")
    show.set_defaults(func=_show)

    send = card_sub.add_parser("send", help="send frames (hex, with or without LEN) to a card image and save it")
    send.add_argument("card", help="card image file (updated in place)")
    send.add_argument("frames", nargs="+", help="command frames in hex")
    send.set_defaults(func=_send)

    fare = card_sub.add_parser("fare", help="charge a fare at a gate (as a KRL gate would) and save the card")
    fare.add_argument("card", help="card image file (updated in place)")
    fare.add_argument("amount", type=int, help="fare in rupiah")
    fare.add_argument("--gate", type=lambda v: int(v, 16), default=0x0101, help="gate code in hex (default 0101)")
    fare.set_defaults(func=_fare)

    add_serve_command(card_sub)


def _fail(message: str) -> int:
    print(f"kmt card: {message}", file=sys.stderr)
    return 2


def _new(args: argparse.Namespace) -> int:
    try:
        key = bytes.fromhex(args.master_key)
        image = make_card_image(args.seed, args.index, key, balance=args.balance)
    except ValueError as exc:
        return _fail(str(exc))
    image.save(args.out)
    print(f"{args.out}: card {image.card_no}, IDm {image.idm.hex()}, balance Rp {image.balance:,}")
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        card = KmtCard(CardImage.load(args.card))
    except VirtualCardError as exc:
        return _fail(str(exc))
    services, blocks = card_check_read()
    answer = card.handle(ReadWithoutEncryption(card.image().idm, services, blocks).to_frame())
    info = CardInfo.from_blocks(ReadWithoutEncryptionResponse.from_bytes(answer or b"").blocks)
    if args.json:
        print(
            json.dumps(
                {
                    "card_no": info.card_no,
                    "idm": card.idm.hex(),
                    "balance": info.purse.balance,
                    "counter": info.purse.counter,
                    "history": [r.as_dict() for r in info.history],
                },
                indent=2,
            )
        )
        return 0
    print(f"card {info.card_no}  IDm {card.idm.hex()}  PMm {card.pmm.hex()}")
    print(f"balance Rp {info.purse.balance:,}  counter {info.purse.counter}  last amount {info.purse.last_amount:,}")
    for record in info.history:
        d = record.as_dict()
        print(f"  #{d['sequence']:>6}  {d['time']}  {d['type']!s:6}  gate {d['gate']}  Rp {record.amount:>9,}")
    return 0


def _send(args: argparse.Namespace) -> int:
    try:
        card = KmtCard(CardImage.load(args.card))
        frames = [bytes.fromhex(f) for f in args.frames]
    except (VirtualCardError, ValueError) as exc:
        return _fail(str(exc))
    for frame in frames:
        print(f">> {frame.hex()}  ({describe(frame)})")
        answer = card.handle(frame)
        print("<< (no answer)" if answer is None else f"<< {answer.hex()}")
    card.image().save(args.card)
    return 0


def _fare(args: argparse.Namespace) -> int:
    try:
        card = KmtCard(CardImage.load(args.card))
        card.pay_fare(args.amount, args.gate, datetime.now(UTC))
    except VirtualCardError as exc:
        return _fail(str(exc))
    card.image().save(args.card)
    print(f"{args.card}: fare Rp {args.amount:,} at gate {args.gate:04X}, balance Rp {card.balance:,}")
    return 0
