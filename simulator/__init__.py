"""The fake KCI host (Sistem KCI): what a top-up backend calls instead of PT KCI.

Layers, outside in:

- ``api`` (HTTP edge of ``/kci/v1``): parses JSON, checks the partner's HMAC signature (``auth``),
  injects faults (``faults``), journals and measures (``journal``, ``metrics``), and is the only place
  where a :class:`~simulator.errors.KciError` becomes a response code.
- ``admin`` (``/__admin/``): seeding, inspection, reconciliation, journal, faults, clock, limits.
- ``service``: the operations (card info, reservations, the 7-step load balance, confirm), per-card
  locks and session/step/sequence_data checks; ``rules`` holds the business limits.
- ``sam``: KCI's SAM role, building every card command and verifying every card answer through
  :mod:`virtual_card`'s codec and host-side secure messaging.
- ``money``: every change of a reservation's money state, the update-5 recovery decision and
  reconciliation against the money invariant (DESIGN.md) — the one place money logic lives.
- ``store``: the records (``model``), in memory or written through to SQLite.

``create_app(config)`` builds the aiohttp application; ``run_simulator(config)`` serves it on a
loopback port for tests and the harness; ``kmt kci`` runs it from the command line.
"""

from __future__ import annotations

from .app import Simulator, create_app, run_simulator
from .config import Config, Limits, PartnerSeed

__all__ = ["Config", "Limits", "PartnerSeed", "Simulator", "create_app", "run_simulator"]
