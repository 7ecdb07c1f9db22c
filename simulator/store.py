"""KCI's state behind one interface: in memory (:class:`Store`) or written through to SQLite (:class:`SqliteStore`).

Reads always come from memory; every change goes through :meth:`Store.put` / :meth:`Store.append_ledger`
/ :meth:`Store.set_meta`, which a SQLite store also writes to its file (one JSON document per record,
WAL, one transaction per change), so a restarted simulator finds every card, reservation, session,
ledger entry and number sequence where it left them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from .errors import StateError
from .model import Card, Doc, LedgerEntry, Merchant, Partner, Reservation, Session, Terminal

SCHEMA_VERSION = 1

KINDS: dict[str, type[Doc]] = {
    "partner": Partner,
    "merchant": Merchant,
    "terminal": Terminal,
    "card": Card,
    "reservation": Reservation,
    "session": Session,
}


KEYS: dict[str, str] = {
    "partner": "partner_id",
    "merchant": "mid",
    "terminal": "tid",
    "card": "card_no",
    "reservation": "reservation_number",
    "session": "session_id",
}


def _key(obj: Doc) -> str:
    return str(getattr(obj, KEYS[_kind(obj)]))


def _kind(obj: Doc) -> str:
    for kind, cls in KINDS.items():
        if type(obj) is cls:
            return kind
    raise TypeError(f"not a stored record: {type(obj).__name__}")


class Store:
    """In-memory state with indexes; subclasses persist each change."""

    persistent: ClassVar[bool] = False

    def __init__(self) -> None:
        self._init_maps()

    def _init_maps(self) -> None:
        self.partners: dict[str, Partner] = {}
        self.merchants: dict[str, Merchant] = {}
        self.terminals: dict[str, Terminal] = {}
        self.cards: dict[str, Card] = {}
        self.reservations: dict[str, Reservation] = {}
        self.sessions: dict[str, Session] = {}
        self.ledger: list[LedgerEntry] = []
        self.meta: dict[str, Any] = {}
        self._by_ref: dict[tuple[str, str], str] = {}
        self._by_card: dict[str, list[str]] = {}

    # -- reading -----------------------------------------------------------------------------

    def _table(self, kind: str) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]] = {
            "partner": self.partners,
            "merchant": self.merchants,
            "terminal": self.terminals,
            "card": self.cards,
            "reservation": self.reservations,
            "session": self.sessions,
        }
        return tables[kind]

    def reservation_by_ref(self, partner_id: str, ref_no: str) -> Reservation | None:
        number = self._by_ref.get((partner_id, ref_no))
        return self.reservations.get(number) if number else None

    def card_reservations(self, card_no: str) -> Iterator[Reservation]:
        for number in self._by_card.get(card_no, ()):
            yield self.reservations[number]

    # -- writing -----------------------------------------------------------------------------

    def _index(self, res: Reservation) -> None:
        key = (res.partner_id, res.ref_no)
        if key not in self._by_ref:
            self._by_ref[key] = res.reservation_number
            self._by_card.setdefault(res.card_no, []).append(res.reservation_number)

    def put(self, obj: Doc) -> None:
        """Add or replace a record (call it after every change of a record)."""
        kind = _kind(obj)
        self._table(kind)[_key(obj)] = obj
        if isinstance(obj, Reservation):
            self._index(obj)
        self._write(kind, _key(obj), obj)

    def delete(self, obj: Doc) -> None:
        kind = _kind(obj)
        self._table(kind).pop(_key(obj), None)
        self._write(kind, _key(obj), None)

    def append_ledger(self, entry: LedgerEntry) -> None:
        self.ledger.append(entry)
        self._write("ledger", f"{entry.seq:012d}", entry)

    def set_meta(self, name: str, value: Any) -> None:
        self.meta[name] = value
        self._write("meta", name, value)

    def next_number(self, name: str) -> int:
        """The next value of a named sequence, starting at 1; kept across restarts."""
        value = int(self.meta.get(f"seq.{name}", 0)) + 1
        self.set_meta(f"seq.{name}", value)
        return value

    def reset(self) -> None:
        """Forget everything except the number sequences (numbers stay unique), the KCI secret and the clock."""
        keep = {
            k: v for k, v in self.meta.items() if k.startswith("seq.") or k in ("kci_secret", "schema", "clock_offset")
        }
        dropped = [k for k in self.meta if k not in keep]
        self._init_maps()
        self._clear()
        for name in dropped:
            self._write("meta", name, None)
        self.meta.update(keep)

    def reset_card(self, card_no: str) -> None:
        """Forget a card's reservations, sessions and ledger entries; keep its registration."""
        for res in list(self.card_reservations(card_no)):
            self._by_ref.pop((res.partner_id, res.ref_no), None)
            self.delete(res)
        self._by_card.pop(card_no, None)
        for sess in [s for s in self.sessions.values() if s.card_no == card_no]:
            self.delete(sess)
        kept = [e for e in self.ledger if e.card_no != card_no]
        for entry in self.ledger:
            if entry.card_no == card_no:
                self._write("ledger", f"{entry.seq:012d}", None)
        self.ledger = kept

    def close(self) -> None:
        """Nothing to release in memory."""

    # -- persistence hooks -------------------------------------------------------------------

    def _write(self, kind: str, key: str, doc: Any) -> None:
        """Persist one change: a record (a :class:`Doc`), a JSON value (meta), or None to delete."""

    def _clear(self) -> None:
        """Delete every persisted record."""


class SqliteStore(Store):
    """State kept in a SQLite file (stdlib sqlite3, WAL); loaded whole at open, written through."""

    persistent = True

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS record (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,"
                " PRIMARY KEY (kind, key))"
            )
            self._load()
        except sqlite3.Error as exc:
            raise StateError(f"state file {path}: {exc}") from exc

    def _load(self) -> None:
        rows = self._db.execute("SELECT kind, key, doc FROM record ORDER BY kind, key").fetchall()
        version = next((json.loads(d) for k, key, d in rows if k == "meta" and key == "schema"), None)
        if version is None:
            self._write("meta", "schema", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise StateError(f"state file {self.path} has schema {version}, this simulator reads {SCHEMA_VERSION}")
        for kind, key, text in rows:
            doc = json.loads(text)
            if kind == "meta":
                self.meta[key] = doc
            elif kind == "ledger":
                self.ledger.append(LedgerEntry.from_doc(doc))
            elif kind in KINDS:
                obj = KINDS[kind].from_doc(doc)
                self._table(kind)[key] = obj
                if isinstance(obj, Reservation):
                    self._index(obj)
        self.ledger.sort(key=lambda e: e.seq)
        for numbers in self._by_card.values():
            numbers.sort(key=lambda n: self.reservations[n].trx_time)

    def _write(self, kind: str, key: str, doc: Any) -> None:
        if isinstance(doc, Doc):
            doc = doc.to_doc()
        if doc is None:
            self._db.execute("DELETE FROM record WHERE kind = ? AND key = ?", (kind, key))
        else:
            self._db.execute(
                "INSERT OR REPLACE INTO record (kind, key, doc) VALUES (?, ?, ?)",
                (kind, key, json.dumps(doc, separators=(",", ":"))),
            )

    def _clear(self) -> None:
        self._db.execute("DELETE FROM record WHERE kind != 'meta'")

    def close(self) -> None:
        self._db.close()


def open_store(path: Path | None) -> Store:
    return SqliteStore(path) if path is not None else Store()
