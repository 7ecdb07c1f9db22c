"""The HTTP edge of the KCI API (``/kci/v1/...``): parse, authenticate, inject faults, call the service,
translate errors to codes, journal and measure. The only place where KciError becomes a response."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import auth
from .errors import BadRequestError, Code, KciError, http_status
from .faults import Fault, FaultKind, Phase
from .model import Partner
from .state import KCI, Kci

log = logging.getLogger(__name__)

PREFIX = "/kci/v1"
CARD_NO = re.compile(r"^[0-9]{16}$")
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


class Params:
    """Typed access to a JSON body; every error names the field."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def text(self, name: str, *, required: bool = True, pattern: re.Pattern[str] | None = None) -> str | None:
        value = self.body.get(name)
        if value is None or value == "":
            if required:
                raise BadRequestError(f"{name} is required")
            return None
        if not isinstance(value, str):
            raise BadRequestError(f"{name} must be a string")
        if pattern is not None and not pattern.match(value):
            raise BadRequestError(f"{name} is malformed: {value!r}")
        return value

    def req(self, name: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.text(name, pattern=pattern)
        assert value is not None
        return value

    def integer(self, name: str, *, required: bool = True, minimum: int | None = None) -> int | None:
        value = self.body.get(name)
        if value is None:
            if required:
                raise BadRequestError(f"{name} is required")
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadRequestError(
                f"{name} must be an integer (rupiah)"
                if "balance" in name or name == "amount"
                else f"{name} must be an integer"
            )
        if minimum is not None and value < minimum:
            raise BadRequestError(f"{name} must be >= {minimum}, got {value}")
        return value

    def step(self, last: int) -> int:
        value = self.integer("step")
        assert value is not None
        if not 1 <= value <= last:
            raise BadRequestError(f"step must be 1..{last}, got {value}")
        return value

    def card_resp(self) -> bytes | None:
        value = self.text("card_resp", required=False)
        if value is None:
            return None
        try:
            return bytes.fromhex(value)
        except ValueError as exc:
            raise BadRequestError("card_resp must be hex") from exc

    def terminal(self) -> tuple[str, str, str]:
        return self.req("card_no", CARD_NO), self.req("tid"), self.req("mid")


Operation = Callable[[Kci, Partner, Params], Awaitable[dict[str, Any]]]


async def card_info(kci: Kci, partner: Partner, p: Params) -> dict[str, Any]:
    card_no, tid, mid = p.terminal()
    return await kci.service.card_info(
        partner,
        card_no=card_no,
        tid=tid,
        mid=mid,
        step=p.step(3),
        card_resp=p.card_resp(),
        session_id=p.text("session_id", required=False),
        sequence_data=p.text("sequence_data", required=False),
    )


async def reservation_check(kci: Kci, partner: Partner, p: Params) -> dict[str, Any]:
    return kci.service.reservation_check(partner, *p.terminal())


async def reservation_validate(kci: Kci, partner: Partner, p: Params) -> dict[str, Any]:
    amount = p.integer("amount")
    assert amount is not None
    card_no, tid, mid = p.terminal()
    return await kci.service.reservation_validate(
        partner, card_no=card_no, tid=tid, mid=mid, amount=amount, ref_no=p.req("ref_no")
    )


async def reservation_create(kci: Kci, partner: Partner, p: Params) -> dict[str, Any]:
    amount = p.integer("amount")
    assert amount is not None
    card_no, tid, mid = p.terminal()
    return await kci.service.reservation_create(
        partner, card_no=card_no, tid=tid, mid=mid, amount=amount, ref_no=p.req("ref_no")
    )


async def reservation_inquiry(kci: Kci, partner: Partner, p: Params) -> dict[str, Any]:
    return kci.service.reservation_inquiry(
        partner, p.text("reservation_number", required=False), p.text("ref_no", required=False)
    )


async def load_balance(kci: Kci, partner: Partner, p: Params) -> dict[str, Any]:
    card_no, tid, mid = p.terminal()
    step = p.step(7)
    return await kci.service.load_balance(
        partner,
        card_no=card_no,
        tid=tid,
        mid=mid,
        step=step,
        reservation_number=p.text("reservation_number", required=False),
        prev_balance=p.integer("prev_balance", required=step == 1, minimum=0),
        balance=p.integer("balance", required=step > 1, minimum=0),
        card_resp=p.card_resp(),
        session_id=p.text("session_id", required=step > 1, pattern=SESSION_ID),
        sequence_data=p.text("sequence_data", required=False),
    )


async def confirm(kci: Kci, partner: Partner, p: Params) -> dict[str, Any]:
    card_no, tid, mid = p.terminal()
    last_balance = p.integer("last_balance", minimum=0)
    assert last_balance is not None
    return await kci.service.confirm(
        partner,
        card_no=card_no,
        tid=tid,
        mid=mid,
        session_id=p.req("session_id", SESSION_ID),
        last_balance=last_balance,
    )


OPERATIONS: dict[str, Operation] = {
    "card-info": card_info,
    "reservation/check": reservation_check,
    "reservation/validate": reservation_validate,
    "reservation/create": reservation_create,
    "reservation/inquiry": reservation_inquiry,
    "load-balance": load_balance,
    "load-balance/confirm": confirm,
}


def envelope(code: int, message: str, data: Any) -> web.Response:
    return web.json_response({"code": code, "message": message, "data": data}, status=http_status(code))


def _abort(request: web.Request) -> None:
    """Close the connection with a TCP reset (SO_LINGER 0), so the client sees 'connection reset'."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class NoAnswerError(Exception):
    """The fault took the answer away; the connection is already gone."""


async def _fault_answer(kci: Kci, request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """Carry out a fault; None means 'go on normally' (after a delay)."""
    if fault.kind == FaultKind.DELAY:
        await asyncio.sleep(kci.faults.delay_seconds(fault))
        return None
    if fault.kind == FaultKind.ERROR:
        code = fault.code or Code.INTERNAL
        return envelope(code, f"injected fault {fault.id}", None)
    if fault.kind == FaultKind.HTTP500:
        return web.Response(status=500, text="500 Internal Server Error (injected)")
    if fault.kind == FaultKind.EMPTY:
        return web.Response(status=200, body=b"")
    if fault.kind == FaultKind.HANG:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(kci.stopping.wait(), kci.config.hang_seconds)
    _abort(request)
    raise NoAnswerError(fault.id)


def _body_fields(body: Any) -> tuple[int | None, str | None, str | None]:
    if not isinstance(body, dict):
        return None, None, None
    step, card_no, sid = body.get("step"), body.get("card_no"), body.get("session_id")
    return (
        step if isinstance(step, int) and not isinstance(step, bool) else None,
        card_no if isinstance(card_no, str) else None,
        sid if isinstance(sid, str) else None,
    )


def make_handler(name: str, operation: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        kci = request.app[KCI]
        started = time.perf_counter()
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        step, card_no, session_id = _body_fields(body)
        partner_id = request.headers.get(auth.PARTNER_HEADER)
        fault = kci.faults.take(name, step, card_no) if kci.faults.faults else None
        if fault is not None:
            kci.metrics.faults.labels(name, fault.kind).inc()
        response: web.StreamResponse | None = None
        doc: dict[str, Any] | None = None
        data: Any = None
        code: int | None = None
        try:
            if fault is not None and fault.phase == Phase.BEFORE:
                response = await _fault_answer(kci, request, fault)
            if response is None:
                try:
                    if not isinstance(body, dict):
                        raise BadRequestError("body must be a JSON object")
                    partner = kci.service.partner(auth.claimed_partner(request.headers))
                    auth.verify_request(
                        request.headers,
                        secret=partner.secret,
                        method=request.method,
                        path=request.path,
                        body=raw,
                        now=time.time(),
                        skew=kci.service.limits.clock_skew,
                    )
                    data = await operation(kci, partner, Params(body))
                    code, message = Code.OK, "OK"
                except KciError as exc:
                    code, message, data = exc.code, str(exc), None
                except Exception:
                    log.exception("%s failed", name)
                    code, message, data = Code.INTERNAL, "internal error", None
                if isinstance(data, dict) and session_id is None:
                    sid = data.get("session_id")
                    session_id = sid if isinstance(sid, str) else None
                doc = {"code": code, "message": message, "data": data}
                response = web.json_response(doc, status=http_status(code))
                if fault is not None and fault.phase == Phase.AFTER:
                    spoiled = await _fault_answer(kci, request, fault)
                    if spoiled is not None:
                        response, doc = spoiled, None
        except NoAnswerError:
            response = None
        finally:
            elapsed = time.perf_counter() - started
            sent: Any = doc
            if doc is None:
                sent = _decoded(response) if isinstance(response, web.Response) else None
                code = sent.get("code") if isinstance(sent, dict) else None
            kci.metrics.observe(name, step, code, elapsed)
            kci.journal.add(
                time=kci.clock.time(),
                operation=name,
                step=step,
                card_no=card_no,
                session_id=session_id,
                partner_id=partner_id,
                request=body,
                status=response.status if response else None,
                response=sent,
                code=code,
                fault=fault.id if fault else None,
                duration_ms=elapsed * 1000,
            )
        if response is None:
            raise web.HTTPException(reason="connection reset")  # never reaches the client
        return response

    return handler


def _decoded(response: web.Response) -> Any:
    body = response.body
    if not isinstance(body, bytes) or not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def add_routes(app: web.Application) -> None:
    for name, operation in OPERATIONS.items():
        app.router.add_post(f"{PREFIX}/{name}", make_handler(name, operation))
