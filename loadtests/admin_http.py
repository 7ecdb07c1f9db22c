"""The KCI simulator's admin API (docs/kci-api.md) over blocking stdlib HTTP.

Locust processes run under gevent, where aiohttp's :class:`~simulator.admin_client.AdminClient`
does not belong; urllib's sockets are cooperative there (gevent patches them), so these calls do not
stall the other users.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .errors import AdminCallFailed


class AdminHttp:
    def __init__(self, admin_url: str, *, timeout: float = 30.0) -> None:
        if not admin_url.startswith(("http://", "https://")):
            raise AdminCallFailed(f"admin URL must be http(s)://..., got {admin_url!r}")
        self.url = admin_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Call ``<admin>/<path>``; returns the envelope's data or raises :class:`AdminCallFailed`."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 - the configured admin URL
            f"{self.url}/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise AdminCallFailed(f"admin API {self.url}/{path} unreachable: {exc}") from exc
        try:
            envelope = json.loads(raw)
        except ValueError as exc:
            raise AdminCallFailed(f"admin API {path}: answer is not JSON: {raw[:80]!r}") from exc
        if not isinstance(envelope, dict) or envelope.get("code") != 200:
            raise AdminCallFailed(f"admin API {path}: {envelope!r}"[:300])
        return envelope.get("data")

    def seed_cards(self, cards: list[dict[str, Any]]) -> None:
        """Register cards: [{card_no, idm, balance}] (balance at issue)."""
        self.request("POST", "seed", {"cards": cards})

    def reconcile(self, cards: list[dict[str, Any]]) -> dict[str, Any]:
        """The money invariant for [{card_no, balance, fares}] -> {ok, findings, cards}."""
        result: dict[str, Any] = self.request("POST", "reconcile", cards)
        return result

    def limits(self, **changes: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST" if changes else "GET", "limits", changes or None)
        return result

    def add_fault(self, **fault: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "faults", fault)
        return result

    def clear_faults(self) -> None:
        self.request("DELETE", "faults")
