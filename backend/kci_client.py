"""KCI's partner API over HTTP (docs/kci-api-contract.txt): signed JSON calls with connect/read timeouts.

Every call returns KCI's ``data`` object when ``code == 200`` and raises otherwise:
:class:`KciRejected` (KCI's code passes through), :class:`KciUnreachable` (no connection, dropped
connection), :class:`KciTimeout` (connect or read timeout), :class:`KciProtocolError` (not KCI's envelope),
:class:`KciCredentialsRejected` (KCI refused this backend's partner signature).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from simulator.auth import sign_request

from .errors import (
    Code,
    KciCredentialsRejected,
    KciProtocolError,
    KciRejected,
    KciTimeout,
    KciUnreachable,
)

log = logging.getLogger("backend.kci")


class KciClient:
    """One ``aiohttp.ClientSession`` to KCI; open with ``await client.open()``, close with ``await client.close()``."""

    def __init__(
        self,
        base_url: str,
        partner_id: str,
        partner_secret: str,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._base_path = urlsplit(self._base).path
        self._partner_id = partner_id
        self._secret = partner_secret
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout + read_timeout, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to ``/kci/v1/<operation>`` and return KCI's ``data``."""
        if self._session is None:
            raise KciUnreachable("KCI client is not open")
        body = json.dumps(payload, separators=(",", ":")).encode()
        path = f"{self._base_path}/{operation}"
        headers = sign_request(self._partner_id, self._secret, "POST", path, body, int(time.time()))
        headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            async with self._session.post(f"{self._base}/{operation}", data=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise KciTimeout(f"KCI {operation}: no answer within the timeout") from exc
        except aiohttp.ClientConnectorError as exc:
            raise KciUnreachable(f"KCI {operation}: cannot connect ({exc.os_error})") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise KciUnreachable(f"KCI {operation}: connection failed ({type(exc).__name__})") from exc
        elapsed = time.perf_counter() - started
        envelope = _envelope(operation, status, raw)
        code = envelope["code"]
        log.debug("KCI %s -> %s in %.1f ms", operation, code, elapsed * 1000)
        if code == Code.OK:
            data = envelope.get("data")
            if not isinstance(data, dict):
                raise KciProtocolError(f"KCI {operation}: code 200 without a data object")
            return data
        message = envelope.get("message")
        text = message if isinstance(message, str) else ""
        if code == Code.UNAUTHORIZED:
            raise KciCredentialsRejected(f"KCI refused the backend's partner credentials ({operation}: {text})")
        raise KciRejected(code, text, operation)


def _envelope(operation: str, status: int, raw: bytes) -> dict[str, Any]:
    try:
        envelope = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KciProtocolError(f"KCI {operation}: HTTP {status} without a JSON envelope") from exc
    if not isinstance(envelope, dict):
        raise KciProtocolError(f"KCI {operation}: HTTP {status}: envelope is not an object")
    code = envelope.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise KciProtocolError(f"KCI {operation}: HTTP {status}: envelope without an integer code")
    return envelope
