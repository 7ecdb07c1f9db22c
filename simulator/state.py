"""What one simulator app holds: its store, service, clock, faults, journal and metrics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from .clock import Clock
from .config import Config
from .faults import FaultSet
from .journal import Journal
from .metrics import Metrics
from .service import KciService
from .store import Store


@dataclass(slots=True)
class Kci:
    config: Config
    store: Store
    clock: Clock
    service: KciService
    faults: FaultSet
    journal: Journal
    metrics: Metrics
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


KCI: web.AppKey[Kci] = web.AppKey("kci", Kci)
