"""Fixtures for the backend tests: a real KCI simulator in process (port 0) and backends in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from backend_helpers import Frontend

from backend.app import RunningBackend, run_backend
from backend.config import AuthScheme, BackendConfig, TerminalCredential
from simulator.app import Simulator, run_simulator
from simulator.config import Config
from virtual_card.card import KmtCard
from virtual_card.factory import DEFAULT_MASTER_KEY, make_card_image

SEED = 4242
CARDS = 12
START_BALANCE = 50_000

TERMINAL = TerminalCredential("term-01", "T0000001", "M0000001", "terminal-one-secret-0001")
OTHER_TERMINAL = TerminalCredential("term-02", "T0000002", "M0000001", "terminal-two-secret-0002")
HMAC_ONLY = TerminalCredential("term-03", "T0000001", "M0000001", "terminal-hmac-secret-003", AuthScheme.HMAC)


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(Config(seed=SEED, cards=CARDS, card_balance=START_BALANCE)) as simulator:
        yield simulator


@pytest.fixture
def card_for() -> Callable[[int], tuple[KmtCard, str]]:
    """``card_for(index)`` -> (virtual card, card_no): the same card the simulator registered."""

    def make(index: int) -> tuple[KmtCard, str]:
        image = make_card_image(SEED, index, DEFAULT_MASTER_KEY, balance=START_BALANCE)
        return KmtCard(image), str(image.card_no)

    return make


def backend_config(sim: Simulator, db_path: Path | None, **changes: Any) -> BackendConfig:
    config = BackendConfig(
        kci_url=sim.url,
        kci_partner_id=sim.partner.partner_id,
        kci_partner_secret=sim.partner.secret,
        terminals=(TERMINAL, OTHER_TERMINAL, HMAC_ONLY),
        db_path=db_path,
        db_synchronous="NORMAL",
        connect_timeout=1.0,
        read_timeout=1.0,
    )
    return replace(config, **changes)


StartBackend = Callable[..., Awaitable[RunningBackend]]


@pytest_asyncio.fixture
async def start_backend(sim: Simulator, tmp_path: Path) -> AsyncIterator[StartBackend]:
    """``await start_backend(**config_changes)``: a backend on a file DB in tmp_path (closed at the end)."""
    async with AsyncExitStack() as stack:

        async def start(**changes: Any) -> RunningBackend:
            changes.setdefault("db_path", tmp_path / "backend.sqlite3")
            return await stack.enter_async_context(run_backend(backend_config(sim, **changes)))

        yield start


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture
async def backend(start_backend: StartBackend) -> RunningBackend:
    return await start_backend()


@pytest.fixture
def frontend(http: aiohttp.ClientSession, backend: RunningBackend) -> Frontend:
    return Frontend(http, backend.url, TERMINAL)
