"""The money logic, all of it: every change of a reservation's money state and its ledger entry,
the update-5 decision (write, or recognise an earlier write on the card) and reconciliation.

Rules (DESIGN.md "Money never appears or disappears"):

- A write is issued only from update 5, only for a reservation whose previous write (if any) is
  *proven absent* from the card: the card's newest history record carries the counter value that
  write would have produced, and it is not that write's record. If the card shows the write
  (counter and newest record equal what KCI wrote) there is no second write. If it cannot be told
  (the card has moved past that counter), nothing is written and the reservation stays suspect.
- LOADED only after the card, read back under MAC, shows exactly the write's counter, record and
  balance. LOADED is reached from IN_PROGRESS only, so no reservation is loaded twice.
- The invariant: for each card, ``balance now == issued + sum(LOADED/SUCCESS amounts) - fares``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from virtual_card.host import PurseState
from virtual_card.profile import PurseBlock

from .clock import Clock
from .errors import (
    AlreadyConfirmedError,
    BadRequestError,
    BalanceDiffersError,
    LastBalanceMismatchError,
    LoadNotFinishedError,
)
from .model import LOADED_STATES, LedgerEntry, Reservation, ReservationStatus, WriteRecord
from .store import Store


@dataclass(frozen=True, slots=True)
class CardReport:
    """A card's balance now and the fares taken from it since issue, as the caller knows them."""

    card_no: str
    balance: int
    fares: int


class Money:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def _record(self, event: str, res: Reservation, **fields: Any) -> None:
        entry = LedgerEntry(
            seq=self.store.next_number("ledger"),
            time=self.clock.time(),
            event=event,
            card_no=res.card_no,
            reservation_number=res.reservation_number,
            amount=res.amount,
            **fields,
        )
        self.store.append_ledger(entry)

    def reserved(self, res: Reservation) -> None:
        self.store.put(res)
        self._record("RESERVED", res)

    def expire(self, res: Reservation) -> None:
        """PENDING -> EXPIRED; nothing was written, so no money moves."""
        if res.status != ReservationStatus.PENDING:
            raise AssertionError(f"expire() on {res.status} reservation {res.reservation_number}")
        res.status = ReservationStatus.EXPIRED
        self.store.put(res)
        self._record("EXPIRED", res)

    def earlier_write_applied(self, res: Reservation, state: PurseState) -> bool:
        """Update 5 of a reservation with an earlier write: is that write on the card?"""
        w = res.write
        if w is None:
            return False
        counter = state.purse.counter
        if counter == w.counter - 1:
            return False  # the card never reached the write's counter
        if counter >= w.counter:
            record = state.record_with(w.counter)
            if record is not None:
                # The transaction that took the write's counter value is ours, or another one (a fare)
                # took it first and the write was refused by the card.
                return record.to_bytes().hex() == w.record
        raise BalanceDiffersError(
            f"reservation {res.reservation_number}: the card's counter is {counter}, the earlier write's is "
            f"{w.counter} and its history record is no longer among the newest {len(state.history)}; cannot tell "
            "whether it was applied, nothing written"
        )

    def issue_write(
        self, res: Reservation, session_id: str, before: PurseBlock, after: PurseBlock, record: bytes
    ) -> None:
        """Update 5 sends a write: the reservation is IN_PROGRESS from now until verified."""
        if res.status not in (ReservationStatus.PENDING, ReservationStatus.IN_PROGRESS):
            raise AssertionError(f"write for {res.status} reservation {res.reservation_number}")
        if after.balance != before.balance + res.amount or after.counter != before.counter + 1:
            raise AssertionError("top-up write does not add exactly the reserved amount")
        rewrite = res.write is not None
        res.write = WriteRecord(
            session_id=session_id,
            counter=after.counter,
            balance_before=before.balance,
            balance_after=after.balance,
            record=record.hex(),
            issued_at=self.clock.time(),
        )
        res.status = ReservationStatus.IN_PROGRESS
        res.prev_balance = before.balance
        self.store.put(res)
        self._record(
            "REWRITE_ISSUED" if rewrite else "WRITE_ISSUED",
            res,
            session_id=session_id,
            balance_before=before.balance,
            balance_after=after.balance,
        )

    def write_found(self, res: Reservation, session_id: str) -> None:
        """Recovery: the earlier write is on the card; go on to verification without writing."""
        w = res.write
        assert w is not None
        self._record(
            "RECOVERED_APPLIED",
            res,
            session_id=session_id,
            balance_before=w.balance_before,
            balance_after=w.balance_after,
            note=f"write of session {w.session_id} found on the card",
        )

    def verify_load(self, res: Reservation, session_id: str, state: PurseState, number: str) -> None:
        """Update 7: the card must show exactly the write; IN_PROGRESS -> LOADED."""
        w = res.write
        if res.status != ReservationStatus.IN_PROGRESS or w is None:
            raise AssertionError(f"verify_load on {res.status} reservation {res.reservation_number}")
        record = state.record_with(w.counter)
        exact = state.purse.counter == w.counter and state.purse.balance == w.balance_after
        # A recovered write may have fares after it on the card: then its own record must be there.
        moved_on = state.purse.counter > w.counter
        if record is None or record.to_bytes().hex() != w.record or not (exact or moved_on):
            raise BalanceDiffersError(
                f"after the write the card shows balance {state.purse.balance} counter {state.purse.counter}, "
                f"expected balance {w.balance_after} counter {w.counter} and KCI's history record"
            )
        res.status = ReservationStatus.LOADED
        res.balance_after = w.balance_after
        res.load_balance_number = number
        res.loaded_at = self.clock.time()
        self.store.put(res)
        self._record(
            "LOADED",
            res,
            session_id=session_id,
            balance_before=w.balance_before,
            balance_after=w.balance_after,
        )

    def confirm(self, res: Reservation, last_balance: int) -> None:
        """LOADED -> SUCCESS when the caller's last_balance is the balance after the load."""
        if res.status == ReservationStatus.SUCCESS:
            raise AlreadyConfirmedError(f"reservation {res.reservation_number} is already confirmed")
        if res.status != ReservationStatus.LOADED:
            raise LoadNotFinishedError(f"reservation {res.reservation_number} is {res.status}, not LOADED")
        if last_balance != res.balance_after:
            raise LastBalanceMismatchError(
                f"last_balance {last_balance} does not match the balance after load {res.balance_after}"
            )
        res.status = ReservationStatus.SUCCESS
        res.confirmed_at = self.clock.time()
        self.store.put(res)
        self._record("CONFIRMED", res, balance_after=last_balance)


