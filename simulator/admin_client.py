"""Async client of the admin API (``/__admin/``), for tests of the backend and the harness.

async with AdminClient(sim.admin_url) as admin:
    await admin.seed(cards={"seed": 7, "count": 3, "balance": 50_000})
    await admin.add_fault(kind="reset", operation="load-balance", step=6, phase="after")
    report = await admin.reconcile([{"card_no": ..., "balance": ..., "fares": 0}])
"""

from __future__ import annotations

from typing import Any

import aiohttp

from .client import SessionClient


class AdminError(Exception):
    """The admin API answered with a code other than 200."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class AdminClient(SessionClient):
    def __init__(self, admin_url: str, *, session: aiohttp.ClientSession | None = None) -> None:
        super().__init__(session)
        self.url = admin_url.rstrip("/")

    async def request(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        """Call ``/__admin/<path>``; returns the envelope's data or raises :class:`AdminError`."""
        async with self.session.request(method, f"{self.url}/{path}", json=body, params=params) as resp:
            envelope = await resp.json(content_type=None)
        if not isinstance(envelope, dict) or envelope.get("code") != 200:
            code = envelope.get("code", resp.status) if isinstance(envelope, dict) else resp.status
            message = envelope.get("message", "") if isinstance(envelope, dict) else str(envelope)
            raise AdminError(int(code), str(message))
        return envelope["data"]

    async def seed(
        self,
        *,
        partners: list[dict[str, Any]] | None = None,
        merchants: list[dict[str, Any]] | None = None,
        terminals: list[dict[str, Any]] | None = None,
        cards: list[dict[str, Any]] | dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register records; ``cards`` is a list of {card_no, idm, balance, status?, expires?} or
        {seed, count, balance?, start?} (the cards of virtual_card.factory.make_card_image)."""
        body: dict[str, Any] = {}
        for name, value in (
            ("partners", partners),
            ("merchants", merchants),
            ("terminals", terminals),
            ("cards", cards),
        ):
            if value is not None:
                body[name] = value
        result: dict[str, Any] = await self.request("POST", "seed", body)
        return result

    async def cards(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", "cards")
        return result

    async def set_card(self, card_no: str, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", f"cards/{card_no}", changes)
        return result

    async def reset(self, card_no: str | None = None) -> None:
        await self.request("POST", "reset", {"card_no": card_no} if card_no else {})

    async def limits(self, **changes: int) -> dict[str, int]:
        result: dict[str, int] = await self.request("POST" if changes else "GET", "limits", changes or None)
        return result

    async def reservations(self, card_no: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("card_no", card_no), ("status", status)) if v is not None}
        result: list[dict[str, Any]] = await self.request("GET", "reservations", params=params)
        return result

    async def ledger(self, card_no: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request(
            "GET", "ledger", params={"card_no": card_no} if card_no else None
        )
        return result

    async def reconcile(self, cards: list[dict[str, Any]]) -> dict[str, Any]:
        """``cards``: [{card_no, balance (now), fares (sum since issue)}] -> {ok, findings, cards}."""
        result: dict[str, Any] = await self.request("POST", "reconcile", cards)
        return result

    async def add_fault(self, **fault: Any) -> dict[str, Any]:
        """kind=delay|error|http500|reset|empty|hang, operation, step, card_no, nth, probability, times,
        phase=before|after, delay_ms, delay_max_ms, code; returns the fault with its id."""
        result: dict[str, Any] = await self.request("POST", "faults", fault)
        return result

    async def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", "faults")
        return result

    async def remove_fault(self, fault_id: str) -> None:
        await self.request("DELETE", f"faults/{fault_id}")

    async def clear_faults(self) -> None:
        await self.request("DELETE", "faults")

    async def advance_clock(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", "clock", {"advance": seconds})
        return result

    async def set_clock(self, when: float | str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", "clock", {"set": when})
        return result

    async def clock(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "clock")
        return result

    async def journal(
        self,
        *,
        card_no: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        step: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        params = {
            k: str(v)
            for k, v in (
                ("card_no", card_no),
                ("session_id", session_id),
                ("operation", operation),
                ("step", step),
                ("limit", limit),
            )
            if v is not None
        }
        result: dict[str, Any] = await self.request("GET", "journal", params=params)
        entries: list[dict[str, Any]] = result["entries"]
        return entries

    async def set_journal(self, enabled: bool) -> None:
        await self.request("POST", "journal", {"enabled": enabled})

    async def clear_journal(self) -> None:
        await self.request("DELETE", "journal")
