"""The top-up flow: what each ``/topup-kci`` call asks of KCI and records, idempotent under retries.

Idempotency. Requests are grouped in *flows* by card, tid and mid: ``card-check`` steps form one flow,
``pending`` + ``update`` steps another. For each flow the store keeps the last successful answer with
the SHA-256 of the parsed request. A request equal to that one (same endpoint, step and parameters) gets
the stored answer again and nothing is sent to KCI. Requests that open a flow and carry no session
(card-check 1, pending, update 1) are replayed only within ``replay_window`` seconds; later steps carry a
KCI session and are replayed as long as they are the flow's last answer. Confirmations are kept per
session, without time limit: a second identical confirm returns the first one's success. Requests of one
flow are serialised by a lock, so a retry that overtakes its original waits for it and then replays it.

Suspect. Before update 5 (the card write) is sent to KCI the transaction is marked ``IN_PROGRESS`` and
suspect, and it stays suspect until update 7 verifies the new balance: a lost answer, a KCI failure, a
crash or a frontend that never comes back leave it suspect, never failed nor successful. KCI's own
suspect flag comes back through ``/pending``, which returns the open reservation for recovery.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .errors import Code, KciProtocolError, KciRejected, KciUnavailable, SessionOtherCard, SessionUnknown
from .kci_client import KciClient
from .store import AnswerRecord, Status, Store, StoredAnswer, Transaction
from .validation import CardCheckRequest, ConfirmRequest, PendingRequest, Request, UpdateRequest

log = logging.getLogger("backend.service")

PROVIDER = "KCI-KMT"
WRITE_STEP = 5
LAST_UPDATE_STEP = 7


@dataclass(frozen=True, slots=True)
class Outcome:
    """A successful answer: the envelope's message and data, and whether it was replayed from the store."""

    message: str
    data: dict[str, Any]
    replayed: bool = False


def _field(data: dict[str, Any], name: str, kind: type, operation: str) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise KciProtocolError(f"KCI {operation}: field {name!r} missing or not {kind.__name__}")
    return value


def _text(data: dict[str, Any], name: str, operation: str) -> str:
    value: str = _field(data, name, str, operation)
    return value


def _number(data: dict[str, Any], name: str, operation: str) -> int:
    value: int = _field(data, name, int, operation)
    return value


def _optional_step(data: dict[str, Any], operation: str) -> int | None:
    value = data.get("next_step")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise KciProtocolError(f"KCI {operation}: next_step is not an integer")
    return value


def _command_block(data: dict[str, Any], operation: str) -> dict[str, Any]:
    """The seed's nested ``data``: the command for the card, as KCI produced it."""
    command = _text(data, "command", operation)
    command_len = data.get("command_len")
    if not isinstance(command_len, int) or isinstance(command_len, bool):
        command_len = len(command) // 2
    sequence = data.get("sequence_data")
    return {
        "command_len": command_len,
        "command": command,
        "sequence_data": sequence if isinstance(sequence, str) else "",
        "session_id": _text(data, "session_id", operation),
    }


