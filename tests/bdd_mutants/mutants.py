"""Deliberately broken backends: small aiohttp proxies in front of the reference backend.

Each mutant makes one real bug a backend team could ship; the Gherkin suite must fail on each.

- ``ignore_auth``: signs every request itself with the terminal's key, so any caller gets in.
- ``confirm_twice``: no idempotency for confirm: a second confirm of a session goes back to KCI's
  verdict (431 "already confirmed") instead of the stored success.
- ``drop_suspect``: reports every reservation of ``/pending`` as not suspect.
- ``skip_card_verification``: answers card-check 3 itself from the card's read answer, without
  asking KCI to verify it against the session and the card.
- ``write_again``: caches the write command of update 5 per card and, when a top-up of that card is
  resumed, hands the frontend the cached write again instead of KCI's new command.
- ``fake_confirm``: when KCI fails at confirm, tells the frontend the top-up succeeded anyway.
- ``passthrough``: no bug (the reference backend seen through the proxy).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from backend.auth import sign_request
from virtual_card.frames import ReadWithoutEncryptionResponse, parse_response
from virtual_card.profile import CardInfo

MUTANTS = (
    "passthrough",
    "ignore_auth",
    "confirm_twice",
    "drop_suspect",
    "skip_card_verification",
    "write_again",
    "fake_confirm",
)
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass(slots=True)
class Mutant:
    name: str
    backend_url: str
    key_id: str
    secret: str
    confirmed: set[str] = field(default_factory=set)
    writes: dict[str, dict[str, Any]] = field(default_factory=dict)


MUTANT_KEY = web.AppKey("mutant", Mutant)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)


def envelope(code: int, message: str, data: Any) -> web.Response:
    status = 200 if code == 200 else 400
    return web.json_response(
        {"response": {"code": code, "message": message, "latency": 0.0}, "data": data}, status=status
    )


async def forward(request: web.Request, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    mutant = request.app[MUTANT_KEY]
    async with request.app[SESSION_KEY].post(mutant.backend_url + request.path, data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def handle(request: web.Request) -> web.Response:
    mutant = request.app[MUTANT_KEY]
    body = await request.read()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
    parsed: dict[str, Any] = json.loads(body) if body.startswith(b"{") else {}
    if mutant.name == "ignore_auth":
        headers = {
            k: v for k, v in headers.items() if k.lower() != "authorization" and not k.lower().startswith("x-kmt-")
        }
        headers |= sign_request(mutant.key_id, mutant.secret, "POST", request.path, body)
    if mutant.name == "skip_card_verification" and request.path.endswith("/card-check") and parsed.get("step") == 3:
        read = parse_response(bytes.fromhex(str(parsed.get("card_resp", ""))), ReadWithoutEncryptionResponse)
        info = CardInfo.from_blocks(read.blocks)
        data = {
            "card_no": parsed.get("card_no"),
            "account_status": "ACTIVE",
            "card_info_data": {"balance": str(info.purse.balance), "card_number": info.card_no, "history": []},
            "step": 3,
            "next_step": None,
        }
        return envelope(200, "Inquiry Done", data)
    session = str(parsed.get("session_id", ""))
    if mutant.name == "confirm_twice" and request.path.endswith("/confirm") and session in mutant.confirmed:
        return envelope(431, "transaction already confirmed (KCI load-balance/confirm: 431)", None)
    status, payload = await forward(request, body, headers)
    code = payload.get("response", {}).get("code") if isinstance(payload, dict) else None
    if request.path.endswith("/confirm") and code == 200:
        mutant.confirmed.add(session)
    if mutant.name == "write_again" and request.path.endswith("/update") and parsed.get("step") == 5 and code == 200:
        card_no = str(parsed.get("card_no"))
        cached = mutant.writes.setdefault(card_no, payload["data"]["data"])
        payload["data"]["data"] = cached | {"session_id": payload["data"]["data"]["session_id"]}
    if mutant.name == "fake_confirm" and request.path.endswith("/confirm") and isinstance(code, int) and code >= 500:
        data = {"card_no": parsed.get("card_no"), "last_balance": parsed.get("last_balance"), "status": "SUCCESS"}
        data |= {"activated_balance": 0, "prev_balance": 0, "amount": 0, "reservation_number": "", "reff_no": ""}
        data |= {"load_balance_number": ""}
        return envelope(200, "Confirm Topup Success", data)
    if mutant.name == "drop_suspect" and request.path.endswith("/pending") and isinstance(payload.get("data"), dict):
        payload["data"]["suspect_status"] = False
        for item in payload["data"].get("reservations", []):
            item["suspect_status"] = False
    return web.json_response(payload, status=status)


async def _client(app: web.Application) -> AsyncIterator[None]:
    app[SESSION_KEY] = aiohttp.ClientSession()
    yield
    await app[SESSION_KEY].close()


def create_app(mutant: Mutant) -> web.Application:
    app = web.Application()
    app[MUTANT_KEY] = mutant
    app.cleanup_ctx.append(_client)
    app.router.add_post("/topup-kci/{endpoint}", handle)
    return app


@asynccontextmanager
async def run_mutant(mutant: Mutant) -> AsyncIterator[str]:
    """Serve the mutant on 127.0.0.1, port 0; yields its URL."""
    runner = web.AppRunner(create_app(mutant), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
