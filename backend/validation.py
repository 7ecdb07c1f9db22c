"""Request parsing: a body (JSON object or form fields) becomes one typed, frozen request value.

Every problem raises :class:`backend.errors.ParameterInvalid` naming the parameter. Integers may arrive
as JSON numbers or as digit strings (form bodies carry only strings); booleans and fractions are refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ParameterInvalid

CARD_CHECK_STEPS = range(1, 4)
UPDATE_STEPS = range(1, 8)
MAX_AMOUNT = 100_000_000
"""Far above any KCI limit; refuses absurd numbers before they reach KCI."""

_CARD_NO = re.compile(r"^[0-9]{16}$")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")
_SESSION = re.compile(r"^[0-9a-fA-F]{32}$")
_SEQUENCE = re.compile(r"^[\x21-\x7e]{1,4096}$")
_INVOICE = re.compile(r"^[\x20-\x7e]{1,64}$")
_RESERVATION = re.compile(r"^[A-Za-z0-9]{1,40}$")
_INTEGER = re.compile(r"^[+-]?[0-9]{1,15}$")
MAX_CARD_RESP_HEX = 2 * 512


def _text(params: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise ParameterInvalid(name, "required")
        return None
    if not isinstance(value, str):
        raise ParameterInvalid(name, f"must be a string, got {type(value).__name__}")
    return value.strip()


def _required_text(params: Mapping[str, Any], name: str) -> str:
    value = _text(params, name)
    assert value is not None
    return value


def _integer(params: Mapping[str, Any], name: str, *, default: int | None = None) -> int:
    value = params.get(name)
    if value is None or value == "":
        if default is None:
            raise ParameterInvalid(name, "required")
        return default
    if isinstance(value, bool):
        raise ParameterInvalid(name, "must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    raise ParameterInvalid(name, f"must be an integer, got {value!r}")


def card_no(params: Mapping[str, Any]) -> str:
    value = _required_text(params, "card_no")
    if not _CARD_NO.match(value):
        raise ParameterInvalid("card_no", "must be exactly 16 digits")
    return value


def terminal_id(params: Mapping[str, Any], name: str) -> str:
    value = _required_text(params, name)
    if not _ID.match(value):
        raise ParameterInvalid(name, "must be 1-32 characters of A-Z a-z 0-9 _ . -")
    return value


def step(params: Mapping[str, Any], allowed: range) -> int:
    value = _integer(params, "step", default=1)
    if value not in allowed:
        raise ParameterInvalid("step", f"must be {allowed.start}-{allowed.stop - 1}, got {value}")
    return value


def amount(params: Mapping[str, Any]) -> int:
    value = _integer(params, "amount")
    if value <= 0:
        raise ParameterInvalid("amount", f"must be a positive integer (rupiah), got {value}")
    if value > MAX_AMOUNT:
        raise ParameterInvalid("amount", f"must not exceed {MAX_AMOUNT}")
    return value


def balance(params: Mapping[str, Any], name: str) -> int:
    value = _integer(params, name)
    if value < 0:
        raise ParameterInvalid(name, f"must be a non-negative integer (rupiah), got {value}")
    if value > MAX_AMOUNT:
        raise ParameterInvalid(name, f"must not exceed {MAX_AMOUNT}")
    return value


def card_resp(params: Mapping[str, Any]) -> str:
    value = _required_text(params, "card_resp")
    if not _HEX.match(value):
        raise ParameterInvalid("card_resp", "must be the card's answer as an even number of hex digits")
    if len(value) > MAX_CARD_RESP_HEX:
        raise ParameterInvalid("card_resp", f"longer than {MAX_CARD_RESP_HEX // 2} bytes")
    return value.lower()


def session_id(params: Mapping[str, Any]) -> str:
    value = _required_text(params, "session_id")
    if not _SESSION.match(value):
        raise ParameterInvalid("session_id", "must be 32 hex characters")
    return value.lower()


def sequence_data(params: Mapping[str, Any]) -> str:
    value = _required_text(params, "sequence_data")
    if not _SEQUENCE.match(value):
        raise ParameterInvalid("sequence_data", "must be 1-4096 printable ASCII characters, as KCI gave it")
    return value


@dataclass(frozen=True, slots=True)
class Request:
    card_no: str
    tid: str
    mid: str

    def fingerprint(self) -> str:
        """SHA-256 over the parsed request, so a JSON and a form retry of the same step match."""
        payload = {"kind": type(self).__name__, **asdict(self)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CardCheckRequest(Request):
    step: int
    card_resp: str | None = None
    session_id: str | None = None
    sequence_data: str | None = None


@dataclass(frozen=True, slots=True)
class PendingRequest(Request):
    amount: int
    invoice_no: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateRequest(Request):
    step: int
    prev_balance: int | None = None
    balance: int | None = None
    card_resp: str | None = None
    session_id: str | None = None
    sequence_data: str | None = None
    reservation_number: str | None = None


@dataclass(frozen=True, slots=True)
class ConfirmRequest(Request):
    last_balance: int
    session_id: str


def _common(params: Mapping[str, Any]) -> tuple[str, str, str]:
    return card_no(params), terminal_id(params, "tid"), terminal_id(params, "mid")


def parse_card_check(params: Mapping[str, Any]) -> CardCheckRequest:
    card, tid, mid = _common(params)
    n = step(params, CARD_CHECK_STEPS)
    if n == 1:
        return CardCheckRequest(card, tid, mid, n)
    return CardCheckRequest(
        card,
        tid,
        mid,
        n,
        card_resp=card_resp(params),
        session_id=session_id(params),
        sequence_data=sequence_data(params) if n == 3 else None,
    )


def parse_pending(params: Mapping[str, Any]) -> PendingRequest:
    card, tid, mid = _common(params)
    value = amount(params)
    invoice = _text(params, "invoice_no", required=False)
    if invoice is not None and not _INVOICE.match(invoice):
        raise ParameterInvalid("invoice_no", "must be 1-64 printable ASCII characters")
    return PendingRequest(card, tid, mid, value, invoice)


def parse_update(params: Mapping[str, Any]) -> UpdateRequest:
    card, tid, mid = _common(params)
    n = step(params, UPDATE_STEPS)
    reservation = _text(params, "reservation_number", required=False)
    if reservation is not None and not _RESERVATION.match(reservation):
        raise ParameterInvalid("reservation_number", "must be 1-40 letters or digits")
    if n == 1:
        return UpdateRequest(
            card, tid, mid, n, prev_balance=balance(params, "prev_balance"), reservation_number=reservation
        )
    return UpdateRequest(
        card,
        tid,
        mid,
        n,
        balance=balance(params, "balance"),
        card_resp=card_resp(params),
        session_id=session_id(params),
        sequence_data=sequence_data(params) if n >= 3 else None,
        reservation_number=reservation,
    )


def parse_confirm(params: Mapping[str, Any]) -> ConfirmRequest:
    card, tid, mid = _common(params)
    return ConfirmRequest(card, tid, mid, last_balance=balance(params, "last_balance"), session_id=session_id(params))
