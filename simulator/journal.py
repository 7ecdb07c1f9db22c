"""The request journal: each KCI call's request, answer, fault and timing, newest last (a ring)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class Entry:
    id: int
    time: float
    operation: str
    step: int | None
    card_no: str | None
    session_id: str | None
    partner_id: str | None
    request: Any
    status: int | None
    """HTTP status sent, None when no answer was sent (reset, hang)."""
    response: Any
    code: int | None
    fault: str | None
    duration_ms: float


class Journal:
    def __init__(self, enabled: bool = True, size: int = 10_000) -> None:
        self.enabled = enabled
        self.entries: deque[Entry] = deque(maxlen=size)
        self._next = 0

    def add(self, **fields: Any) -> None:
        if not self.enabled:
            return
        self._next += 1
        self.entries.append(Entry(id=self._next, **fields))

    def clear(self) -> None:
        self.entries.clear()

    def query(
        self,
        *,
        card_no: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        step: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        def keep(entries: Iterator[Entry]) -> Iterator[Entry]:
            for e in entries:
                if card_no is not None and e.card_no != card_no:
                    continue
                if session_id is not None and e.session_id != session_id:
                    continue
                if operation is not None and e.operation != operation:
                    continue
                if step is not None and e.step != step:
                    continue
                yield e

        found = [asdict(e) for e in keep(iter(self.entries))]
        return found[-limit:] if limit else found
