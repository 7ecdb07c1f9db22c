"""KCI's operations: card info, reservations, the 7-step load balance and its confirmation.

Typed arguments in, plain dicts (the envelope's ``data``) out, :class:`~simulator.errors.KciError`
for every broken rule. Operations that change a card's reservations run under that card's
``asyncio.Lock``, and every step re-checks the state it relies on (the session still owns its
reservation, the reservation is still in the state the step expects), so two sessions on one card
can never both write. Money state changes go through :class:`~simulator.money.Money` only.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from typing import Any

from virtual_card.host import HostSession

from . import rules, sam
from .clock import Clock, fmt, local
from .config import Limits
from .errors import (
    AlreadyConfirmedError,
    AuthenticationFailedError,
    BadRequestError,
    BalanceDiffersError,
    CardNotRegisteredError,
    DuplicateReferenceError,
    KciError,
    OtherCardError,
    PartnerInactiveError,
    PendingReservationExistsError,
    ReservationExpiredError,
    ReservationNotFoundError,
    SequenceDataInvalidError,
    SessionNotFoundError,
    StepOutOfOrderError,
    SuspectFirstError,
    TerminalNotValidError,
)
from .model import Card, Partner, Reservation, ReservationStatus, Session, SessionKind, Terminal
from .money import Money
from .store import Store

CARD_INFO_STEPS = 3
LOAD_STEPS = 7
PRUNE_EVERY = 1000
SESSION_RETENTION = 3600


class KciService:
    def __init__(
        self, store: Store, clock: Clock, *, limits: Limits, master_key: bytes, kci_secret: bytes, node: int
    ) -> None:
        self.store = store
        self.clock = clock
        self.limits = limits
        self.master_key = master_key
        self.kci_secret = kci_secret
        self.node = node
        self.money = Money(store, clock)
        self._locks: dict[str, asyncio.Lock] = {}
        self._opened = 0

    def lock(self, card_no: str) -> asyncio.Lock:
        lock = self._locks.get(card_no)
        if lock is None:
            lock = self._locks[card_no] = asyncio.Lock()
        return lock

    # -- who is calling, from where, with which card ------------------------------------------

    def partner(self, partner_id: str) -> Partner:
        partner = self.store.partners.get(partner_id)
        if partner is None:
            raise AuthenticationFailedError(f"unknown partner {partner_id!r}")
        return partner

    def terminal(self, partner: Partner, tid: str, mid: str) -> Terminal:
        if not partner.active:
            raise PartnerInactiveError(f"partner {partner.partner_id} is inactive")
        merchant = self.store.merchants.get(mid)
        if merchant is None or merchant.partner_id != partner.partner_id:
            raise TerminalNotValidError(f"mid {mid!r} is not a merchant of partner {partner.partner_id}")
        terminal = self.store.terminals.get(tid)
        if terminal is None or terminal.mid != mid:
            raise TerminalNotValidError(f"tid {tid!r} is not a terminal of merchant {mid}")
        if not merchant.active:
            raise PartnerInactiveError(f"merchant {mid} is inactive")
        if not terminal.active:
            raise TerminalNotValidError(f"terminal {tid} is inactive")
        return terminal

    def card(self, card_no: str) -> Card:
        card = self.store.cards.get(card_no)
        if card is None:
            raise CardNotRegisteredError(f"card {card_no} is not registered")
        return card

    # -- reservations: expiry, suspects, views -------------------------------------------------

    def refresh(self, res: Reservation) -> Reservation:
        """Apply expiry lazily: a PENDING reservation past expires_at becomes EXPIRED."""
        if res.status == ReservationStatus.PENDING and self.clock.time() >= res.expires_at:
            self.money.expire(res)
        return res

    def session_live(self, session_id: str | None) -> bool:
        sess = self.store.sessions.get(session_id) if session_id else None
        return sess is not None and sess.closed is None and self.clock.time() < sess.expires_at

    def is_suspect(self, res: Reservation) -> bool:
        """IN_PROGRESS whose session can no longer finish it: outcome unknown until recovered."""
        return res.status == ReservationStatus.IN_PROGRESS and not self.session_live(res.session_id)

    def open_reservations(self, card_no: str) -> list[Reservation]:
        return [
            r
            for r in (self.refresh(r) for r in list(self.store.card_reservations(card_no)))
            if r.status in (ReservationStatus.PENDING, ReservationStatus.IN_PROGRESS)
        ]

    def view(self, res: Reservation) -> dict[str, Any]:
        data: dict[str, Any] = {
            "reservation_number": res.reservation_number,
            "ref_no": res.ref_no,
            "card_no": res.card_no,
            "tid": res.tid,
            "mid": res.mid,
            "amount": res.amount,
            "status": res.status,
            "suspect": self.is_suspect(res),
            "prev_balance": res.prev_balance,
            "trx_time": fmt(res.trx_time),
            "expires_at": fmt(res.expires_at),
        }
        if res.load_balance_number:
            data["load_balance_number"] = res.load_balance_number
            data["balance"] = res.balance_after
        return data

    def _number(self, prefix: str, sequence: str) -> str:
        seq = self.store.next_number(sequence)
        return f"{prefix}{self.node:02d}{local(self.clock.time()):%y%m%d}{seq % 1_000_000:06d}"

    # -- sequence_data -------------------------------------------------------------------------

    def sequence_data(self, sess: Session, step: int) -> str:
        """HMAC binding the token to the session, its card and the step it must be presented at."""
        msg = f"{sess.session_id}|{sess.nonce}|{sess.kind}|{sess.card_no}|{sess.idm}|{step}".encode()
        return hmac.new(self.kci_secret, msg, hashlib.sha256).hexdigest()

    def _check_sequence_data(self, sess: Session, step: int, given: str | None) -> None:
        if given is None:
            raise BadRequestError(f"sequence_data is required at step {step}")
        if not hmac.compare_digest(given.encode(), self.sequence_data(sess, step).encode()):
            raise SequenceDataInvalidError(f"sequence_data does not verify for session {sess.session_id} step {step}")

    # -- sessions ------------------------------------------------------------------------------

    def _open_session(self, kind: SessionKind, partner: Partner, card: Card, *, tid: str, mid: str) -> Session:
        now = self.clock.time()
        sess = Session(
            session_id=secrets.token_hex(16),
            kind=kind,
            partner_id=partner.partner_id,
            card_no=card.card_no,
            tid=tid,
            mid=mid,
            idm=card.idm,
            created=now,
            expires_at=now + self.limits.session_ttl,
            nonce=secrets.token_hex(8),
        )
        self.store.put(sess)
        self._opened += 1
        if self._opened % PRUNE_EVERY == 0:
            self.prune_sessions()
        return sess

    def prune_sessions(self) -> int:
        """Forget sessions expired for more than an hour, except the one that can still confirm a
        LOADED reservation; returns how many were dropped (a long-running simulator stays small)."""
        cutoff = self.clock.time() - SESSION_RETENTION
        dropped = 0
        for sess in list(self.store.sessions.values()):
            if sess.expires_at > cutoff:
                continue
            res = self.store.reservations.get(sess.reservation_number or "")
            if res is not None and res.session_id == sess.session_id and res.status == ReservationStatus.LOADED:
                continue
            self.store.delete(sess)
            dropped += 1
        return dropped

    def _session(
        self,
        kind: SessionKind,
        partner: Partner,
        *,
        session_id: str | None,
        card_no: str,
        tid: str,
        mid: str,
        step: int,
        sequence_data: str | None,
    ) -> Session:
        if not session_id:
            raise BadRequestError(f"session_id is required at step {step}")
        sess = self.store.sessions.get(session_id)
        if sess is None or sess.kind != kind or sess.partner_id != partner.partner_id:
            raise SessionNotFoundError(f"{kind} session {session_id} not found")
        if sess.closed is not None:
            raise SessionNotFoundError(f"session {session_id} is closed ({sess.closed})")
        if self.clock.time() >= sess.expires_at:
            self._close(sess, "expired")
            raise SessionNotFoundError(f"session {session_id} expired")
        if sess.card_no != card_no:
            raise OtherCardError(f"session {session_id} belongs to card {sess.card_no}, not {card_no}")
        if (sess.tid, sess.mid) != (tid, mid):
            raise TerminalNotValidError(f"session {session_id} was opened by tid {sess.tid} mid {sess.mid}")
        if step != sess.next_step:
            raise StepOutOfOrderError(f"session {session_id} expects step {sess.next_step}, got step {step}")
        if step >= 3:
            self._check_sequence_data(sess, step, sequence_data)
        return sess

    def _close(self, sess: Session, reason: str) -> None:
        sess.closed = reason
        self.store.put(sess)

    def _advance(self, sess: Session, host: HostSession | None, step: int) -> str:
        """Store the SAM state, move to ``step + 1`` and return the sequence_data for it."""
        if host is not None:
            sess.host = host.to_dict()
        sess.next_step = step + 1
        self.store.put(sess)
        return self.sequence_data(sess, step + 1)

    def _host(self, sess: Session) -> HostSession:
        if sess.host is None:
            raise AssertionError(f"session {sess.session_id} has no SAM state at step {sess.next_step}")
        return HostSession.from_dict(sess.host)

    # -- card info (card-check steps 1-3) -------------------------------------------------------

    async def card_info(
        self,
        partner: Partner,
        *,
        card_no: str,
        tid: str,
        mid: str,
        step: int,
        card_resp: bytes | None,
        session_id: str | None,
        sequence_data: str | None,
    ) -> dict[str, Any]:
        self.terminal(partner, tid, mid)
        card = self.card(card_no)
        idm = bytes.fromhex(card.idm)
        if step == 1:
            sess = self._open_session(SessionKind.CARD_INFO, partner, card, tid=tid, mid=mid)
            return self._command(1, sess, sam.command(sam.POLLING), "")
        if step not in (2, 3):
            raise BadRequestError(f"step must be 1, 2 or 3, got {step}")
        sess = self._session(
            SessionKind.CARD_INFO,
            partner,
            session_id=session_id,
            card_no=card_no,
            tid=tid,
            mid=mid,
            step=step,
            sequence_data=sequence_data,
        )
        answer = _need(card_resp, step)
        try:
            if step == 2:
                sam.accept_polling(answer, idm)
                return self._command(2, sess, sam.card_check_command(idm), self._advance(sess, None, 2))
            info = sam.accept_card_check(answer, idm, card_no)
        except KciError:
            self._close(sess, f"failed at step {step}")
            raise
        self._close(sess, "finished")
        card.last_balance = info.purse.balance
        self.store.put(card)
        return {
            "step": 3,
            "next_step": None,
            "session_id": sess.session_id,
            "card_no": card.card_no,
            "account_status": rules.account_status(card, self.clock.time()),
            "balance": info.purse.balance,
            "counter": info.purse.counter,
            "history": [r.as_dict() for r in info.history],
        }

    @staticmethod
    def _command(step: int, sess: Session, command: bytes, sequence_data: str, **extra: Any) -> dict[str, Any]:
        return {
            "step": step,
            "next_step": step + 1,
            "session_id": sess.session_id,
            "command": command.hex(),
            "command_len": len(command),
            "sequence_data": sequence_data,
            **extra,
        }

    # -- reservations -----------------------------------------------------------------------------

    def reservation_check(self, partner: Partner, card_no: str, tid: str, mid: str) -> dict[str, Any]:
        self.terminal(partner, tid, mid)
        self.card(card_no)
        return {"reservations": [self.view(r) for r in self.open_reservations(card_no)]}

    def _validate(self, partner: Partner, *, card_no: str, tid: str, mid: str, amount: int, ref_no: str) -> Card:
        self.terminal(partner, tid, mid)
        card = self.card(card_no)
        now = self.clock.time()
        rules.check_card_usable(card, now)
        if self.store.reservation_by_ref(partner.partner_id, ref_no) is not None:
            raise DuplicateReferenceError(f"ref_no {ref_no!r} was already used")
        rules.check_amount(self.limits, amount)
        open_ = self.open_reservations(card_no)
        suspect = [r for r in open_ if self.is_suspect(r)]
        if suspect:
            raise SuspectFirstError(
                f"card {card_no} has suspect reservation {suspect[0].reservation_number} to recover"
            )
        if open_:
            raise PendingReservationExistsError(
                f"card {card_no} has open reservation {open_[0].reservation_number} ({open_[0].status})"
            )
        if card.last_balance is not None:
            rules.check_max_balance(self.limits, card.last_balance, amount)
        rules.check_monthly(self.limits, self.store.card_reservations(card_no), amount, now)
        return card

    async def reservation_validate(
        self, partner: Partner, *, card_no: str, tid: str, mid: str, amount: int, ref_no: str
    ) -> dict[str, Any]:
        self._validate(partner, card_no=card_no, tid=tid, mid=mid, amount=amount, ref_no=ref_no)
        return {"card_no": card_no, "amount": amount, "valid": True}

    async def reservation_create(
        self, partner: Partner, *, card_no: str, tid: str, mid: str, amount: int, ref_no: str
    ) -> dict[str, Any]:
        self.card(card_no)
        async with self.lock(card_no):
            self._validate(partner, card_no=card_no, tid=tid, mid=mid, amount=amount, ref_no=ref_no)
            now = self.clock.time()
            res = Reservation(
                reservation_number=self._number("RBLP", "reservation"),
                ref_no=ref_no,
                partner_id=partner.partner_id,
                card_no=card_no,
                tid=tid,
                mid=mid,
                amount=amount,
                status=ReservationStatus.PENDING,
                trx_time=now,
                expires_at=now + self.limits.reservation_ttl,
            )
            self.money.reserved(res)
            view = self.view(res)
        return {
            k: view[k]
            for k in ("reservation_number", "ref_no", "card_no", "amount", "status", "trx_time", "expires_at")
        }

    def reservation_inquiry(
        self, partner: Partner, reservation_number: str | None, ref_no: str | None
    ) -> dict[str, Any]:
        if reservation_number:
            res = self.store.reservations.get(reservation_number)
        elif ref_no:
            res = self.store.reservation_by_ref(partner.partner_id, ref_no)
        else:
            raise BadRequestError("reservation_number or ref_no is required")
        if res is None or res.partner_id != partner.partner_id:
            raise ReservationNotFoundError(f"reservation {reservation_number or ref_no} does not exist")
        return self.view(self.refresh(res))

    # -- load balance (update steps 1-7) ------------------------------------------------------------

    def _pick_reservation(self, partner: Partner, card_no: str, number: str | None) -> Reservation:
        if number:
            res = self.store.reservations.get(number)
            if res is None or res.card_no != card_no or res.partner_id != partner.partner_id:
                raise ReservationNotFoundError(f"reservation {number} does not exist for card {card_no}")
            self.refresh(res)
        else:
            open_ = [r for r in self.open_reservations(card_no) if r.partner_id == partner.partner_id]
            if not open_:
                mine = [r for r in self.store.card_reservations(card_no) if r.partner_id == partner.partner_id]
                if mine and mine[-1].status == ReservationStatus.EXPIRED:
                    raise ReservationExpiredError(f"reservation {mine[-1].reservation_number} expired")
                raise ReservationNotFoundError(f"card {card_no} has no open reservation")
            res = open_[0]
        if res.status == ReservationStatus.EXPIRED:
            raise ReservationExpiredError(f"reservation {res.reservation_number} expired at {fmt(res.expires_at)}")
        if res.status == ReservationStatus.SUCCESS:
            raise AlreadyConfirmedError(f"reservation {res.reservation_number} is already confirmed")
        if res.status == ReservationStatus.LOADED:
            raise StepOutOfOrderError(f"reservation {res.reservation_number} is already loaded: confirm it")
        return res

    def _owned(self, sess: Session) -> Reservation:
        """The session's reservation, if the session still owns it and it is still loadable."""
        res = self.store.reservations[sess.reservation_number or ""]
        if res.session_id != sess.session_id:
            self._close(sess, "superseded")
            raise SessionNotFoundError(f"session {sess.session_id} was superseded by session {res.session_id}")
        self.refresh(res)
        if res.status == ReservationStatus.EXPIRED:
            self._close(sess, "reservation expired")
            raise ReservationExpiredError(f"reservation {res.reservation_number} expired at {fmt(res.expires_at)}")
        if res.status not in (ReservationStatus.PENDING, ReservationStatus.IN_PROGRESS):
            raise AssertionError(f"session {sess.session_id} owns {res.status} reservation")
        return res

    async def load_balance(
        self,
        partner: Partner,
        *,
        card_no: str,
        tid: str,
        mid: str,
        step: int,
        reservation_number: str | None = None,
        prev_balance: int | None = None,
        balance: int | None = None,
        card_resp: bytes | None = None,
        session_id: str | None = None,
        sequence_data: str | None = None,
    ) -> dict[str, Any]:
        terminal = self.terminal(partner, tid, mid)
        card = self.card(card_no)
        if not 1 <= step <= LOAD_STEPS:
            raise BadRequestError(f"step must be 1..7, got {step}")
        async with self.lock(card_no):
            if step == 1:
                return self._load_open(partner, card, tid, mid, number=reservation_number, prev_balance=prev_balance)
            sess = self._session(
                SessionKind.LOAD,
                partner,
                session_id=session_id,
                card_no=card_no,
                tid=tid,
                mid=mid,
                step=step,
                sequence_data=sequence_data,
            )
            res = self._owned(sess)
            answer = _need(card_resp, step)
            if balance is None:
                raise BadRequestError(f"balance is required at step {step}")
            sess.balance = balance
            try:
                return self._load_step(sess, res, card, terminal, step=step, answer=answer)
            except KciError:
                self._close(sess, f"failed at step {step}")
                raise

    def _load_open(
        self, partner: Partner, card: Card, tid: str, mid: str, *, number: str | None, prev_balance: int | None
    ) -> dict[str, Any]:
        if prev_balance is None:
            raise BadRequestError("prev_balance is required at step 1")
        res = self._pick_reservation(partner, card.card_no, number)
        if res.status == ReservationStatus.PENDING:
            rules.check_card_usable(card, self.clock.time())
        old = self.store.sessions.get(res.session_id) if res.session_id else None
        if old is not None and old.closed is None:
            self._close(old, "superseded")  # an IN_PROGRESS one is now suspect and this run recovers it
        sess = self._open_session(SessionKind.LOAD, partner, card, tid=tid, mid=mid)
        sess.reservation_number = res.reservation_number
        sess.prev_balance = prev_balance
        self.store.put(sess)
        res.session_id = sess.session_id
        res.attempts += 1
        self.store.put(res)
        return self._command(
            1, sess, sam.command(sam.POLLING), "", reservation_number=res.reservation_number, amount=res.amount
        )

    def _load_step(
        self, sess: Session, res: Reservation, card: Card, terminal: Terminal, *, step: int, answer: bytes
    ) -> dict[str, Any]:
        idm = bytes.fromhex(card.idm)
        extra = {"reservation_number": res.reservation_number, "amount": res.amount}
        if step == 2:
            sam.accept_polling(answer, idm)
            host, cmd = sam.begin(self.master_key, idm, secrets.token_bytes(16))
        elif step == 3:
            host, cmd = sam.accept_auth1(self._host(sess), answer)
        elif step == 4:
            host = sam.accept_auth2(self._host(sess), answer)
            host, cmd = sam.purse_read(host)
        elif step == 5:
            host = self._host(sess)
            state = sam.accept_purse_read(host, answer)
            card.last_balance = state.purse.balance
            self.store.put(card)
            if self.money.earlier_write_applied(res, state):
                self.money.write_found(res, sess.session_id)
                sess.recovered = True
                host, cmd = sam.purse_read(host)
            else:
                if state.purse.balance != sess.prev_balance:
                    raise _balance_differs(state.purse.balance, sess.prev_balance)
                rules.check_max_balance(self.limits, state.purse.balance, res.amount)
                host, cmd, after, record = sam.purse_write(
                    host, state.purse, res.amount, self.clock.now(), terminal.gate
                )
                sess.write_issued = True
                self.money.issue_write(res, sess.session_id, state.purse, after, record)
        elif step == 6:
            host = self._host(sess)
            if sess.recovered:
                sam.accept_purse_read(host, answer)
            else:
                sam.accept_write(host, answer)
            host, cmd = sam.purse_read(host)
        else:
            state = sam.accept_purse_read(self._host(sess), answer)
            number = self._number("LBLP", "load_balance")
            self.money.verify_load(res, sess.session_id, state, number)
            card.last_balance = state.purse.balance
            self.store.put(card)
            self._close(sess, "finished")
            return {
                "step": 7,
                "next_step": None,
                "session_id": sess.session_id,
                "reservation_number": res.reservation_number,
                "load_balance_number": number,
                "amount": res.amount,
                "prev_balance": res.prev_balance,
                "balance": res.balance_after,
            }
        return self._command(step, sess, cmd, self._advance(sess, host, step), **extra)

    async def confirm(
        self, partner: Partner, *, card_no: str, tid: str, mid: str, session_id: str, last_balance: int
    ) -> dict[str, Any]:
        self.terminal(partner, tid, mid)
        self.card(card_no)
        sess = self.store.sessions.get(session_id)
        if sess is None or sess.kind != SessionKind.LOAD or sess.partner_id != partner.partner_id:
            raise SessionNotFoundError(f"load-balance session {session_id} not found")
        if sess.card_no != card_no:
            raise OtherCardError(f"session {session_id} belongs to card {sess.card_no}, not {card_no}")
        if (sess.tid, sess.mid) != (tid, mid):
            raise TerminalNotValidError(f"session {session_id} was opened by tid {sess.tid} mid {sess.mid}")
        async with self.lock(card_no):
            res = self.store.reservations[sess.reservation_number or ""]
            if res.status == ReservationStatus.LOADED and res.session_id != session_id:
                raise SessionNotFoundError(f"session {session_id} did not load reservation {res.reservation_number}")
            self.money.confirm(res, last_balance)
        return {
            "reservation_number": res.reservation_number,
            "load_balance_number": res.load_balance_number,
            "ref_no": res.ref_no,
            "amount": res.amount,
            "prev_balance": res.prev_balance,
            "last_balance": last_balance,
            "activated_balance": res.amount,
            "status": res.status,
        }


def _need(card_resp: bytes | None, step: int) -> bytes:
    if not card_resp:
        raise BadRequestError(f"card_resp is required at step {step}")
    return card_resp


def _balance_differs(card_balance: int, prev_balance: int | None) -> KciError:
    return BalanceDiffersError(f"the card's purse holds {card_balance}, prev_balance was {prev_balance}")
