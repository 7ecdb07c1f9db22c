"""The HTTP virtual reader: slots that hold virtual cards, for frontends that cannot load Python.

A web or mobile frontend in development calls these endpoints where it would call its NFC reader
(``terminal.readers.HttpReader`` is the Python client). Frames are hex, with or without LEN;
answers carry LEN. All endpoints answer JSON and allow cross-origin calls (a dev server on another port).

    GET  /reader/cards                      the virtual cards: card_no, IDm, balance, slot
    GET  /reader/slots                      the slots and the card in each
    GET  /reader/slots/{slot}               {"slot", "present", "card_no"}
    POST /reader/slots/{slot}/insert        {"card_no": "..."}: put a card in (it leaves any other slot)
    POST /reader/slots/{slot}/remove        take the card out
    POST /reader/slots/{slot}/transceive    {"frame": "hex", "timeout": 1.0}
         -> {"status": "ok", "answer": "hex"} | {"status": "removed"|"timeout", "detail": "..."}
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from terminal.errors import CardRemoved
from terminal.readers import DEFAULT_TIMEOUT, InProcessReader
from virtual_card.card import KmtCard

from .errors import HarnessError

MAX_TIMEOUT = 30.0


@dataclass(slots=True)
class ReaderHub:
    """The cards on the desk and the reader slots they can be put in."""

    cards: dict[str, KmtCard]
    slots: dict[str, InProcessReader] = field(default_factory=dict)
    on_change: Callable[[KmtCard], None] | None = None

    def slot(self, name: str) -> InProcessReader:
        if name not in self.slots:
            self.slots[name] = InProcessReader()
        return self.slots[name]

    def slot_of(self, card_no: str) -> str | None:
        for name, reader in self.slots.items():
            if reader.card is not None and reader.card.card_no == card_no:
                return name
        return None

    def insert(self, slot: str, card_no: str) -> KmtCard:
        card = self.cards[card_no]
        current = self.slot_of(card_no)
        if current is not None:
            self.slots[current].remove()
        self.slot(slot).insert(card)
        return card


HUB: web.AppKey[ReaderHub] = web.AppKey("reader_hub", ReaderHub)


class ReaderRequestError(HarnessError):
    """A request to the virtual reader is malformed; answered with HTTP 400 naming the field."""


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, separators=(",", ":")))


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReaderRequestError("body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise ReaderRequestError("body must be a JSON object")
    return body


@web.middleware
async def _edge(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=204)
    else:
        try:
            response = await handler(request)
        except ReaderRequestError as exc:
            response = _json({"error": str(exc)}, 400)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return response


def _slot_view(name: str, reader: InProcessReader) -> dict[str, Any]:
    card = reader.card
    return {"slot": name, "present": reader.card_present(), "card_no": None if card is None else card.card_no}


async def cards(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return _json(
        [
            {"card_no": c.card_no, "idm": c.idm.hex(), "balance": c.balance, "slot": hub.slot_of(c.card_no)}
            for c in hub.cards.values()
        ]
    )


async def slots(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return _json([_slot_view(name, reader) for name, reader in hub.slots.items()])


async def slot_status(request: web.Request) -> web.Response:
    name = request.match_info["slot"]
    return _json(_slot_view(name, request.app[HUB].slot(name)))


async def insert(request: web.Request) -> web.Response:
    hub, name = request.app[HUB], request.match_info["slot"]
    card_no = (await _body(request)).get("card_no")
    if not isinstance(card_no, str) or card_no not in hub.cards:
        raise ReaderRequestError(f"card_no: {card_no!r} is not one of the virtual cards (GET /reader/cards lists them)")
    hub.insert(name, card_no)
    return _json(_slot_view(name, hub.slot(name)))


async def remove(request: web.Request) -> web.Response:
    hub, name = request.app[HUB], request.match_info["slot"]
    card = hub.slot(name).remove()
    if card is not None and hub.on_change is not None:
        hub.on_change(card)
    return _json(_slot_view(name, hub.slot(name)))


async def transceive(request: web.Request) -> web.Response:
    hub, name = request.app[HUB], request.match_info["slot"]
    body = await _body(request)
    frame_hex, timeout = body.get("frame"), body.get("timeout", DEFAULT_TIMEOUT)
    try:
        frame = bytes.fromhex(frame_hex) if isinstance(frame_hex, str) else b""
    except ValueError:
        frame = b""
    if not frame:
        raise ReaderRequestError("frame: hex bytes of a FeliCa command expected")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= MAX_TIMEOUT:
        raise ReaderRequestError(f"timeout: seconds in (0, {MAX_TIMEOUT}] expected")
    reader = hub.slot(name)
    card = reader.card
    wait, outcome = reader.exchange(frame, float(timeout))
    if wait:
        await asyncio.sleep(wait)
    if card is not None and hub.on_change is not None:
        hub.on_change(card)
    if isinstance(outcome, bytes):
        return _json({"status": "ok", "answer": outcome.hex()})
    status = "removed" if isinstance(outcome, CardRemoved) else "timeout"
    return _json({"status": status, "detail": str(outcome)})


def create_reader_app(hub: ReaderHub) -> web.Application:
    app = web.Application(middlewares=[_edge])
    app[HUB] = hub
    app.router.add_get("/reader/cards", cards)
    app.router.add_get("/reader/slots", slots)
    app.router.add_get("/reader/slots/{slot}", slot_status)
    app.router.add_post("/reader/slots/{slot}/insert", insert)
    app.router.add_post("/reader/slots/{slot}/remove", remove)
    app.router.add_post("/reader/slots/{slot}/transceive", transceive)
    app.router.add_route("OPTIONS", "/reader/{tail:.*}", slots)
    return app
