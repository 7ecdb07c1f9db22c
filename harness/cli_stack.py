"""``kmt demo`` (one full top-up, shown step by step) and ``kmt up`` (the stack for frontend developers)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from terminal.errors import TerminalError
from terminal.flow import Outcome, TopupResult
from terminal.readers import CardReader
from terminal.terminal import Auth, AuthScheme, CallRecord, TopupTerminal
from virtual_card.card import KmtCard
from virtual_card.errors import VirtualCardError
from virtual_card.frames import describe
from virtual_card.reader import VirtualReader
from virtual_card.vpcd import READER_NAMES, VpcdSlot, parse_address

from .errors import HarnessError
from .reader_app import ReaderHub, create_reader_app
from .stack import Stack, StackConfig, SyncStack, embedded_stack


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("system under test (default: the embedded reference backend and KCI)")
    group.add_argument("--backend-url", help="test this backend instead of the embedded one")
    group.add_argument(
        "--kci-url", help="root URL of a running KCI simulator the backend uses (e.g. http://127.0.0.1:8090)"
    )
    group.add_argument("--kci-admin-url", help="its admin API (default: KCI URL + /__admin)")
    group.add_argument("--kci-partner-id", help="partner id at an external KCI (for the embedded backend)")
    group.add_argument("--kci-partner-secret", help="partner secret at an external KCI")
    group.add_argument("--auth", choices=["none", "bearer", "hmac"], help="how to authenticate to --backend-url")
    group.add_argument("--api-key", help="bearer API key, or the HMAC secret")
    group.add_argument("--key-id", help="HMAC key id")
    group.add_argument("--header", action="append", default=[], metavar="NAME:VALUE", help="extra request header")
    group.add_argument("--tid", default="T0000001", help="terminal id (default T0000001)")
    group.add_argument("--mid", default="M0000001", help="merchant id (default M0000001)")


def auth_from_args(args: argparse.Namespace) -> Auth | None:
    extra: dict[str, str] = {}
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise HarnessError(f"--header {header!r}: expected NAME:VALUE")
        extra[name.strip()] = value.strip()
    if args.auth is None and not extra:
        return None
    scheme = AuthScheme(args.auth or "none")
    if scheme is not AuthScheme.NONE and not args.api_key:
        raise HarnessError(f"--auth {scheme.value} needs --api-key")
    if scheme is AuthScheme.HMAC and not args.key_id:
        raise HarnessError("--auth hmac needs --key-id")
    return Auth(scheme, args.key_id or "", args.api_key or "", extra)


def config_from_args(args: argparse.Namespace, **extra: Any) -> StackConfig:
    return StackConfig(
        seed=args.seed,
        backend_url=args.backend_url,
        kci_url=args.kci_url,
        kci_admin_url=args.kci_admin_url,
        kci_partner_id=args.kci_partner_id,
        kci_partner_secret=args.kci_partner_secret,
        tid=args.tid,
        mid=args.mid,
        auth=auth_from_args(args),
        **extra,
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="run one full top-up on the embedded stack (or a given backend), step by step")
    demo.add_argument("--amount", type=int, default=20_000, help="top-up amount in rupiah (default 20,000)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the virtual cards (default 1)")
    demo.add_argument("--card", type=int, default=0, help="index of the card of that seed (default 0)")
    demo.add_argument("--balance", type=int, default=50_000, help="the card's balance at issue (default 50,000)")
    demo.add_argument(
        "--reader",
        choices=["inprocess", "pcsc"],
        default="inprocess",
        help="in process, or through pcscd: the card is served into vpcd and read with pyscard",
    )
    demo.add_argument("--vpcd", default="127.0.0.1:35963", help="vpcd slot for --reader pcsc (default 127.0.0.1:35963)")
    demo.add_argument(
        "--dialect",
        choices=["direct", "acr122", "transparent"],
        default="direct",
        help="how frames are wrapped in APDUs for --reader pcsc (default direct)",
    )
    add_backend_options(demo)
    demo.set_defaults(func=demo_command)

    up = sub.add_parser("up", help="run the stack for frontend development until Ctrl-C")
    up.add_argument("--seed", type=int, default=1, help="seed of the virtual cards (default 1)")
    up.add_argument("--count", type=int, default=5, help="number of virtual cards (default 5)")
    up.add_argument(
        "--cards",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of the card images, kept so balances survive restarts (default DATA/cards)",
    )
    up.add_argument("--balance", type=int, default=50_000, help="balance of new cards (default 50,000)")
    up.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    up.add_argument("--backend-port", type=int, default=8080)
    up.add_argument("--kci-port", type=int, default=8090)
    up.add_argument("--reader-port", type=int, default=8070)
    up.add_argument(
        "--data", type=Path, default=Path(".kmt"), help="folder for KCI state and backend DB (default .kmt)"
    )
    up.add_argument("--pcsc", action="store_true", help="also serve the first card into pcscd's vpcd reader")
    up.add_argument("--vpcd", default="127.0.0.1:35963", help="vpcd slot for --pcsc (default 127.0.0.1:35963)")
    up.set_defaults(func=up_command)


# -- kmt demo ----------------------------------------------------------------------------------------


def _command_of(record: CallRecord) -> str:
    received = record.received if isinstance(record.received, dict) else {}
    nested = received.get("data", {}).get("data") if isinstance(received.get("data"), dict) else None
    command = nested.get("command") if isinstance(nested, dict) else None
    if not command:
        return "-"
    try:
        return describe(bytes.fromhex(command))
    except ValueError:
        return "<not hex>"


def _print_call(out: TextIO, record: CallRecord) -> None:
    if record.kind == "api":
        mark = "ok " if record.code == 200 else "ERR"
        code = "-" if record.code is None else str(record.code)
        print(
            f"  {mark} {record.step:<13} code {code:<4} {record.latency * 1000:8.1f} ms  -> {_command_of(record)}",
            file=out,
        )
    else:
        answer = "no answer" if record.error else f"{len(record.received) // 2} bytes"
        print(
            f"      card >> {str(record.sent)[:40]:<40} << {answer}{'  ' + record.error if record.error else ''}",
            file=out,
        )


def print_table(out: TextIO, result: TopupResult, calls: list[CallRecord]) -> None:
    api = [c for c in calls if c.kind == "api"]
    print(f"\n{'#':>2}  {'step':<13} {'card command':<34} {'code':>5} {'latency ms':>11}", file=out)
    for i, c in enumerate(api, 1):
        code = "-" if c.code is None else c.code
        print(f"{i:>2}  {c.step:<13} {_command_of(c):<34} {code!s:>5} {c.latency * 1000:>11.1f}", file=out)
    total = sum(c.latency for c in api)
    print(f"    {len(api)} backend calls, {total * 1000:.1f} ms in the backend calls", file=out)


def print_outcome(out: TextIO, result: TopupResult) -> None:
    print(f"\noutcome: {result.outcome.value.upper()}", file=out)
    if result.balance_before is not None:
        print(f"  balance before      Rp {result.balance_before:>12,}", file=out)
    if result.balance_after is not None:
        print(f"  balance after       Rp {result.balance_after:>12,}", file=out)
    print(f"  amount              Rp {result.amount:>12,}", file=out)
    if result.reservation_number:
        print(f"  reservation number  {result.reservation_number}", file=out)
    if result.load_balance_number:
        print(f"  load balance number {result.load_balance_number}", file=out)
    if not result.ok:
        print(
            f"  stopped at {result.failed_step or '?'}: {result.message}"
            + (f" (code {result.code})" if result.code else ""),
            file=out,
        )
        hints = {
            Outcome.SUSPECT: "the write's outcome is unknown: run the top-up again to resume it",
            Outcome.UNCONFIRMED: "the card was loaded; send confirm again",
            Outcome.ERROR: "check --backend-url and that the backend is running",
        }
        if result.outcome in hints:
            print(f"  what to do: {hints[result.outcome]}", file=out)
        if result.code == 401:
            print("  what to do: check --auth/--api-key/--key-id against the backend's terminal credentials", file=out)
        if result.code == 413:
            print(
                "  what to do: the card is not registered at KCI; seed it (kmt kci --seed) or use --kci-url", file=out
            )


@contextlib.contextmanager
def _pcsc_reader(vpcd: str, dialect: str, card: KmtCard) -> Iterator[CardReader]:
    """Serve ``card`` into the vpcd slot and open the PC/SC reader pcscd shows for it."""
    try:
        from terminal.pcsc_reader import PcscReader  # noqa: PLC0415 - pyscard is the optional pcsc extra
    except ImportError as exc:
        raise HarnessError(f"--reader pcsc needs pyscard ({exc}): pip install 'kmt-harness[pcsc]'") from exc
    slot = _serve_pcsc(vpcd, card)
    port = slot.port
    try:
        reader = PcscReader(READER_NAMES.get(port), dialect=dialect)
    except TerminalError as exc:
        slot.remove()
        raise HarnessError(f"PC/SC reader for vpcd port {port}: {exc}") from exc
    try:
        if not reader.wait_for_card(5.0):
            raise HarnessError(f"pcscd did not see the card in {reader.name} within 5 s")
        yield reader
    finally:
        reader.close()
        slot.remove()


def demo_command(args: argparse.Namespace) -> int:
    out = sys.stdout
    try:
        config = config_from_args(args, cards=args.card + 1, card_balance=args.balance)
        sync = SyncStack(config)
        with sync as stack:
            card_no = stack.card_nos[args.card]
            print(f"kmt demo: backend {stack.backend_url}  KCI {stack.kci_url or '(external)'}", file=out)
            card = stack.card(card_no)
            print(
                f"card {card_no}  IDm {card.idm.hex()}  balance Rp {card.balance:,}; top-up Rp {args.amount:,}\n",
                file=out,
            )
            with contextlib.ExitStack() as exits:
                reader: CardReader = stack.reader(card_no)
                if args.reader == "pcsc":
                    reader = exits.enter_context(_pcsc_reader(args.vpcd, args.dialect, stack.card(card_no)))
                    print(f"PC/SC reader {reader!r}\n", file=out)
                terminal = exits.enter_context(
                    TopupTerminal(stack.backend_url, reader, tid=stack.tid, mid=stack.mid, auth=stack.auth)
                )
                terminal.on_call = lambda record: _print_call(out, record)
                result, calls = terminal.topup(card_no, args.amount), terminal.calls
            print_table(out, result, calls)
            print_outcome(out, result)
            if stack.admin is not None and result.ok:
                report = sync.run(stack.reconcile([card_no]))
                verdict = "holds" if report.get("ok") else f"BROKEN: {report.get('findings')}"
                print(f"  money invariant     {verdict}", file=out)
                if not report.get("ok"):
                    return 1
            return 0 if result.ok else 1
    except HarnessError as exc:
        print(f"kmt demo: {exc}", file=sys.stderr)
        return 2


# -- kmt up ------------------------------------------------------------------------------------------


async def _serve_up(args: argparse.Namespace) -> None:
    data: Path = args.data
    cards_dir: Path = args.cards or data / "cards"
    config = StackConfig(
        seed=args.seed,
        cards=args.count,
        card_balance=args.balance,
        host=args.host,
        kci_port=args.kci_port,
        backend_port=args.backend_port,
        backend_db=data / "backend.sqlite3",
        kci_state=data / "kci.sqlite3",
        cards_dir=cards_dir,
    )
    async with embedded_stack(config) as stack:
        hub = ReaderHub(stack.cards, on_change=lambda card: card.image().save(cards_dir / f"{card.card_no}.json"))
        slot = None
        if args.pcsc:
            slot = _serve_pcsc(args.vpcd, stack.card(stack.card_nos[0]))
            print(f"PC/SC reader {READER_NAMES.get(slot.port, slot.port)} holds card {stack.card_nos[0]}")
        http_cards = stack.card_nos[1:] if args.pcsc else stack.card_nos
        if http_cards:
            hub.insert("0", http_cards[0])
        runner = web.AppRunner(create_reader_app(hub), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, args.host, args.reader_port).start()
        reader_url = f"http://{args.host}:{runner.addresses[0][1]}/reader"
        try:
            print_up(stack, reader_url)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            if slot is not None:
                slot.remove()
            await runner.cleanup()
            stack.save_cards()
            print("\nkmt up: stopped; cards saved in", cards_dir)


def _serve_pcsc(vpcd: str, card: KmtCard) -> VpcdSlot:
    """Put ``card`` into the vpcd slot at ``vpcd`` (HOST:PORT) and keep it there until the slot is removed."""
    host, port = parse_address(vpcd)
    slot = VpcdSlot(port, host)
    try:
        slot.insert(VirtualReader(card))
    except VirtualCardError as exc:
        raise HarnessError(
            f"cannot put the card into vpcd at {host}:{port} ({exc}); is pcscd running? scripts/pcscd.sh start"
        ) from exc
    return slot


def print_up(stack: Stack, reader_url: str) -> None:
    print("kmt up: the KMT top-up stack is running (Ctrl-C stops it)\n")
    print(f"  backend          {stack.backend_url}/topup-kci/{{card-check,pending,update,confirm}}")
    print(f"  KCI simulator    {stack.kci_url}/kci/v1   admin {stack.kci_admin_url}")
    print(f'  virtual reader   {reader_url}   (POST /slots/0/transceive {{"frame": "hex"}})')
    print(f"\n  terminal         tid {stack.tid}  mid {stack.mid}")
    print(f"  bearer API key   Authorization: Bearer {stack.terminal_secret}")
    print(f"  HMAC             X-KMT-Key-Id {stack.terminal_key_id}, secret {stack.terminal_secret}")
    if stack.partner is not None:
        print(f"  KCI partner      {stack.partner.partner_id} / {stack.partner.secret}")
    print("\n  cards:")
    for card in stack.cards.values():
        print(f"    {card.card_no}  IDm {card.idm.hex()}  Rp {card.balance:>10,}")
    sys.stdout.flush()


def up_command(args: argparse.Namespace) -> int:
    try:
        args.data.mkdir(parents=True, exist_ok=True)
        asyncio.run(_serve_up(args))
    except OSError as exc:
        print(
            f"kmt up: {exc.strerror or exc}: is another kmt up (or something else) using those ports? "
            "Choose others with --backend-port/--kci-port/--reader-port",
            file=sys.stderr,
        )
        return 2
    except HarnessError as exc:
        print(f"kmt up: {exc}", file=sys.stderr)
        return 2
    return 0
