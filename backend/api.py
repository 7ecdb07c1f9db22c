"""The HTTP edge: body decoding, authentication, the seed's envelope, and error codes.

This is the only module that turns a :class:`backend.errors.BackendError` into ``response.code``.
``latency`` is the seconds this backend spent on the request, KCI's share included.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

from .auth import Authenticator
from .config import BackendConfig
from .errors import DESCRIPTIONS, BackendError, Code, ParameterInvalid, TerminalNotAllowed, http_status
from .service import Outcome, TopupService
from .store import Store
from .validation import Request, parse_card_check, parse_confirm, parse_pending, parse_update

log = logging.getLogger("backend.api")

CONFIG_KEY = web.AppKey("backend_config", BackendConfig)
STORE_KEY = web.AppKey("backend_store", Store)
SERVICE_KEY = web.AppKey("backend_service", TopupService)
AUTH_KEY = web.AppKey("backend_authenticator", Authenticator)

R = TypeVar("R", bound=Request)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def envelope(code: int, message: str, started: float, data: dict[str, Any] | None) -> web.Response:
    latency = round(time.perf_counter() - started, 6)
    body = {"response": {"code": code, "message": message, "latency": latency}, "data": data}
    return web.json_response(body, status=http_status(code))


def decode_body(content_type: str, body: bytes) -> Mapping[str, Any]:
    """A JSON object or form fields; an empty body is no parameters (each missing one is then named).

    A body that starts with ``{`` or ``[`` is JSON whatever its Content-Type (``curl -d '{...}'`` and some
    frontends label JSON as a form); otherwise form fields, unless the Content-Type says JSON.
    """
    stripped = body.strip()
    if not stripped:
        return {}
    if stripped[:1] in (b"{", b"[") or content_type == "application/json":
        try:
            params = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ParameterInvalid("body", f"not valid JSON ({exc})") from exc
        if not isinstance(params, dict):
            raise ParameterInvalid("body", "must be a JSON object")
        return params
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParameterInvalid("body", "neither a JSON object nor form fields") from exc
    return dict(pairs)


def topup_handler(
    name: str, parse: Callable[[Mapping[str, Any]], R], call: Callable[[TopupService, R], Awaitable[Outcome]]
) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        app = request.app
        try:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge as exc:
                raise ParameterInvalid("body", "too large") from exc
            who = await app[AUTH_KEY].authenticate(request.method, request.path, request.headers, body)
            typed = parse(decode_body(request.content_type, body))
            if (typed.tid, typed.mid) != (who.terminal.tid, who.terminal.mid):
                raise TerminalNotAllowed(
                    f"tid/mid: credentials of {who.terminal.key_id} may act only for"
                    f" tid {who.terminal.tid} / mid {who.terminal.mid}"
                )
            outcome = await call(app[SERVICE_KEY], typed)
        except BackendError as exc:
            code = exc.response_code
            level = logging.WARNING if code >= 500 else logging.INFO
            log.log(level, "%s -> %d %s", name, code, exc)
            return envelope(code, str(exc) or DESCRIPTIONS.get(code, "error"), started, None)
        except Exception:
            log.exception("%s: unexpected failure", name)
            return envelope(Code.INTERNAL, "internal error", started, None)
        response = envelope(Code.OK, outcome.message, started, outcome.data)
        if outcome.replayed:
            response.headers["X-KMT-Replayed"] = "true"
        return response

    return handle


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/topup-kci/card-check", topup_handler("card-check", parse_card_check, TopupService.card_check))
    app.router.add_post("/topup-kci/pending", topup_handler("pending", parse_pending, TopupService.pending))
    app.router.add_post("/topup-kci/update", topup_handler("update", parse_update, TopupService.update))
    app.router.add_post("/topup-kci/confirm", topup_handler("confirm", parse_confirm, TopupService.confirm))
    app.router.add_get("/health", health)
