"""``create_app(config)`` and the embeddable runner ``run_backend(config)``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from .api import AUTH_KEY, CONFIG_KEY, SERVICE_KEY, STORE_KEY, add_routes
from .auth import Authenticator
from .config import BackendConfig
from .kci_client import KciClient
from .service import TopupService
from .store import Store

log = logging.getLogger("backend")

MAX_BODY = 64 * 1024


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG_KEY]
    store = Store(config.db_path, config.db_synchronous)
    await store.open()
    kci = KciClient(
        config.kci_base,
        config.kci_partner_id,
        config.kci_partner_secret,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
    )
    await kci.open()
    app[STORE_KEY] = store
    app[SERVICE_KEY] = TopupService(store, kci, replay_window=config.replay_window)
    app[AUTH_KEY] = Authenticator(config.terminals, store.record_nonce, config.signature_window)
    try:
        yield
    finally:
        await kci.close()
        await store.close()


def create_app(config: BackendConfig) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[CONFIG_KEY] = config
    app.cleanup_ctx.append(_resources)
    add_routes(app)
    return app


@dataclass(frozen=True, slots=True)
class RunningBackend:
    url: str
    port: int
    app: web.Application

    @property
    def store(self) -> Store:
        return self.app[STORE_KEY]


@asynccontextmanager
async def run_backend(config: BackendConfig) -> AsyncIterator[RunningBackend]:
    """Serve the backend on ``config.host:config.port`` (0 = any free port) until the block ends."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}"
        log.info("backend listening on %s (KCI %s)", url, config.kci_base)
        yield RunningBackend(url=url, port=int(port), app=app)
    finally:
        await runner.cleanup()
