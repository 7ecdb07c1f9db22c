"""``create_app(config)``: the KCI API, the admin API and /metrics in one aiohttp application;
``run_simulator(config)``: the same served on a loopback port, for tests, the harness and the CLI."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from . import admin, api
from .admin import cards_from_seed
from .clock import Clock
from .config import Config, PartnerSeed
from .faults import FaultSet
from .journal import Journal
from .metrics import Metrics
from .model import Merchant, Partner, Terminal
from .service import KciService
from .state import KCI, Kci
from .store import Store, open_store


def _secret(config: Config, store: Store) -> bytes:
    if config.kci_secret is not None:
        return config.kci_secret
    text = store.meta.get("kci_secret")
    if not isinstance(text, str):
        text = secrets.token_hex(32)
        store.set_meta("kci_secret", text)
    return bytes.fromhex(text)


def build(config: Config) -> Kci:
    store = open_store(config.state)
    clock = Clock(float(store.meta.get("clock_offset", 0.0)))
    service = KciService(
        store,
        clock,
        limits=config.limits,
        master_key=config.resolved_master_key(),
        kci_secret=_secret(config, store),
        node=config.node,
    )
    kci = Kci(config, store, clock, service, FaultSet(), Journal(config.journal, config.journal_size), Metrics())
    if config.seed is not None:
        seed_defaults(kci, config.seeded_partner(), config.seed, config.cards, config.card_balance)
    return kci


def seed_defaults(kci: Kci, partner: PartnerSeed, seed: int, cards: int, balance: int) -> None:
    """Register the partner/merchant/terminal of ``partner`` and ``cards`` cards of ``seed``.

    Cards already registered (a restart with --state) keep their records.
    """
    store = kci.store
    store.put(Partner(partner.partner_id, partner.secret, "kmt-harness partner"))
    store.put(Merchant(partner.mid, partner.partner_id, "kmt-harness merchant"))
    store.put(Terminal(partner.tid, partner.mid))
    for card in cards_from_seed(kci, {"seed": seed, "count": cards, "balance": balance}):
        if card.card_no not in store.cards:
            store.put(card)


def create_app(config: Config) -> web.Application:
    kci = build(config)
    app = web.Application(client_max_size=1 << 20)
    app[KCI] = kci

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        kci.stopping.set()
        kci.store.close()

    async def release_hangs(app: web.Application) -> None:
        kci.stopping.set()  # "hang" faults end before the server waits for its handlers

    app.on_shutdown.append(release_hangs)
    app.cleanup_ctx.append(lifecycle)
    api.add_routes(app)
    admin.add_routes(app)
    return app


@dataclass(frozen=True, slots=True)
class Simulator:
    """A running simulator: ``url`` is the KCI API base (``.../kci/v1``) a backend is configured with."""

    root_url: str
    port: int
    partner: PartnerSeed
    app: web.Application

    @property
    def url(self) -> str:
        return f"{self.root_url}{api.PREFIX}"

    @property
    def admin_url(self) -> str:
        return f"{self.root_url}{admin.PREFIX}"

    @property
    def kci(self) -> Kci:
        return self.app[KCI]


@asynccontextmanager
async def run_simulator(config: Config | None = None) -> AsyncIterator[Simulator]:
    """Serve a simulator on ``config.host:config.port`` (port 0 = ephemeral) until the block ends.

    With ``config.seed`` None the partner/merchant/terminal of ``config.partner`` are still registered
    (with a secret derived from seed 0), so ``sim.partner`` always works; cards come from seeding.
    """
    config = config or Config()
    partner = config.seeded_partner()
    app = create_app(config)
    if config.seed is None:
        seed_defaults(app[KCI], partner, 0, 0, 0)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    try:
        port = int(runner.addresses[0][1])
        yield Simulator(f"http://{config.host}:{port}", port, partner, app)
    finally:
        await runner.cleanup()
