"""The frontend's part of the protocol as sans-I/O generators.

A flow yields what it needs done: an :class:`~terminal.api.ApiRequest` (answered with an
:class:`~terminal.api.ApiResponse`) or a :class:`CardExchange` (answered with the card's bytes).
Drivers (:mod:`terminal.terminal`: sync, async, Locust) perform the I/O; the order of calls, which
parameters each step needs, and what is carried from one step to the next (``session_id``,
``sequence_data``, the balance) live here once.

    card-check 1 -> card -> card-check 2 -> card -> card-check 3
    pending
    update 1 -> card -> update 2 -> ... -> card -> update 7      (update 5's command is the write)
    confirm
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from .api import (
    ApiRequest,
    ApiResponse,
    CardCheckResult,
    CardCommand,
    Confirmation,
    Endpoint,
    Reservation,
)
from .errors import BackendUnreachable, ProtocolViolation, ReaderError, StepFailed

T = TypeVar("T")

WRITE_STEP = 5
"""The update step whose card command is the write: its answer decides whether money moved."""


@dataclass(frozen=True, slots=True)
class CardExchange:
    """Run ``frame`` on the card. ``commit`` marks the write, whose lost answer leaves the outcome unknown."""

    frame: bytes
    step: str
    commit: bool = False


Action = ApiRequest | CardExchange
Flow = Generator[Action, Any, T]


@dataclass(frozen=True, slots=True)
class Identity:
    card_no: str
    tid: str
    mid: str

    def body(self, **extra: Any) -> dict[str, Any]:
        return {"card_no": self.card_no, "tid": self.tid, "mid": self.mid, **extra}


@dataclass(frozen=True, slots=True)
class UpdateResult:
    session_id: str
    load_balance_number: str
    balance: int
    prev_balance: int


@dataclass(slots=True)
class Progress:
    """What a top-up has reached; a flow updates it as it goes, so a failure can say where it stopped."""

    balance_before: int | None = None
    reservation: Reservation | None = None
    session_id: str | None = None
    write_sent: bool = False
    update: UpdateResult | None = None
    confirmation: Confirmation | None = None


def _checked(resp: ApiResponse, request: ApiRequest) -> ApiResponse:
    if not resp.ok:
        raise StepFailed(request.name, resp.code, resp.message)
    return resp


def call(request: ApiRequest) -> Flow[ApiResponse]:
    """One backend call whose answer must be code 200."""
    resp: ApiResponse = yield request
    return _checked(resp, request)


UNKNOWN_OUTCOME_CODES = frozenset({500, 502, 504})


def call_again_if_lost(request: ApiRequest) -> Flow[ApiResponse]:
    """A call whose answer may be lost after the backend acted (update 7: KCI verified the card, the answer
    did not come back) is sent once more; the backend answers a repeat without acting twice."""
    try:
        return (yield from call(request))
    except StepFailed as exc:
        if exc.code not in UNKNOWN_OUTCOME_CODES:
            raise
    except BackendUnreachable:
        pass
    return (yield from call(request))


def card_check(who: Identity) -> Flow[CardCheckResult]:
    resp = yield from call(ApiRequest(Endpoint.CARD_CHECK, who.body(step=1), 1))
    cmd = CardCommand.from_response(resp, "card-check 1")
    answer: bytes = yield CardExchange(cmd.command, "card-check 1")
    body = who.body(step=2, card_resp=answer.hex(), session_id=cmd.session_id)
    resp = yield from call(ApiRequest(Endpoint.CARD_CHECK, body, 2))
    cmd = CardCommand.from_response(resp, "card-check 2")
    answer = yield CardExchange(cmd.command, "card-check 2")
    body = who.body(step=3, card_resp=answer.hex(), session_id=cmd.session_id, sequence_data=cmd.sequence_data)
    resp = yield from call(ApiRequest(Endpoint.CARD_CHECK, body, 3))
    return CardCheckResult.from_response(resp)


def pending(who: Identity, amount: int, invoice_no: str | None = None) -> Flow[Reservation]:
    body = who.body(amount=amount) if invoice_no is None else who.body(amount=amount, invoice_no=invoice_no)
    resp = yield from call(ApiRequest(Endpoint.PENDING, body))
    return Reservation.from_response(resp)


def update(who: Identity, prev_balance: int, progress: Progress | None = None) -> Flow[UpdateResult]:
    progress = progress or Progress()
    resp = yield from call(ApiRequest(Endpoint.UPDATE, who.body(step=1, prev_balance=prev_balance), 1))
    cmd = CardCommand.from_response(resp, "update 1")
    progress.session_id = cmd.session_id
    for step in range(2, 8):
        commit = step - 1 == WRITE_STEP
        progress.write_sent = progress.write_sent or commit
        answer: bytes = yield CardExchange(cmd.command, f"update {step - 1}", commit=commit)
        body = who.body(step=step, balance=prev_balance, card_resp=answer.hex(), session_id=cmd.session_id)
        if step >= 3:
            body["sequence_data"] = cmd.sequence_data
        request = ApiRequest(Endpoint.UPDATE, body, step)
        if step == 7:
            resp = yield from call_again_if_lost(request)
        else:
            resp = yield from call(request)
        if step < 7:
            cmd = CardCommand.from_response(resp, f"update {step}")
    number = resp.data.get("load_balance_number")
    if not isinstance(number, str) or not number:
        raise ProtocolViolation("update 7: data.load_balance_number missing")
    balance = resp.data.get("balance")
    if not isinstance(balance, int) or isinstance(balance, bool):
        raise ProtocolViolation(f"update 7: data.balance must be an integer, got {balance!r}")
    return UpdateResult(cmd.session_id, number, balance, prev_balance)


def confirm(who: Identity, session_id: str, last_balance: int) -> Flow[Confirmation]:
    body = who.body(last_balance=last_balance, session_id=session_id)
    resp = yield from call(ApiRequest(Endpoint.CONFIRM, body))
    return Confirmation.from_response(resp)


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    """The backend refused a step (``code``); nothing was written to the card."""
    CARD_REMOVED = "card_removed"
    """The card left before the write: nothing moved; the reservation stays open for the next attempt."""
    SUSPECT = "suspect"
    """The write was sent and its outcome is unknown: run the top-up again to resume it."""
    UNCONFIRMED = "unconfirmed"
    """The card was loaded (update 7 passed) but confirm did not succeed: confirm again."""
    ERROR = "error"
    """The backend was unreachable or broke the protocol."""


@dataclass(slots=True)
class TopupResult:
    outcome: Outcome
    card_no: str
    amount: int
    progress: Progress
    failed_step: str | None = None
    code: int | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    @property
    def balance_before(self) -> int | None:
        return self.progress.balance_before

    @property
    def balance_after(self) -> int | None:
        c = self.progress.confirmation
        return None if c is None else c.last_balance

    @property
    def reservation_number(self) -> str | None:
        r = self.progress.reservation
        return None if r is None else r.reservation_number

    @property
    def load_balance_number(self) -> str | None:
        u = self.progress.update
        return None if u is None else u.load_balance_number


def topup(who: Identity, amount: int, *, invoice_no: str | None = None) -> Flow[TopupResult]:
    """card-check, pending, update and confirm; never raises for a refused step or a lost card.

    The same flow resumes an interrupted top-up: ``/pending`` returns the card's open (or suspect)
    reservation, and update recovers it.
    """
    progress = Progress()

    def result(outcome: Outcome, step: str | None = None, code: int | None = None, message: str = "") -> TopupResult:
        return TopupResult(outcome, who.card_no, amount, progress, step, code, message)

    try:
        info = yield from card_check(who)
        progress.balance_before = info.balance
        reservation = progress.reservation = yield from pending(who, amount, invoice_no)
        if reservation.awaits_confirmation and reservation.session_id and reservation.balance is not None:
            # An earlier attempt loaded the card and never confirmed: confirm that one, load nothing new.
            progress.update = UpdateResult(
                reservation.session_id, reservation.load_balance_number or "", reservation.balance, info.balance
            )
        else:
            progress.update = yield from update(who, info.balance, progress)
        progress.confirmation = yield from confirm(who, progress.update.session_id, progress.update.balance)
    except StepFailed as exc:
        return result(_interrupted(progress, Outcome.FAILED), exc.step, exc.code, exc.message)
    except ReaderError as exc:
        return result(_interrupted(progress, Outcome.CARD_REMOVED), exc.step, None, str(exc))
    except (ProtocolViolation, BackendUnreachable) as exc:
        return result(_interrupted(progress, Outcome.ERROR), exc.step, None, str(exc))
    return result(Outcome.SUCCESS)


def _interrupted(progress: Progress, otherwise: Outcome) -> Outcome:
    """Where money may have moved, say so: loaded but unconfirmed, or a write of unknown outcome."""
    if progress.update is not None:
        return Outcome.UNCONFIRMED
    if progress.write_sent:
        return Outcome.SUSPECT
    return otherwise
