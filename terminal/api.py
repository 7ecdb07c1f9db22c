"""The backend's `/topup-kci` API as the frontend sees it: requests per step and parsed answers.

The one place where the terminal builds request bodies and reads response JSON
(``{"response": {"code", "message", "latency"}, "data": {...}}``, the seed's envelope).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from .errors import ProtocolViolation

PREFIX = "/topup-kci"


class Endpoint(StrEnum):
    CARD_CHECK = "card-check"
    PENDING = "pending"
    UPDATE = "update"
    CONFIRM = "confirm"


_PATHS: dict[Endpoint, str] = {e: f"{PREFIX}/{e.value}" for e in Endpoint}
_NAMES: dict[tuple[Endpoint, int | None], str] = {
    (e, step): e.value if step is None else f"{e.value} {step}" for e in Endpoint for step in (None, *range(1, 8))
}
"""Paths and step names built once: a load generator asks for them several times per request."""


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One call to the backend. ``name`` is stable per step (``update 5``), for reports and Locust."""

    endpoint: Endpoint
    body: dict[str, Any]
    step: int | None = None

    @property
    def path(self) -> str:
        return _PATHS[self.endpoint]

    @property
    def name(self) -> str:
        name = _NAMES.get((self.endpoint, self.step))
        if name is None:
            return self.endpoint.value if self.step is None else f"{self.endpoint.value} {self.step}"
        return name


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """A parsed answer: the envelope's code and message, and its ``data`` object."""

    http_status: int
    code: int
    message: str
    data: dict[str, Any]
    latency: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.code == 200

    @classmethod
    def parse(cls, http_status: int, body: Any, what: str) -> Self:
        """Read the seed's envelope; anything else raises :class:`ProtocolViolation` naming the field."""
        if not isinstance(body, dict):
            raise ProtocolViolation(f"{what}: HTTP {http_status}, body is not a JSON object")
        response = body.get("response")
        if not isinstance(response, dict):
            raise ProtocolViolation(f"{what}: HTTP {http_status}, 'response' object missing")
        code = response.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            raise ProtocolViolation(f"{what}: response.code must be an integer, got {code!r}")
        message = response.get("message", "")
        latency = response.get("latency")
        data = body.get("data")
        return cls(
            http_status,
            code,
            message if isinstance(message, str) else str(message),
            data if isinstance(data, dict) else {},
            float(latency) if isinstance(latency, int | float) and not isinstance(latency, bool) else None,
            body,
        )


@dataclass(frozen=True, slots=True)
class CardCommand:
    """The nested ``data`` of a step that asks the frontend to run a command on the card."""

    command: bytes
    session_id: str
    sequence_data: str

    @classmethod
    def from_response(cls, resp: ApiResponse, what: str) -> Self:
        nested = resp.data.get("data")
        if not isinstance(nested, dict):
            raise ProtocolViolation(f"{what}: data.data (the card command) missing")
        command, session_id = nested.get("command"), nested.get("session_id")
        sequence_data = nested.get("sequence_data") or ""
        if not isinstance(command, str) or not command:
            raise ProtocolViolation(f"{what}: data.data.command missing")
        try:
            raw = bytes.fromhex(command)
        except ValueError as exc:
            raise ProtocolViolation(f"{what}: data.data.command is not hex: {command[:40]!r}") from exc
        command_len = nested.get("command_len")
        if command_len is not None and command_len != len(raw):
            raise ProtocolViolation(f"{what}: command_len {command_len} but the command has {len(raw)} bytes")
        if not isinstance(session_id, str) or not session_id:
            raise ProtocolViolation(f"{what}: data.data.session_id missing")
        if not isinstance(sequence_data, str):
            raise ProtocolViolation(f"{what}: data.data.sequence_data must be a string")
        return cls(raw, session_id, sequence_data)


def _int(value: Any, what: str) -> int:
    """Integers may arrive as JSON numbers or numeric strings (the seed's balance is a string)."""
    if isinstance(value, bool):
        raise ProtocolViolation(f"{what} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ProtocolViolation(f"{what} must be an integer, got {value!r}")


@dataclass(frozen=True, slots=True)
class CardCheckResult:
    card_no: str
    account_status: str
    balance: int
    history: tuple[dict[str, Any], ...]

    @classmethod
    def from_response(cls, resp: ApiResponse) -> Self:
        info = resp.data.get("card_info_data")
        if not isinstance(info, dict):
            raise ProtocolViolation("card-check 3: data.card_info_data missing")
        history = info.get("history", [])
        return cls(
            str(info.get("card_number") or resp.data.get("card_no", "")),
            str(resp.data.get("account_status", "")),
            _int(info.get("balance"), "card-check 3: card_info_data.balance"),
            tuple(h for h in history if isinstance(h, dict)) if isinstance(history, list) else (),
        )


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``/pending`` answered: a new reservation, an open one to resume, or a loaded one to confirm."""

    reservation_number: str
    reff_no: str
    amount: int
    suspect: bool
    pending_balance: int | None
    status: str = ""
    session_id: str | None = None
    """Set with ``status`` LOADED: the load session to confirm (docs/backend-api.md)."""
    load_balance_number: str | None = None
    balance: int | None = None

    @property
    def awaits_confirmation(self) -> bool:
        return self.status == "LOADED" and bool(self.session_id) and self.balance is not None

    @classmethod
    def from_response(cls, resp: ApiResponse) -> Self:
        d = resp.data
        number = d.get("reservation_number")
        if not isinstance(number, str) or not number:
            raise ProtocolViolation("pending: data.reservation_number missing")
        pending, balance = d.get("pending_balance"), d.get("balance")
        session_id, lbn = d.get("session_id"), d.get("load_balance_number")
        return cls(
            number,
            str(d.get("reff_no", "")),
            _int(d.get("amount"), "pending: data.amount"),
            bool(d.get("suspect_status", False)),
            None if pending is None else _int(pending, "pending: data.pending_balance"),
            str(d.get("status", "")),
            session_id if isinstance(session_id, str) and session_id else None,
            lbn if isinstance(lbn, str) and lbn else None,
            None if balance is None else _int(balance, "pending: data.balance"),
        )


@dataclass(frozen=True, slots=True)
class Confirmation:
    status: str
    last_balance: int
    prev_balance: int | None
    activated_balance: int
    reservation_number: str
    load_balance_number: str
    reff_no: str

    @classmethod
    def from_response(cls, resp: ApiResponse) -> Self:
        d = resp.data
        prev = d.get("prev_balance")
        return cls(
            str(d.get("status", "")),
            _int(d.get("last_balance"), "confirm: data.last_balance"),
            None if prev is None else _int(prev, "confirm: data.prev_balance"),
            _int(d.get("activated_balance"), "confirm: data.activated_balance"),
            str(d.get("reservation_number", "")),
            str(d.get("load_balance_number", "")),
            str(d.get("reff_no", "")),
        )
