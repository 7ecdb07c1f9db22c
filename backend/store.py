"""SQLite persistence (WAL): transactions, the last answer of every flow, terminal nonces, reff_no sequence.

All SQL runs on one worker thread owned by the store (``await store.call(...)``), so the event loop never
waits on the disk and the connection is never shared between threads. Every write commits before the
caller answers its HTTP request.

``reff_no`` is ``YYYYMMDD`` (Asia/Jakarta date) followed by a 6-digit sequence that restarts each day,
allocated in the same transaction that inserts the row: unique within one database.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from .errors import BackendError

T = TypeVar("T")
JAKARTA = timezone(timedelta(hours=7), "WIB")
SEQUENCE_DIGITS = 6

SCHEMA = """
CREATE TABLE IF NOT EXISTS transactions (
    reff_no TEXT PRIMARY KEY,
    card_no TEXT NOT NULL,
    tid TEXT NOT NULL,
    mid TEXT NOT NULL,
    amount INTEGER NOT NULL,
    invoice_no TEXT,
    reservation_number TEXT UNIQUE,
    load_balance_number TEXT,
    session_id TEXT,
    step INTEGER NOT NULL DEFAULT 0,
    prev_balance INTEGER,
    balance INTEGER,
    last_balance INTEGER,
    status TEXT NOT NULL,
    suspect INTEGER NOT NULL DEFAULT 0,
    last_code INTEGER,
    last_message TEXT,
    trx_time TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_session ON transactions (session_id);
CREATE INDEX IF NOT EXISTS transactions_card ON transactions (card_no, status);
CREATE TABLE IF NOT EXISTS answers (
    scope TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    step INTEGER NOT NULL,
    request_hash TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS confirmations (
    session_id TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
CREATE TABLE IF NOT EXISTS reff_sequence (
    day TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
"""


class StoreFailed(BackendError):  # noqa: N818 - named after the broken rule
    """The database refused an operation (disk full, corrupt file, locked by another process)."""


class Status(StrEnum):
    """A transaction's state as this backend last learned it from KCI."""

    NEW = "NEW"
    """Row written, reservation not (yet) confirmed by KCI; stays NEW when KCI's answer was lost."""
    REJECTED = "REJECTED"
    """KCI refused the reservation (validate or create); last_code says why."""
    PENDING = "PENDING"
    LOADING = "LOADING"
    """Update steps 1-4 under way; no write requested yet."""
    IN_PROGRESS = "IN_PROGRESS"
    """The card write was requested (update 5); suspect until update 7 verifies it."""
    LOADED = "LOADED"
    SUCCESS = "SUCCESS"


@dataclass(frozen=True, slots=True)
class Transaction:
    reff_no: str
    card_no: str
    tid: str
    mid: str
    amount: int
    invoice_no: str | None
    reservation_number: str | None
    load_balance_number: str | None
    session_id: str | None
    step: int
    prev_balance: int | None
    balance: int | None
    last_balance: int | None
    status: Status
    suspect: bool
    last_code: int | None
    last_message: str | None
    trx_time: str | None
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Transaction:
        values = dict(row)
        values["status"] = Status(values["status"])
        values["suspect"] = bool(values["suspect"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    endpoint: str
    step: int
    request_hash: str
    message: str
    data: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """An answer to keep as the flow's last one (written in the same commit as the state it reports)."""

    scope: str
    endpoint: str
    step: int
    request_hash: str
    message: str
    data: dict[str, Any]


_COLUMNS = frozenset(f.name for f in fields(Transaction))


class Store:
    """The backend's database; open with ``await store.open()``, close with ``await store.close()``."""

    def __init__(self, path: Path | None, synchronous: str = "FULL", clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._synchronous = synchronous.upper()
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # -- plumbing ---------------------------------------------------------------------------------

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backend-store")
        await self._run(self._open_sync)

    def _open_sync(self) -> None:
        target = ":memory:" if self._path is None else str(self._path)
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(target, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
        self._conn = conn

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._run(self._close_sync)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreFailed("store is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except sqlite3.Error as exc:
            raise StoreFailed(f"database error: {exc}") from exc

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreFailed("store is not open")
        return self._conn

    def _write(self, statements: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._db
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = statements(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    # -- transactions -----------------------------------------------------------------------------

    async def create_transaction(
        self, card_no: str, tid: str, mid: str, amount: int, invoice_no: str | None, *, reff_no: str | None = None
    ) -> Transaction:
        """Insert a NEW transaction, allocating a reff_no unless one is given (one KCI already knows)."""
        now = self._clock()

        def insert(conn: sqlite3.Connection) -> Transaction:
            reff = reff_no if reff_no is not None else self._next_reff_no(conn, now)
            conn.execute(
                "INSERT INTO transactions (reff_no, card_no, tid, mid, amount, invoice_no, status, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (reff, card_no, tid, mid, amount, invoice_no, Status.NEW.value, now, now),
            )
            return self._get(conn, "reff_no", reff)

        return await self._run(lambda: self._write(insert))

    @staticmethod
    def _next_reff_no(conn: sqlite3.Connection, now: float) -> str:
        day = datetime.fromtimestamp(now, UTC).astimezone(JAKARTA).strftime("%Y%m%d")
        row = conn.execute(
            "INSERT INTO reff_sequence (day, last) VALUES (?, 1) ON CONFLICT (day) DO UPDATE SET last = last + 1"
            " RETURNING last",
            (day,),
        ).fetchone()
        sequence = int(row[0])
        if sequence >= 10**SEQUENCE_DIGITS:
            raise StoreFailed(f"reff_no sequence for {day} exhausted")
        return f"{day}{sequence:0{SEQUENCE_DIGITS}d}"

    @staticmethod
    def _get(conn: sqlite3.Connection, column: str, value: str) -> Transaction:
        row = conn.execute(f"SELECT * FROM transactions WHERE {column} = ?", (value,)).fetchone()
        if row is None:
            raise StoreFailed(f"transaction with {column}={value} vanished")
        return Transaction.from_row(row)

    async def update_transaction(
        self, reff_no: str, *, answer: AnswerRecord | None = None, **changes: object
    ) -> Transaction:
        """Apply ``changes`` and, in the same commit, keep ``answer`` as its flow's last answer."""
        unknown = set(changes) - _COLUMNS - {"reff_no", "created_at"}
        if unknown or "reff_no" in changes:
            raise StoreFailed(f"cannot update columns {sorted(unknown | ({'reff_no'} & set(changes)))}")
        values: dict[str, object] = {}
        for key, value in changes.items():
            values[key] = value.value if isinstance(value, Status) else int(value) if isinstance(value, bool) else value
        now = self._clock()
        values["updated_at"] = now
        assignments = ", ".join(f"{key} = ?" for key in values)

        def update(conn: sqlite3.Connection) -> Transaction:
            conn.execute(f"UPDATE transactions SET {assignments} WHERE reff_no = ?", (*values.values(), reff_no))
            if answer is not None:
                self._upsert_answer(conn, answer, now)
            return self._get(conn, "reff_no", reff_no)

        return await self._run(lambda: self._write(update))

    async def find_transaction(self, column: str, value: str) -> Transaction | None:
        if column not in ("reff_no", "reservation_number", "session_id"):
            raise StoreFailed(f"cannot look transactions up by {column}")

        def find() -> Transaction | None:
            row = self._db.execute(
                f"SELECT * FROM transactions WHERE {column} = ? ORDER BY updated_at DESC LIMIT 1", (value,)
            ).fetchone()
            return None if row is None else Transaction.from_row(row)

        return await self._run(find)

    async def transactions(self, card_no: str | None = None) -> list[Transaction]:
        def select() -> list[Transaction]:
            if card_no is None:
                rows = self._db.execute("SELECT * FROM transactions ORDER BY created_at").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM transactions WHERE card_no = ? ORDER BY created_at", (card_no,)
                ).fetchall()
            return [Transaction.from_row(r) for r in rows]

        return await self._run(select)

    # -- answers (idempotent replay) --------------------------------------------------------------

    async def last_answer(self, scope: str) -> StoredAnswer | None:
        def select() -> StoredAnswer | None:
            row = self._db.execute(
                "SELECT endpoint, step, request_hash, message, data, created_at FROM answers WHERE scope = ?",
                (scope,),
            ).fetchone()
            if row is None:
                return None
            return StoredAnswer(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5])

        return await self._run(select)

    async def save_answer(self, answer: AnswerRecord) -> None:
        now = self._clock()
        await self._run(lambda: self._write(lambda conn: self._upsert_answer(conn, answer, now)))

    @staticmethod
    def _upsert_answer(conn: sqlite3.Connection, answer: AnswerRecord, now: float) -> None:
        conn.execute(
            "INSERT INTO answers (scope, endpoint, step, request_hash, message, data, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope) DO UPDATE SET endpoint = excluded.endpoint,"
            " step = excluded.step, request_hash = excluded.request_hash, message = excluded.message,"
            " data = excluded.data, created_at = excluded.created_at",
            (
                answer.scope,
                answer.endpoint,
                answer.step,
                answer.request_hash,
                answer.message,
                json.dumps(answer.data, separators=(",", ":")),
                now,
            ),
        )

    async def confirmation(self, session_id: str) -> StoredAnswer | None:
        def select() -> StoredAnswer | None:
            row = self._db.execute(
                "SELECT request_hash, message, data, created_at FROM confirmations WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            if row is None:
                return None
            return StoredAnswer("confirm", 0, row[0], row[1], json.loads(row[2]), row[3])

        return await self._run(select)

    async def confirm_transaction(
        self, reff_no: str, session_id: str, request_hash: str, message: str, data: dict[str, Any], **changes: object
    ) -> None:
        """Mark SUCCESS and keep the confirm answer, in one database transaction."""
        encoded = json.dumps(data, separators=(",", ":"))
        now = self._clock()
        assignments = ", ".join(f"{key} = ?" for key in changes)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"UPDATE transactions SET status = ?, suspect = 0, updated_at = ?{', ' if changes else ''}"
                f"{assignments} WHERE reff_no = ?",
                (Status.SUCCESS.value, now, *changes.values(), reff_no),
            )
            conn.execute(
                "INSERT OR REPLACE INTO confirmations (session_id, request_hash, message, data, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, request_hash, message, encoded, now),
            )

        unknown = set(changes) - _COLUMNS
        if unknown:
            raise StoreFailed(f"cannot update columns {sorted(unknown)}")
        await self._run(lambda: self._write(write))

    # -- nonces -----------------------------------------------------------------------------------

    async def record_nonce(self, key_id: str, nonce: str, expires_at: float) -> bool:
        now = self._clock()

        def insert(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM nonces WHERE expires_at < ?", (now,))
            cursor = conn.execute(
                "INSERT OR IGNORE INTO nonces (key_id, nonce, expires_at) VALUES (?, ?, ?)", (key_id, nonce, expires_at)
            )
            return cursor.rowcount == 1

        return await self._run(lambda: self._write(insert))
