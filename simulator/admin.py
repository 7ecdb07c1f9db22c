"""The admin API under ``/__admin/`` (no partner auth): seeding, inspection, reconciliation, journal,
faults, clock and limits. Same envelope as the KCI API; bad input is 400 with the field named."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import fields
from datetime import datetime
from typing import Any

from aiohttp import web

from .clock import WIB, fmt
from .errors import BadRequestError, Code, KciError, http_status
from .model import Card, CardStatus, Doc, Merchant, Partner, ReservationStatus, Terminal
from .money import parse_reports, reconcile
from .state import KCI, Kci

PREFIX = "/__admin"

Handler = Callable[[Kci, web.Request, Any], Awaitable[Any]]


def ok(data: Any) -> web.Response:
    return web.json_response({"code": Code.OK, "message": "OK", "data": data})


def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def run(request: web.Request) -> web.StreamResponse:
        kci = request.app[KCI]
        try:
            body: Any = None
            if request.can_read_body:
                raw = await request.read()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError as exc:
                    raise BadRequestError("body is not JSON") from exc
            return ok(await handler(kci, request, body))
        except KciError as exc:
            return web.json_response(
                {"code": exc.code, "message": str(exc), "data": None}, status=http_status(exc.code)
            )

    return run


# -- records from JSON -------------------------------------------------------------------------

TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,)}


def _record(cls: type[Doc], doc: Any, where: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise BadRequestError(f"{where}: must be an object")
    names = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    for key, value in doc.items():
        if key not in names:
            raise BadRequestError(f"{where}.{key}: unknown field")
        expected = str(names[key].type)
        if value is None and "None" in expected:
            continue
        if expected.startswith("bool") and not isinstance(value, bool):
            raise BadRequestError(f"{where}.{key}: must be true or false")
        if expected.startswith("int") and (not isinstance(value, int) or isinstance(value, bool)):
            raise BadRequestError(f"{where}.{key}: must be an integer")
        if expected.startswith("str") and not isinstance(value, str):
            raise BadRequestError(f"{where}.{key}: must be a string")
    for key in required:
        if key not in doc:
            raise BadRequestError(f"{where}.{key}: is required")
    return dict(doc)


def _card(doc: Any, where: str) -> Card:
    if not isinstance(doc, dict):
        raise BadRequestError(f"{where}: must be an object")
    doc = dict(doc)
    if "balance" in doc:
        doc["issued_balance"] = doc.pop("balance")
    d = _record(Card, doc, where, ("card_no", "idm", "issued_balance"))
    card_no, idm = d["card_no"], d["idm"]
    if len(card_no) != 16 or not card_no.isdigit():
        raise BadRequestError(f"{where}.card_no: must be 16 digits")
    try:
        raw = bytes.fromhex(idm)
    except ValueError as exc:
        raise BadRequestError(f"{where}.idm: must be hex") from exc
    if len(raw) != 8:
        raise BadRequestError(f"{where}.idm: must be 8 bytes")
    if d["issued_balance"] < 0:
        raise BadRequestError(f"{where}.balance: must not be negative")
    if d.get("status", CardStatus.ACTIVE) not in set(CardStatus):
        raise BadRequestError(f"{where}.status: one of {', '.join(CardStatus)}")
    _check_date(d.get("expires", "2099-12-31"), f"{where}.expires")
    d["idm"] = raw.hex()
    d.setdefault("last_balance", d["issued_balance"])
    return Card(**d)


def _check_date(value: str, where: str) -> None:
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise BadRequestError(f"{where}: must be YYYY-MM-DD") from exc


def cards_from_seed(kci: Kci, doc: dict[str, Any]) -> list[Card]:
    """The cards virtual_card.factory.make_card_image(seed, index, master_key) builds."""
    from virtual_card.factory import make_card_image  # noqa: PLC0415 - only seeding needs Faker

    seed, count, start = doc.get("seed"), doc.get("count", 1), doc.get("start", 0)
    balance = doc.get("balance")
    for name, value in (("seed", seed), ("count", count), ("start", start)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BadRequestError(f"cards.{name}: must be a non-negative integer")
    if balance is not None and (not isinstance(balance, int) or isinstance(balance, bool) or balance < 0):
        raise BadRequestError("cards.balance: must be a non-negative integer")
    master_key = kci.service.master_key
    cards = []
    for index in range(start, start + count):
        image = make_card_image(seed, index, master_key, balance=balance)  # type: ignore[arg-type]
        cards.append(
            Card(
                card_no=str(image.card_no),
                idm=bytes(image.idm).hex(),
                issued_balance=image.issued_balance,
                last_balance=image.issued_balance,
            )
        )
    return cards


def card_view(card: Card) -> dict[str, Any]:
    return card.to_doc() | {"balance": card.issued_balance}


async def seed(kci: Kci, request: web.Request, body: Any) -> Any:
    if not isinstance(body, dict):
        raise BadRequestError("seed: body must be an object with partners, merchants, terminals and/or cards")
    unknown = set(body) - {"partners", "merchants", "terminals", "cards"}
    if unknown:
        raise BadRequestError(f"seed: unknown field(s) {', '.join(sorted(unknown))}")
    store = kci.store
    records: list[Doc] = []
    for i, d in enumerate(_list(body, "partners")):
        records.append(Partner(**_record(Partner, d, f"partners[{i}]", ("partner_id", "secret"))))
    for i, d in enumerate(_list(body, "merchants")):
        records.append(Merchant(**_record(Merchant, d, f"merchants[{i}]", ("mid", "partner_id"))))
    for i, d in enumerate(_list(body, "terminals")):
        records.append(Terminal(**_record(Terminal, d, f"terminals[{i}]", ("tid", "mid"))))
    cards_doc = body.get("cards")
    cards = (
        cards_from_seed(kci, cards_doc)
        if isinstance(cards_doc, dict)
        else [_card(d, f"cards[{i}]") for i, d in enumerate(_list(body, "cards"))]
    )
    for rec in records + cards:  # validated as a whole before anything is stored
        store.put(rec)
    return {
        "partners": [r.to_doc() for r in records if isinstance(r, Partner)],
        "merchants": [r.to_doc() for r in records if isinstance(r, Merchant)],
        "terminals": [r.to_doc() for r in records if isinstance(r, Terminal)],
        "cards": [card_view(c) for c in cards],
    }


def _list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name, [])
    if not isinstance(value, list):
        raise BadRequestError(f"{name}: must be a list")
    return value


async def listing(kci: Kci, request: web.Request, body: Any) -> Any:
    kind = request.match_info["kind"]
    tables: dict[str, dict[str, Any]] = {
        "partners": kci.store.partners,
        "merchants": kci.store.merchants,
        "terminals": kci.store.terminals,
        "cards": kci.store.cards,
    }
    if kind not in tables:
        raise web.HTTPNotFound()
    if kind == "cards":
        return [card_view(c) for c in kci.store.cards.values()]
    return [r.to_doc() for r in tables[kind].values()]


async def get_card(kci: Kci, request: web.Request, body: Any) -> Any:
    card = kci.service.card(request.match_info["card_no"])
    return card_view(card)


async def update_card(kci: Kci, request: web.Request, body: Any) -> Any:
    card = kci.service.card(request.match_info["card_no"])
    if not isinstance(body, dict) or not set(body) <= {"status", "expires"}:
        raise BadRequestError("card update: body may hold status and expires only")
    if "status" in body:
        if body["status"] not in set(CardStatus):
            raise BadRequestError(f"status: one of {', '.join(CardStatus)}")
        card.status = body["status"]
    if "expires" in body:
        if not isinstance(body["expires"], str):
            raise BadRequestError("expires: must be YYYY-MM-DD")
        _check_date(body["expires"], "expires")
        card.expires = body["expires"]
    kci.store.put(card)
    return card_view(card)


async def reset(kci: Kci, request: web.Request, body: Any) -> Any:
    card_no = body.get("card_no") if isinstance(body, dict) else None
    if card_no is not None:
        kci.service.card(card_no)
        kci.store.reset_card(card_no)
        return {"reset": card_no}
    kci.store.reset()
    kci.faults.clear()
    kci.journal.clear()
    return {"reset": "all"}


async def limits(kci: Kci, request: web.Request, body: Any) -> Any:
    if request.method == "POST":
        if not isinstance(body, dict):
            raise BadRequestError("limits: body must be an object")
        kci.service.limits = kci.service.limits.updated(body)
    return kci.service.limits.as_dict()


async def reservations(kci: Kci, request: web.Request, body: Any) -> Any:
    q = request.query
    status = q.get("status")
    if status is not None and status not in set(ReservationStatus):
        raise BadRequestError(f"status: one of {', '.join(ReservationStatus)}")
    items = kci.store.card_reservations(q["card_no"]) if "card_no" in q else iter(kci.store.reservations.values())
    out = []
    for res in items:
        kci.service.refresh(res)
        if status is None or res.status == status:
            out.append(kci.service.view(res) | {"attempts": res.attempts, "write": res.write and res.write.to_doc()})
    return out


async def sessions(kci: Kci, request: web.Request, body: Any) -> Any:
    card_no = request.query.get("card_no")
    return [
        {k: v for k, v in s.to_doc().items() if k not in ("host", "nonce")}
        for s in kci.store.sessions.values()
        if card_no is None or s.card_no == card_no
    ]


async def ledger(kci: Kci, request: web.Request, body: Any) -> Any:
    card_no = request.query.get("card_no")
    return [e.to_doc() | {"time_text": fmt(e.time)} for e in kci.store.ledger if card_no in (None, e.card_no)]


async def do_reconcile(kci: Kci, request: web.Request, body: Any) -> Any:
    if isinstance(body, dict):
        body = body.get("cards")
    return reconcile(kci.store, parse_reports(body))


def _int_query(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequestError(f"{name}: must be an integer") from exc


async def journal(kci: Kci, request: web.Request, body: Any) -> Any:
    if request.method == "DELETE":
        kci.journal.clear()
        return {"cleared": True}
    if request.method == "POST":
        if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            raise BadRequestError('journal: body must be {"enabled": true|false}')
        kci.journal.enabled = body["enabled"]
        return {"enabled": kci.journal.enabled}
    q = request.query
    return {
        "enabled": kci.journal.enabled,
        "entries": kci.journal.query(
            card_no=q.get("card_no"),
            session_id=q.get("session_id"),
            operation=q.get("operation"),
            step=_int_query(request, "step"),
            limit=_int_query(request, "limit"),
        ),
    }


async def faults(kci: Kci, request: web.Request, body: Any) -> Any:
    fault_id = request.match_info.get("fault_id")
    if request.method == "POST":
        return kci.faults.add(body).as_dict()
    if request.method == "DELETE":
        if fault_id is None:
            kci.faults.clear()
            return {"removed": "all"}
        if not kci.faults.remove(fault_id):
            raise BadRequestError(f"fault {fault_id} does not exist")
        return {"removed": fault_id}
    return [f.as_dict() for f in kci.faults.faults.values()]


def _parse_time(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        for parse in (
            lambda v: datetime.strptime(v, "%Y-%m-%d %H:%M:%S").replace(tzinfo=WIB),
            datetime.fromisoformat,
        ):
            try:
                when = parse(value)
            except ValueError:
                continue
            return (when if when.tzinfo else when.replace(tzinfo=WIB)).timestamp()
    raise BadRequestError("clock.set: epoch seconds, 'YYYY-MM-DD HH:MM:SS' (WIB) or ISO 8601")


async def clock(kci: Kci, request: web.Request, body: Any) -> Any:
    if request.method == "POST":
        if not isinstance(body, dict) or not ({"advance", "set"} & set(body)):
            raise BadRequestError('clock: body must be {"advance": seconds} or {"set": time}')
        if "advance" in body:
            step = body["advance"]
            if not isinstance(step, int | float) or isinstance(step, bool):
                raise BadRequestError("clock.advance: must be a number of seconds")
            kci.clock.advance(float(step))
        else:
            kci.clock.set(_parse_time(body["set"]))
        kci.store.set_meta("clock_offset", kci.clock.offset)
    now = kci.clock.time()
    return {"now": now, "local": fmt(now), "offset": kci.clock.offset}


async def summary(kci: Kci, request: web.Request, body: Any) -> Any:
    s = kci.store
    return {
        "partners": len(s.partners),
        "merchants": len(s.merchants),
        "terminals": len(s.terminals),
        "cards": len(s.cards),
        "reservations": len(s.reservations),
        "sessions": len(s.sessions),
        "ledger": len(s.ledger),
        "faults": len(kci.faults.faults),
        "journal": kci.journal.enabled,
        "persistent": s.persistent,
        "limits": kci.service.limits.as_dict(),
        "now": fmt(kci.clock.time()),
    }


async def metrics(request: web.Request) -> web.Response:
    body = request.app[KCI].metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/", wrap(summary))
    r.add_post(f"{PREFIX}/seed", wrap(seed))
    r.add_get(f"{PREFIX}/{{kind:partners|merchants|terminals|cards}}", wrap(listing))
    r.add_get(f"{PREFIX}/cards/{{card_no}}", wrap(get_card))
    r.add_post(f"{PREFIX}/cards/{{card_no}}", wrap(update_card))
    r.add_post(f"{PREFIX}/reset", wrap(reset))
    r.add_get(f"{PREFIX}/limits", wrap(limits))
    r.add_post(f"{PREFIX}/limits", wrap(limits))
    r.add_get(f"{PREFIX}/reservations", wrap(reservations))
    r.add_get(f"{PREFIX}/sessions", wrap(sessions))
    r.add_get(f"{PREFIX}/ledger", wrap(ledger))
    r.add_post(f"{PREFIX}/reconcile", wrap(do_reconcile))
    for method in ("GET", "POST", "DELETE"):
        r.add_route(method, f"{PREFIX}/journal", wrap(journal))
        r.add_route(method, f"{PREFIX}/faults", wrap(faults))
    r.add_delete(f"{PREFIX}/faults/{{fault_id}}", wrap(faults))
    r.add_get(f"{PREFIX}/clock", wrap(clock))
    r.add_post(f"{PREFIX}/clock", wrap(clock))
    r.add_get("/metrics", metrics)