class TopupService:
    def __init__(
        self, store: Store, kci: KciClient, *, replay_window: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._kci = kci
        self._replay_window = replay_window
        self._clock = clock
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- shared machinery -------------------------------------------------------------------------

    def _lock(self, scope: str) -> asyncio.Lock:
        lock = self._locks.get(scope)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[scope] = lock
        return lock

    @staticmethod
    def _scope(family: str, request: Request) -> str:
        return f"{family}:{request.card_no}:{request.tid}:{request.mid}"

    async def _replay(
        self, scope: str, endpoint: str, step: int, request_hash: str, *, windowed: bool
    ) -> Outcome | None:
        stored = await self._store.last_answer(scope)
        if stored is None or not _matches(stored, endpoint, step, request_hash):
            return None
        if windowed and self._clock() - stored.created_at > self._replay_window:
            return None
        log.info("%s step %d: replaying the stored answer (%s)", endpoint, step, scope)
        return Outcome(stored.message, stored.data, replayed=True)

    async def _remember(self, scope: str, endpoint: str, step: int, request_hash: str, outcome: Outcome) -> Outcome:
        await self._store.save_answer(AnswerRecord(scope, endpoint, step, request_hash, outcome.message, outcome.data))
        return outcome

    async def _commit_step(
        self,
        transaction: Transaction,
        changes: dict[str, Any],
        answer: Callable[[Transaction], Outcome],
        record: tuple[str, str, int, str],
    ) -> Outcome:
        """Build the answer from the state after ``changes`` and write both in one commit."""
        outcome = answer(replace(transaction, **changes))
        scope, endpoint, step, request_hash = record
        await self._store.update_transaction(
            transaction.reff_no,
            answer=AnswerRecord(scope, endpoint, step, request_hash, outcome.message, outcome.data),
            **changes,
        )
        return outcome

    # -- card-check -------------------------------------------------------------------------------

    async def card_check(self, request: CardCheckRequest) -> Outcome:
        scope = self._scope("card-check", request)
        digest = request.fingerprint()
        async with self._lock(scope):
            replay = await self._replay(scope, "card-check", request.step, digest, windowed=request.step == 1)
            if replay is not None:
                return replay
            payload: dict[str, Any] = {
                "card_no": request.card_no,
                "tid": request.tid,
                "mid": request.mid,
                "step": request.step,
            }
            if request.step >= 2:
                log.debug("card-check %d << %s", request.step, request.card_resp)
                payload.update(card_resp=request.card_resp, session_id=request.session_id)
            if request.step == 3:
                payload["sequence_data"] = request.sequence_data
            data = await self._kci.call("card-info", payload)
            outcome = self._card_check_outcome(request, data)
            return await self._remember(scope, "card-check", request.step, digest, outcome)

    @staticmethod
    def _card_check_outcome(request: CardCheckRequest, data: dict[str, Any]) -> Outcome:
        operation = "card-info"
        if request.step < 3:
            block = _command_block(data, operation)
            log.debug("card-check %d >> %s", request.step, block["command"])
            return Outcome(
                f"Inquiry Step {request.step} Success",
                {
                    "provider": PROVIDER,
                    "card_no": request.card_no,
                    "step": request.step,
                    "next_step": _optional_step(data, operation),
                    "data": block,
                },
            )
        history = data.get("history")
        if not isinstance(history, list):
            raise KciProtocolError("KCI card-info: history is not a list")
        card_number = data.get("card_no")
        return Outcome(
            "Inquiry Done",
            {
                "card_no": request.card_no,
                "account_status": _text(data, "account_status", operation),
                "card_info_data": {
                    "balance": str(_number(data, "balance", operation)),
                    "card_number": card_number if isinstance(card_number, str) else request.card_no,
                    "history": history,
                },
                "step": 3,
                "next_step": None,
            },
        )

    # -- pending ----------------------------------------------------------------------------------

    async def pending(self, request: PendingRequest) -> Outcome:
        scope = self._scope("topup", request)
        digest = request.fingerprint()
        async with self._lock(scope):
            replay = await self._replay(scope, "pending", 0, digest, windowed=True)
            if replay is not None:
                return replay
            common = {"card_no": request.card_no, "tid": request.tid, "mid": request.mid}
            checked = await self._kci.call("reservation/check", common)
            reservations = checked.get("reservations")
            if not isinstance(reservations, list) or not all(isinstance(r, dict) for r in reservations):
                raise KciProtocolError("KCI reservation/check: reservations is not a list of objects")
            if reservations:
                outcome = await self._existing_reservation(request, reservations)
            else:
                outcome = await self._unconfirmed_load(request) or await self._new_reservation(request, common)
            return await self._remember(scope, "pending", 0, digest, outcome)

    async def _unconfirmed_load(self, request: PendingRequest) -> Outcome | None:
        """A top-up of this terminal whose write KCI verified but that was never confirmed (update 7's answer
        or confirm was lost): returned, with its session, so the frontend confirms it instead of paying again."""
        candidates = [
            t
            for t in await self._store.transactions(request.card_no)
            if (t.tid, t.mid) == (request.tid, request.mid)
            and t.status in (Status.IN_PROGRESS, Status.LOADED)
            and t.reservation_number
            and t.session_id
        ]
        if not candidates:
            return None
        transaction = candidates[-1]
        loaded = await self._loaded_at_kci(transaction)
        if loaded is None:
            return None
        transaction = await self._store.find_transaction("reff_no", transaction.reff_no) or transaction
        data = _pending_data(transaction)
        data.update(
            resumed=True,
            reservations=[],
            status=Status.LOADED.value,
            session_id=transaction.session_id,
            load_balance_number=transaction.load_balance_number,
            balance=transaction.balance,
        )
        log.info("pending %s: %s is loaded but unconfirmed", request.card_no, transaction.reservation_number)
        return Outcome("Loaded Topup Awaits Confirmation", data)

    async def _loaded_at_kci(self, transaction: Transaction) -> dict[str, Any] | None:
        """Ask KCI whether this transaction's reservation is LOADED; if so record it and return step-7 data."""
        operation = "reservation/inquiry"
        try:
            inquiry = await self._kci.call(operation, {"reservation_number": transaction.reservation_number})
        except (KciRejected, KciUnavailable) as exc:
            log.warning("inquiry of %s failed: %s", transaction.reservation_number, exc)
            return None
        if inquiry.get("status") != Status.LOADED.value or not inquiry.get("load_balance_number"):
            return None
        data = {
            "balance": _number(inquiry, "balance", operation),
            "prev_balance": _number(inquiry, "prev_balance", operation),
            "load_balance_number": _text(inquiry, "load_balance_number", operation),
            "session_id": transaction.session_id,
            "next_step": None,
        }
        await self._store.update_transaction(
            transaction.reff_no,
            step=LAST_UPDATE_STEP,
            status=Status.LOADED,
            suspect=False,
            balance=data["balance"],
            prev_balance=data["prev_balance"],
            load_balance_number=data["load_balance_number"],
        )
        return data

    async def _existing_reservation(self, request: PendingRequest, reservations: list[dict[str, Any]]) -> Outcome:
        operation = "reservation/check"
        # A suspect one first: it must be recovered before anything else can happen on the card.
        chosen = sorted(reservations, key=lambda r: (not bool(r.get("suspect")), str(r.get("trx_time", ""))))[0]
        transaction = await self._adopt(chosen, request, operation)
        summaries = [
            {
                "reservation_number": _text(r, "reservation_number", operation),
                "reff_no": _text(r, "ref_no", operation),
                "amount": _number(r, "amount", operation),
                "status": _text(r, "status", operation),
                "suspect_status": bool(r.get("suspect")),
                "trx_time": r.get("trx_time"),
            }
            for r in reservations
        ]
        data = _pending_data(transaction)
        data.update(resumed=True, reservations=summaries)
        log.info("pending %s: card has reservation %s open", request.card_no, transaction.reservation_number)
        return Outcome("Pending Reservation Exists", data)

    async def _adopt(self, reservation: dict[str, Any], request: Request, operation: str) -> Transaction:
        """The local transaction for a reservation KCI reported, created when this database lacks it."""
        ref_no = _text(reservation, "ref_no", operation)
        number = _text(reservation, "reservation_number", operation)
        transaction = await self._store.find_transaction("reff_no", ref_no)
        if transaction is None:
            transaction = await self._store.find_transaction("reservation_number", number)
        if transaction is None:
            transaction = await self._store.create_transaction(
                request.card_no,
                str(reservation.get("tid") or request.tid),
                str(reservation.get("mid") or request.mid),
                _number(reservation, "amount", operation),
                None,
                reff_no=ref_no,
            )
        kci_status = str(reservation.get("status", ""))
        # KCI calls IN_PROGRESS suspect once its session is gone; a frontend asking for the card again has
        # given that session up, so for it the write's outcome is unknown either way.
        suspect = bool(reservation.get("suspect")) or kci_status == Status.IN_PROGRESS
        status = transaction.status
        if kci_status in {s.value for s in Status} and kci_status not in (Status.NEW, Status.REJECTED):
            status = Status(kci_status)
        changes: dict[str, Any] = {
            "reservation_number": number,
            "status": status,
            "suspect": suspect,
            "amount": _number(reservation, "amount", operation),
        }
        if isinstance(reservation.get("trx_time"), str):
            changes["trx_time"] = reservation["trx_time"]
        if isinstance(reservation.get("prev_balance"), int) and transaction.prev_balance is None:
            changes["prev_balance"] = reservation["prev_balance"]
        return await self._store.update_transaction(transaction.reff_no, **changes)

    async def _new_reservation(self, request: PendingRequest, common: dict[str, Any]) -> Outcome:
        transaction = await self._store.create_transaction(
            request.card_no, request.tid, request.mid, request.amount, request.invoice_no
        )
        payload = {**common, "amount": request.amount, "ref_no": transaction.reff_no}
        try:
            await self._kci.call("reservation/validate", payload)
            created = await self._kci.call("reservation/create", payload)
        except KciRejected as exc:
            await self._store.update_transaction(
                transaction.reff_no, status=Status.REJECTED, last_code=exc.response_code, last_message=str(exc)
            )
            raise
        except KciUnavailable as exc:
            # KCI may or may not hold the reservation: it stays NEW; KCI's check finds it by ref_no later.
            await self._store.update_transaction(transaction.reff_no, last_code=exc.code, last_message=str(exc))
            raise
        operation = "reservation/create"
        transaction = await self._store.update_transaction(
            transaction.reff_no,
            status=Status.PENDING,
            reservation_number=_text(created, "reservation_number", operation),
            trx_time=_text(created, "trx_time", operation),
            amount=_number(created, "amount", operation),
            last_code=int(Code.OK),
            last_message=None,
        )
        data = _pending_data(transaction)
        data.update(resumed=False, reservations=[])
        log.info("pending %s: reserved %s as %s", request.card_no, transaction.amount, transaction.reservation_number)
        return Outcome("Pending Balance Success", data)

    # -- update -----------------------------------------------------------------------------------

    async def update(self, request: UpdateRequest) -> Outcome:
        scope = self._scope("topup", request)
        digest = request.fingerprint()
        async with self._lock(scope):
            replay = await self._replay(scope, "update", request.step, digest, windowed=request.step == 1)
            if replay is not None:
                return replay
            record = (scope, "update", request.step, digest)
            if request.step == 1:
                return await self._update_first(request, record)
            return await self._update_next(request, record)

    async def _update_first(self, request: UpdateRequest, record: tuple[str, str, int, str]) -> Outcome:
        operation = "load-balance"
        payload: dict[str, Any] = {
            "card_no": request.card_no,
            "tid": request.tid,
            "mid": request.mid,
            "step": 1,
            "prev_balance": request.prev_balance,
        }
        if request.reservation_number is not None:
            payload["reservation_number"] = request.reservation_number
        data = await self._kci.call(operation, payload)
        number = _text(data, "reservation_number", operation)
        transaction = await self._store.find_transaction("reservation_number", number)
        if transaction is None:
            inquiry = await self._kci.call("reservation/inquiry", {"reservation_number": number})
            transaction = await self._adopt(inquiry, request, "reservation/inquiry")
        block = _command_block(data, operation)
        changes: dict[str, Any] = {
            "session_id": block["session_id"],
            "step": 1,
            "prev_balance": request.prev_balance,
            "balance": request.prev_balance,
            "status": transaction.status if transaction.suspect else Status.LOADING,
            "last_code": int(Code.OK),
            "last_message": None,
        }
        return await self._commit_step(
            transaction,
            changes,
            lambda after: self._update_outcome(request, data, block, after, request.prev_balance),
            record,
        )

    async def _update_next(self, request: UpdateRequest, record: tuple[str, str, int, str]) -> Outcome:
        operation = "load-balance"
        transaction = await self._session_transaction(request, request.session_id)
        was_suspect = transaction.suspect
        if request.step == WRITE_STEP and not was_suspect:
            # Write-ahead: from here on the card may be written, and nobody may call this a failure.
            transaction = await self._store.update_transaction(
                transaction.reff_no, status=Status.IN_PROGRESS, suspect=True
            )
        payload: dict[str, Any] = {
            "card_no": request.card_no,
            "tid": request.tid,
            "mid": request.mid,
            "step": request.step,
            "balance": request.balance,
            "card_resp": request.card_resp,
            "session_id": request.session_id,
        }
        if request.sequence_data is not None:
            payload["sequence_data"] = request.sequence_data
        if request.reservation_number is not None:
            payload["reservation_number"] = request.reservation_number
        log.debug("update %d << %s", request.step, request.card_resp)
        try:
            data = await self._kci.call(operation, payload)
        except (KciRejected, KciUnavailable) as exc:
            recovered = await self._loaded_at_kci(transaction) if request.step == LAST_UPDATE_STEP else None
            if recovered is None:
                await self._update_failed(request, transaction, was_suspect, exc)
                raise
            log.info("update 7 for %s: KCI had verified the load already", transaction.reff_no)
            data = recovered
        if request.step < LAST_UPDATE_STEP:
            block = _command_block(data, operation)
            changes: dict[str, Any] = {
                "step": request.step,
                "balance": request.balance,
                "last_code": int(Code.OK),
                "last_message": None,
            }
            return await self._commit_step(
                transaction,
                changes,
                lambda after: self._update_outcome(request, data, block, after, request.balance),
                record,
            )
        new_balance = _number(data, "balance", operation)
        changes = {
            "step": LAST_UPDATE_STEP,
            "status": Status.LOADED,
            "suspect": False,
            "balance": new_balance,
            "prev_balance": _number(data, "prev_balance", operation),
            "load_balance_number": _text(data, "load_balance_number", operation),
            "last_code": int(Code.OK),
            "last_message": None,
        }
        final_block = {
            "command_len": 0,
            "command": "",
            "sequence_data": "",
            "session_id": _text(data, "session_id", operation),
        }

        def loaded(after: Transaction) -> Outcome:
            outcome = self._update_outcome(request, data, final_block, after, new_balance)
            outcome.data.update(
                load_balance_number=after.load_balance_number,
                prev_balance=after.prev_balance,
                status=Status.LOADED.value,
            )
            return outcome

        return await self._commit_step(transaction, changes, loaded, record)

    async def _update_failed(
        self, request: UpdateRequest, transaction: Transaction, was_suspect: bool, exc: KciRejected | KciUnavailable
    ) -> None:
        """Record a refused or unanswered update step; the suspect flag says whether money may have moved."""
        if isinstance(exc, KciUnavailable):
            await self._store.update_transaction(transaction.reff_no, last_code=exc.code, last_message=str(exc))
            if transaction.suspect:
                log.warning("update %d for %s: outcome unknown, left suspect", request.step, transaction.reff_no)
            return
        failure: dict[str, Any] = {"last_code": exc.response_code, "last_message": str(exc)}
        if request.step == WRITE_STEP and not was_suspect and exc.response_code < 500:
            # KCI refused before issuing the write: nothing can have reached the card.
            failure.update(status=Status.LOADING, suspect=False)
        await self._store.update_transaction(transaction.reff_no, **failure)

    async def _session_transaction(self, request: Request, session_id: str | None) -> Transaction:
        if session_id is None:
            raise SessionUnknown("session_id: required")
        transaction = await self._store.find_transaction("session_id", session_id)
        if transaction is None:
            raise SessionUnknown("session_id: not a load session opened through this backend (update step 1)")
        if transaction.card_no != request.card_no:
            raise SessionOtherCard("session_id: the session belongs to another card")
        if (transaction.tid, transaction.mid) != (request.tid, request.mid):
            raise SessionUnknown("session_id: the session belongs to another terminal")
        return transaction

    @staticmethod
    def _update_outcome(
        request: UpdateRequest,
        data: dict[str, Any],
        block: dict[str, Any],
        transaction: Transaction,
        balance: int | None,
    ) -> Outcome:
        if block["command"]:
            log.debug("update %d >> %s", request.step, block["command"])
        return Outcome(
            f"Update Balance Step {request.step} Success",
            {
                "provider": PROVIDER,
                "step": request.step,
                "next_step": _optional_step(data, "load-balance"),
                "data": block,
                "amount": transaction.amount,
                "card_no": request.card_no,
                "balance": balance,
                "reff_no": transaction.reff_no,
                "reservation_number": transaction.reservation_number,
            },
        )

    # -- confirm ----------------------------------------------------------------------------------

    async def confirm(self, request: ConfirmRequest) -> Outcome:
        scope = self._scope("topup", request)
        digest = request.fingerprint()
        async with self._lock(scope):
            stored = await self._store.confirmation(request.session_id)
            if stored is not None and stored.request_hash == digest:
                log.info("confirm %s: replaying the stored success", request.session_id)
                return Outcome(stored.message, stored.data, replayed=True)
            transaction = await self._session_transaction(request, request.session_id)
            payload = {
                "card_no": request.card_no,
                "tid": request.tid,
                "mid": request.mid,
                "session_id": request.session_id,
                "last_balance": request.last_balance,
            }
            try:
                data = await self._kci.call("load-balance/confirm", payload)
            except KciRejected as exc:
                recovered = await self._confirmed_earlier(exc, request, transaction)
                if recovered is None:
                    await self._store.update_transaction(
                        transaction.reff_no, last_code=exc.response_code, last_message=str(exc)
                    )
                    raise
                data = recovered
            operation = "load-balance/confirm"
            outcome = Outcome(
                "Confirm Topup Success",
                {
                    "provider": PROVIDER,
                    "amount": _number(data, "amount", operation),
                    "card_no": request.card_no,
                    "last_balance": _number(data, "last_balance", operation),
                    "prev_balance": _number(data, "prev_balance", operation),
                    "activated_balance": _number(data, "activated_balance", operation),
                    "reservation_number": _text(data, "reservation_number", operation),
                    "load_balance_number": _text(data, "load_balance_number", operation),
                    "reff_no": transaction.reff_no,
                    "status": "SUCCESS",
                },
            )
            await self._store.confirm_transaction(
                transaction.reff_no,
                request.session_id,
                digest,
                outcome.message,
                outcome.data,
                last_balance=outcome.data["last_balance"],
                load_balance_number=outcome.data["load_balance_number"],
                last_code=int(Code.OK),
                last_message=None,
            )
            log.info("confirm %s: %s SUCCESS", transaction.reff_no, outcome.data["load_balance_number"])
            return outcome

    async def _confirmed_earlier(
        self, exc: KciRejected, request: ConfirmRequest, transaction: Transaction
    ) -> dict[str, Any] | None:
        """KCI says "already confirmed" but this database has no answer (lost in a crash): rebuild it."""
        if exc.response_code != Code.ALREADY_CONFIRMED or transaction.reservation_number is None:
            return None
        operation = "reservation/inquiry"
        inquiry = await self._kci.call(operation, {"reservation_number": transaction.reservation_number})
        if inquiry.get("status") != Status.SUCCESS.value:
            return None
        prev_balance = _number(inquiry, "prev_balance", operation)
        amount = _number(inquiry, "amount", operation)
        if prev_balance + amount != request.last_balance:
            return None
        return {
            "amount": amount,
            "last_balance": request.last_balance,
            "prev_balance": prev_balance,
            "activated_balance": amount,
            "reservation_number": _text(inquiry, "reservation_number", operation),
            "load_balance_number": _text(inquiry, "load_balance_number", operation),
        }


def _matches(stored: StoredAnswer, endpoint: str, step: int, request_hash: str) -> bool:
    return stored.endpoint == endpoint and stored.step == step and stored.request_hash == request_hash


def _pending_data(transaction: Transaction) -> dict[str, Any]:
    return {
        "provider": PROVIDER,
        "amount": transaction.amount,
        "card_no": transaction.card_no,
        "reff_no": transaction.reff_no,
        "suspect_status": transaction.suspect,
        "paymentId1": transaction.card_no,
        "paymentId2": transaction.invoice_no or transaction.reff_no,
        "pending_balance": transaction.amount,
        "trx_time": transaction.trx_time,
        "reservation_number": transaction.reservation_number,
    }
