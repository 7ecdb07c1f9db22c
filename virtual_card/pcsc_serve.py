"""``kmt card serve --vpcd``: keeps a virtual KMT card in a pcscd reader slot, with remove/insert controls.

:class:`CardServer` owns one card and one :class:`~virtual_card.vpcd.VpcdSlot`. The card stays in the
reader until Ctrl-C (SIGINT/SIGTERM). Controls (``docs/pcsc.md``):

- signals: ``SIGUSR1`` removes the card, ``SIGUSR2`` inserts it again;
- optional admin HTTP on loopback (``--admin 127.0.0.1:PORT``, :func:`create_app`):
  ``GET /card`` status, ``POST /card/remove``, ``POST /card/insert``.

When pcscd drops the connection (stopped or restarted) the server puts the card back as soon as the
slot listens again. A card that left the field through a fault hook stays out until inserted again.
With ``save_path`` the card image is written back there on every removal and at exit, so balance
changes made through the reader persist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from .card import KmtCard
from .reader import VirtualReader
from .vpcd import CloseReason, VpcdConnectError, VpcdSlot

log = logging.getLogger(__name__)

RECONNECT_INTERVAL = 0.5


class CardServer:
    """One card served into one vpcd slot; methods are blocking and thread-safe through the slot."""

    def __init__(self, card: KmtCard, slot: VpcdSlot, *, timeout: float, save_path: Path | None = None) -> None:
        self.card = card
        self.slot = slot
        self.timeout = timeout
        self.save_path = save_path
        self.wanted = False
        """Whether the operator wants the card in the reader (reconnect after pcscd restarts)."""

    def insert(self) -> None:
        self.slot.insert(VirtualReader(self.card, timeout=self.timeout))
        self.wanted = True

    def remove(self) -> None:
        self.wanted = False
        self.slot.remove()
        self.save()

    def save(self) -> None:
        if self.save_path is not None:
            self.card.image().save(self.save_path)

    def watch(self) -> None:
        """Put the card back after pcscd dropped the connection (not after a fault-hook removal)."""
        if not self.wanted or self.slot.present:
            return
        if self.slot.close_reason is CloseReason.CARD_LEFT:
            self.wanted = False
            self.save()
            return
        with contextlib.suppress(VpcdConnectError):
            self.slot.remove()
            self.insert()
            log.info("card reinserted into %s:%d after the reader went away", self.slot.host, self.slot.port)

    def status(self) -> dict[str, Any]:
        reason = self.slot.close_reason
        return {
            "present": self.slot.present,
            "vpcd": f"{self.slot.host}:{self.slot.port}",
            "close_reason": None if reason is None else reason.value,
            "card_no": self.card.card_no,
            "idm": self.card.idm.hex(),
            "balance": self.card.balance,
            "apdus": self.slot.apdus,
        }


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """What the admin app controls."""

    server: CardServer


SERVER_KEY = web.AppKey("server", CardServer)


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVER_KEY].status())


async def _remove(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    await asyncio.to_thread(server.remove)
    return web.json_response(server.status())


async def _insert(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    if server.slot.present:
        return web.json_response({"error": "the card is already in the reader", **server.status()}, status=409)
    try:
        await asyncio.to_thread(server.insert)
    except VpcdConnectError as exc:
        return web.json_response({"error": str(exc), **server.status()}, status=503)
    return web.json_response(server.status())


def create_app(config: AdminConfig) -> web.Application:
    """The loopback admin API: ``GET /card``, ``POST /card/remove``, ``POST /card/insert``."""
    app = web.Application()
    app[SERVER_KEY] = config.server
    app.router.add_get("/card", _status)
    app.router.add_post("/card/remove", _remove)
    app.router.add_post("/card/insert", _insert)
    return app


async def serve(
    server: CardServer, *, admin: tuple[str, int] | None = None, ready: asyncio.Event | None = None
) -> None:
    """Insert the card and keep it served until SIGINT/SIGTERM; SIGUSR1 removes, SIGUSR2 inserts."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    await asyncio.to_thread(server.insert)

    def on_remove() -> None:
        loop.run_in_executor(None, server.remove)

    def on_insert() -> None:
        if not server.slot.present:
            loop.run_in_executor(None, server.insert)

    handlers = {signal.SIGINT: stop.set, signal.SIGTERM: stop.set, signal.SIGUSR1: on_remove, signal.SIGUSR2: on_insert}
    for sig, handler in handlers.items():
        loop.add_signal_handler(sig, handler)
    runner: web.AppRunner | None = None
    try:
        if admin is not None:
            runner = web.AppRunner(create_app(AdminConfig(server)))
            await runner.setup()
            site = web.TCPSite(runner, admin[0], admin[1])
            await site.start()
            for address in runner.addresses:
                host, port = address[:2]
                print(f"admin http://{host}:{port}/card", flush=True)
        if ready is not None:
            ready.set()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONNECT_INTERVAL)
            if not stop.is_set():
                await asyncio.to_thread(server.watch)
    finally:
        for sig in handlers:
            loop.remove_signal_handler(sig)
        if runner is not None:
            await runner.cleanup()
        await asyncio.to_thread(server.remove)
