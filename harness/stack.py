"""The embedded stack: KCI simulator + reference backend + virtual cards, wired together on loopback.

    async with embedded_stack(StackConfig(cards=3)) as stack:
        terminal = stack.async_terminal(stack.card_nos[0])
        result = await terminal.topup(stack.card_nos[0], 10_000)

or, from synchronous code (pytest-bdd steps, the CLI), :class:`SyncStack`, which runs the servers on
an event loop in a background thread and offers ``stack.run(coro)`` for admin calls.

Each part can be external instead: ``backend_url`` points the terminals at another backend (which
must be configured to use our KCI simulator, ``kci_url``/``kci_admin_url``, or the embedded one).
Cards are made from ``seed`` exactly as the simulator registers them, so both sides agree on IDm,
card number and keys; with ``cards_dir`` they are kept on disk and survive restarts.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from backend.app import RunningBackend, run_backend
from backend.config import BackendConfig, TerminalCredential
from simulator.admin_client import AdminClient
from simulator.app import run_simulator
from simulator.config import Config as SimulatorConfig
from simulator.config import PartnerSeed
from terminal.readers import InProcessReader
from terminal.terminal import AsyncTopupTerminal, Auth, AuthScheme, TopupTerminal
from virtual_card.card import KmtCard
from virtual_card.factory import DEFAULT_MASTER_KEY, make_card_image
from virtual_card.image import CardImage

from .errors import HarnessError

T = TypeVar("T")

DEFAULT_TID = "T0000001"
DEFAULT_MID = "M0000001"


@dataclass(frozen=True, slots=True)
class StackConfig:
    seed: int = 1
    cards: int = 5
    card_balance: int = 50_000
    host: str = "127.0.0.1"
    kci_port: int = 0
    backend_port: int = 0
    backend_url: str | None = None
    """An external backend to test instead of the reference one."""
    kci_url: str | None = None
    """An external KCI simulator (its root URL, e.g. http://127.0.0.1:8090) instead of the embedded one."""
    kci_admin_url: str | None = None
    """The external simulator's admin API; defaults to ``kci_url + /__admin``."""
    kci_partner_id: str | None = None
    kci_partner_secret: str | None = None
    tid: str = DEFAULT_TID
    mid: str = DEFAULT_MID
    auth: Auth | None = None
    """Credentials for an external backend; the embedded one gets a terminal key derived from ``seed``."""
    auth_scheme: AuthScheme = AuthScheme.HMAC
    backend_db: Path | None = None
    kci_state: Path | None = None
    cards_dir: Path | None = None
    seed_cards: bool = True
    """Register the cards in the simulator (off when an external simulator already has them)."""
    master_key: bytes = DEFAULT_MASTER_KEY
    backend_read_timeout: float = 5.0
    journal: bool = True
    extra_terminals: tuple[TerminalCredential, ...] = ()
    """More terminals of the embedded backend (registered at KCI too), e.g. a second terminal for the suite."""


@dataclass(slots=True)
class Stack:
    """What a running stack hands out: URLs, credentials, cards and clients."""

    config: StackConfig
    backend_url: str
    kci_url: str | None
    kci_admin_url: str | None
    partner: PartnerSeed | None
    terminal_key_id: str
    terminal_secret: str
    auth: Auth
    cards: dict[str, KmtCard] = field(default_factory=dict)
    admin: AdminClient | None = None
    readers: dict[str, InProcessReader] = field(default_factory=dict)
    backend: RunningBackend | None = None
    """The embedded reference backend (its store, for in-process checks); None for an external one."""

    @property
    def card_nos(self) -> list[str]:
        return list(self.cards)

    @property
    def tid(self) -> str:
        return self.config.tid

    @property
    def mid(self) -> str:
        return self.config.mid

    def card(self, card_no: str) -> KmtCard:
        try:
            return self.cards[card_no]
        except KeyError:
            known = ", ".join(list(self.cards)[:5])
            raise HarnessError(f"card {card_no} is not one of this stack's virtual cards ({known}...)") from None

    def reader(self, card_no: str) -> InProcessReader:
        """The in-process reader holding ``card_no`` (one reader per card, created on first use)."""
        if card_no not in self.readers:
            self.readers[card_no] = InProcessReader(self.card(card_no))
        return self.readers[card_no]

    def terminal(self, card_no: str, **kwargs: Any) -> TopupTerminal:
        """A synchronous terminal in front of ``card_no``'s reader, with this stack's credentials."""
        kwargs.setdefault("auth", self.auth)
        return TopupTerminal(self.backend_url, self.reader(card_no), tid=self.tid, mid=self.mid, **kwargs)

    def async_terminal(self, card_no: str, **kwargs: Any) -> AsyncTopupTerminal:
        kwargs.setdefault("auth", self.auth)
        kwargs.setdefault("reader_in_thread", False)
        return AsyncTopupTerminal(self.backend_url, self.reader(card_no), tid=self.tid, mid=self.mid, **kwargs)

    def require_admin(self) -> AdminClient:
        if self.admin is None:
            raise HarnessError("this needs the KCI simulator's admin API: give --kci-admin-url (or --kci-url)")
        return self.admin

    async def reconcile(self, card_nos: list[str] | None = None) -> dict[str, Any]:
        """The money invariant for these cards (all by default), checked by the simulator."""
        cards = [self.card(n) for n in (card_nos or self.card_nos)]
        body = [{"card_no": c.card_no, "balance": c.balance, "fares": c.image().fares_total} for c in cards]
        return await self.require_admin().reconcile(body)

    def save_cards(self) -> None:
        if self.config.cards_dir is None:
            return
        for card in self.cards.values():
            card.image().save(self.config.cards_dir / f"{card.card_no}.json")


def terminal_secret(seed: int) -> str:
    return hashlib.sha256(f"kmt-harness terminal seed {seed}".encode()).hexdigest()[:32]


def load_cards(config: StackConfig) -> dict[str, KmtCard]:
    cards: dict[str, KmtCard] = {}
    for index in range(config.cards):
        image = make_card_image(config.seed, index, config.master_key, balance=config.card_balance)
        if config.cards_dir is not None:
            path = config.cards_dir / f"{image.card_no}.json"
            if path.exists():
                image = CardImage.load(path)
            else:
                image.save(path)
        cards[image.card_no] = KmtCard(image)
    return cards


@asynccontextmanager
async def embedded_stack(config: StackConfig | None = None) -> AsyncIterator[Stack]:
    """Start (or attach to) the simulator and the backend; seed; hand back a :class:`Stack`."""
    config = config or StackConfig()
    async with AsyncExitStack() as exits:
        partner: PartnerSeed | None = None
        kci_url, admin_url = config.kci_url, config.kci_admin_url
        if kci_url is None and config.backend_url is None:
            sim = await exits.enter_async_context(
                run_simulator(
                    SimulatorConfig(
                        host=config.host,
                        port=config.kci_port,
                        state=config.kci_state,
                        seed=config.seed,
                        cards=0,
                        card_balance=config.card_balance,
                        master_key=config.master_key,
                        partner=PartnerSeed(tid=config.tid, mid=config.mid),
                        journal=config.journal,
                    )
                )
            )
            partner = sim.partner
            kci_url, admin_url = sim.root_url, sim.admin_url
        elif kci_url is not None and admin_url is None:
            admin_url = kci_url.rstrip("/").removesuffix("/kci/v1") + "/__admin"
        admin = None
        if admin_url is not None:
            admin = AdminClient(admin_url)
            exits.push_async_callback(admin.close)

        cards = load_cards(config)
        if admin is not None and config.seed_cards and cards:
            known = {c["card_no"] for c in await admin.cards()}  # a restart keeps KCI's records of them
            missing = [c for c in cards.values() if c.card_no not in known]
            if missing:
                await admin.seed(
                    cards=[
                        {"card_no": c.card_no, "idm": c.idm.hex(), "balance": c.image().issued_balance} for c in missing
                    ]
                )

        if admin is not None and config.extra_terminals:
            await admin.seed(terminals=[{"tid": t.tid, "mid": t.mid} for t in config.extra_terminals])

        secret = terminal_secret(config.seed)
        key_id = "kmt-terminal-01"
        backend_url = config.backend_url
        running: RunningBackend | None = None
        if backend_url is None:
            if partner is None:
                if not (config.kci_partner_id and config.kci_partner_secret):
                    raise HarnessError("an external KCI needs its partner id and secret (--kci-partner-id/-secret)")
                partner = PartnerSeed(config.kci_partner_id, config.kci_partner_secret, config.mid, config.tid)
            backend = await exits.enter_async_context(
                run_backend(
                    BackendConfig(
                        kci_url=kci_url or "",
                        kci_partner_id=partner.partner_id,
                        kci_partner_secret=partner.secret,
                        terminals=(TerminalCredential(key_id, config.tid, config.mid, secret), *config.extra_terminals),
                        host=config.host,
                        port=config.backend_port,
                        db_path=config.backend_db,
                        db_synchronous="NORMAL",
                        read_timeout=config.backend_read_timeout,
                    )
                )
            )
            backend_url = backend.url
            running = backend
        if config.auth is not None:
            auth = config.auth
        elif config.backend_url is not None:
            auth = Auth()
        elif config.auth_scheme is AuthScheme.BEARER:
            auth = Auth.bearer(secret)
        else:
            auth = Auth.hmac(key_id, secret)
        stack = Stack(config, backend_url, kci_url, admin_url, partner, key_id, secret, auth, cards, admin)
        stack.backend = running
        try:
            yield stack
        finally:
            stack.save_cards()


class SyncStack:
    """:func:`embedded_stack` for synchronous code: the servers run on a loop in a daemon thread.

    ``with SyncStack(config) as stack: ...``; ``sync.run(coro)`` runs a coroutine (admin calls) on
    that loop and returns its result; this is the one bridge from sync code to the async stack.
    """

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kmt-stack", daemon=True)
        self._context = embedded_stack(self.config)
        self.stack: Stack | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> Stack:
        self._thread.start()
        try:
            self.stack = self.run(self._context.__aenter__())
        except BaseException:
            self._stop()
            raise
        return self.stack

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self._context.__aexit__(None, None, None))
        finally:
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
