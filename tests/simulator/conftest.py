"""Fixtures for the KCI simulator's tests: served simulators, a signed client and the driver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio
from sim_driver import BALANCE, SEED, Driver

from simulator.admin_client import AdminClient
from simulator.app import Simulator, run_simulator
from simulator.client import KciClient
from simulator.config import Config


@pytest_asyncio.fixture
async def sim_factory() -> AsyncIterator[Callable[..., Any]]:
    """Start simulators (``await factory(**config)``); all are stopped at the end of the test."""
    stack: list[Any] = []

    async def start(**kw: Any) -> Simulator:
        cm = run_simulator(Config(seed=SEED, cards=kw.pop("cards", 4), card_balance=BALANCE, **kw))
        sim = await cm.__aenter__()
        stack.append(cm)
        return sim

    yield start
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)


@pytest_asyncio.fixture
async def sim(sim_factory: Callable[..., Any]) -> Simulator:
    result: Simulator = await sim_factory()
    return result


@pytest_asyncio.fixture
async def driver(sim: Simulator) -> AsyncIterator[Driver]:
    async with (
        KciClient(sim.url, sim.partner.partner_id, sim.partner.secret) as kci,
        AdminClient(sim.admin_url) as admin,
    ):
        yield Driver(kci, admin, sim)
