"""Fixtures for the backend tests: a real KCI simulator in process (port 0) and backends in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from backend_helpers import CARDS, SEED, START_BALANCE, TERMINAL, Frontend, StartBackend, backend_config

from backend.app import RunningBackend, run_backend
from simulator.app import Simulator, run_simulator
from simulator.config import Config
from virtual_card.card import KmtCard
from virtual_card.factory import DEFAULT_MASTER_KEY, make_card_image


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
