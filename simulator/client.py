"""A small signed client of the KCI API, for tests, benchmarks and people poking at the simulator.

async with KciClient(sim.url, sim.partner.partner_id, sim.partner.secret) as kci:
    env = await kci.call("card-info", {"card_no": ..., "tid": ..., "mid": ..., "step": 1})
"""

from __future__ import annotations

import json
import time
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp

from .auth import sign_request


class SessionClient:
    """An aiohttp client session, given (and left open) or made on first use (and closed by :meth:`close`)."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._own = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._own = True
        return self._session

    async def __aenter__(self) -> Self:
        self.session  # noqa: B018 - opens the session inside the caller's event loop
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None


class KciClient(SessionClient):
    def __init__(self, url: str, partner_id: str, secret: str, *, session: aiohttp.ClientSession | None = None) -> None:
        super().__init__(session)
        self.url = url.rstrip("/")
        self.path = urlsplit(self.url).path
        self.partner_id = partner_id
        self.secret = secret

    def headers(self, operation: str, body: bytes) -> dict[str, str]:
        headers = sign_request(self.partner_id, self.secret, "POST", f"{self.path}/{operation}", body, time.time())
        headers["Content-Type"] = "application/json"
        return headers

    async def raw(self, operation: str, payload: Any) -> tuple[int, Any]:
        """POST and return (HTTP status, parsed JSON body)."""
        body = json.dumps(payload).encode()
        async with self.session.post(
            f"{self.url}/{operation}", data=body, headers=self.headers(operation, body)
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def call(self, operation: str, payload: Any) -> dict[str, Any]:
        """POST and return the envelope ``{"code", "message", "data"}``."""
        _, envelope = await self.raw(operation, payload)
        if not isinstance(envelope, dict):
            raise ValueError(f"{operation}: answer is not a JSON object: {envelope!r}")
        return envelope