def parse_reports(items: Any) -> list[CardReport]:
    if not isinstance(items, list):
        raise BadRequestError("reconcile: body must be a list of {card_no, balance, fares}")
    reports = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequestError(f"reconcile[{i}]: must be an object")
        card_no = item.get("card_no")
        balance, fares = item.get("balance"), item.get("fares", 0)
        if not isinstance(card_no, str):
            raise BadRequestError(f"reconcile[{i}].card_no: must be a string")
        for name, value in (("balance", balance), ("fares", fares)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise BadRequestError(f"reconcile[{i}].{name}: must be an integer (rupiah)")
        reports.append(CardReport(card_no, int(balance), int(fares)))  # type: ignore[arg-type]
    return reports


def reconcile(store: Store, reports: list[CardReport]) -> dict[str, Any]:
    """Check the money invariant for the reported cards; findings as data, never an exception."""
    findings: list[dict[str, Any]] = []
    loaded_events = Counter(e.reservation_number for e in store.ledger if e.event == "LOADED")
    for number, n in loaded_events.items():
        if n > 1:
            findings.append({"kind": "loaded_twice", "severity": "error", "reservation_number": number, "count": n})
    cards = []
    for rep in reports:
        card = store.cards.get(rep.card_no)
        if card is None:
            findings.append(
                {"kind": "unknown_card", "severity": "error", "card_no": rep.card_no, "message": "not registered"}
            )
            continue
        reservations = list(store.card_reservations(rep.card_no))
        loads = sum(r.amount for r in reservations if r.status in LOADED_STATES)
        expected = card.issued_balance + loads - rep.fares
        cards.append(
            {
                "card_no": rep.card_no,
                "issued": card.issued_balance,
                "loads": loads,
                "fares": rep.fares,
                "expected": expected,
                "balance": rep.balance,
            }
        )
        if rep.balance != expected:
            findings.append(
                {
                    "kind": "balance_mismatch",
                    "severity": "error",
                    "card_no": rep.card_no,
                    "expected": expected,
                    "balance": rep.balance,
                    "message": f"balance {rep.balance} != issued {card.issued_balance} + loads {loads} "
                    f"- fares {rep.fares} = {expected}",
                }
            )
        for r in reservations:
            if r.status == ReservationStatus.IN_PROGRESS:
                findings.append(
                    {
                        "kind": "unresolved_in_progress",
                        "severity": "warning",
                        "card_no": rep.card_no,
                        "reservation_number": r.reservation_number,
                        "message": "write issued, outcome not verified yet (suspect until recovered)",
                    }
                )
    ok = not any(f["severity"] == "error" for f in findings)
    return {"ok": ok, "findings": findings, "cards": cards}
