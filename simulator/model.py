"""KCI's records: partners, merchants, terminals, cards, reservations, sessions and ledger entries.

Plain mutable dataclasses; the store keeps them and writes them through to SQLite as JSON documents.
Times are epoch seconds on KCI's clock; money is integer rupiah.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Self


class CardStatus(StrEnum):
    ACTIVE = "ACTIVE"
    BLOCKED = "BLOCKED"
    INACTIVE = "INACTIVE"


class ReservationStatus(StrEnum):
    """DESIGN.md lifecycle: PENDING -> IN_PROGRESS -> LOADED -> SUCCESS; PENDING -> EXPIRED."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    LOADED = "LOADED"
    SUCCESS = "SUCCESS"
    EXPIRED = "EXPIRED"


LOADED_STATES = frozenset({ReservationStatus.LOADED, ReservationStatus.SUCCESS})
"""Reservations whose money is on the card (the money invariant counts exactly these)."""


class SessionKind(StrEnum):
    CARD_INFO = "card-info"
    LOAD = "load-balance"


class Doc:
    """asdict / constructor round trip for the store."""

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Self:
        return cls(**doc)


@dataclass(slots=True)
class Partner(Doc):
    partner_id: str
    secret: str
    name: str = ""
    active: bool = True


@dataclass(slots=True)
class Merchant(Doc):
    mid: str
    partner_id: str
    name: str = ""
    active: bool = True


@dataclass(slots=True)
class Terminal(Doc):
    tid: str
    mid: str
    active: bool = True
    gate: int = 0x0101
    """Gate/station code that KCI writes into the history record of a top-up at this terminal."""


@dataclass(slots=True)
class Card(Doc):
    card_no: str
    idm: str
    """IDm as 16 lowercase hex characters."""
    issued_balance: int
    status: str = CardStatus.ACTIVE
    expires: str = "2099-12-31"
    """Last valid day, YYYY-MM-DD (WIB)."""
    last_balance: int | None = None
    """The balance KCI last saw on the card (card-info step 3 or load-balance steps 5/7)."""


@dataclass(slots=True)
class WriteRecord(Doc):
    """What KCI issued at update 5: enough to recognise the write on the card later."""

    session_id: str
    counter: int
    """Purse counter after the write."""
    balance_before: int
    balance_after: int
    record: str
    """The history record written, 16 bytes as hex."""
    issued_at: float


@dataclass(slots=True)
class Reservation(Doc):
    reservation_number: str
    ref_no: str
    partner_id: str
    card_no: str
    tid: str
    mid: str
    amount: int
    status: str
    trx_time: float
    expires_at: float
    prev_balance: int | None = None
    session_id: str | None = None
    """The load session that owns the reservation now (the newest one opened for it)."""
    write: WriteRecord | None = None
    balance_after: int | None = None
    load_balance_number: str | None = None
    loaded_at: float | None = None
    confirmed_at: float | None = None
    attempts: int = 0
    """How many load sessions were opened for it."""

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Self:
        d = dict(doc)
        w = d.pop("write", None)
        return cls(**d, write=WriteRecord.from_doc(w) if w else None)


@dataclass(slots=True)
class Session(Doc):
    session_id: str
    kind: str
    partner_id: str
    card_no: str
    tid: str
    mid: str
    idm: str
    created: float
    expires_at: float
    next_step: int = 2
    nonce: str = ""
    """Random per session; mixed into every sequence_data MAC."""
    closed: str | None = None
    """Why the session cannot go on (finished, failed, superseded), or None while it can."""
    host: dict[str, Any] | None = None
    """virtual_card.host.HostSession.to_dict() between steps."""
    reservation_number: str | None = None
    prev_balance: int | None = None
    balance: int | None = None
    """The balance the caller last reported (load-balance steps 2-7)."""
    write_issued: bool = False
    recovered: bool = False
    """Update 5 found this reservation's earlier write already on the card (no second write)."""


@dataclass(slots=True)
class LedgerEntry(Doc):
    seq: int
    time: float
    event: str
    card_no: str
    reservation_number: str
    amount: int
    session_id: str | None = None
    balance_before: int | None = None
    balance_after: int | None = None
    note: str = ""
