"""KCI's clock: real time plus an offset that the admin API can move (advance / set)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

WIB = timezone(timedelta(hours=7), "WIB")
"""KCI's local time zone (Jakarta); trx_time and the dates in reservation numbers use it."""


class Clock:
    """Seconds since the epoch, as KCI sees them; ``advance`` and ``set`` never touch the real clock."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def set(self, when: float) -> None:
        self.offset = when - time.time()


def local(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, WIB)


def fmt(ts: float) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in WIB, the seed's trx_time format."""
    return local(ts).strftime("%Y-%m-%d %H:%M:%S")
