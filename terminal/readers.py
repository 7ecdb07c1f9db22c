"""Card readers: where the terminal sends FeliCa frames.

Every reader has the same small interface (:class:`CardReader`): ``transceive(frame, timeout)``
returns the card's answer (with LEN) or raises :class:`~terminal.errors.CardRemoved` /
:class:`~terminal.errors.CardTimeout`; ``card_present()`` tells whether a card is in the field.

- :class:`InProcessReader`: a :class:`~virtual_card.card.KmtCard` in this process (fastest; tests,
  load tests). It honours the card's fault hooks: a delay longer than the timeout is a timeout, a
  removal is a removal.
- :class:`HttpReader`: the HTTP virtual reader of ``kmt up`` (``/reader/...``), for frontends in
  development that cannot load Python.
- :class:`terminal.pcsc_reader.PcscReader`: a real PC/SC reader through pyscard (the virtual card
  served by vpcd, or hardware).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Protocol, runtime_checkable

from virtual_card.card import KmtCard
from virtual_card.frames import add_len, has_len

from .errors import CardRemoved, CardTimeout, ReaderError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 1.0
"""Seconds to wait for a card answer (FeliCa answers in milliseconds; PMm allows far less)."""


@runtime_checkable
class CardReader(Protocol):
    def transceive(self, frame: bytes, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """Send one frame (LEN added when missing), return the answer with LEN."""
        ...

    def card_present(self) -> bool: ...


def with_len(frame: bytes) -> bytes:
    return frame if has_len(frame) else add_len(frame)


class InProcessReader:
    """A reader whose field holds a :class:`KmtCard` of this process (or nothing)."""

    def __init__(self, card: KmtCard | None = None, *, sleep: bool = True) -> None:
        self._card = card
        self._sleep = sleep
        self._lock = threading.Lock()

    @property
    def card(self) -> KmtCard | None:
        return self._card

    def insert(self, card: KmtCard) -> None:
        with self._lock:
            self._card = card
            card.power_on()

    def remove(self) -> KmtCard | None:
        with self._lock:
            card, self._card = self._card, None
            if card is not None:
                card.power_off()
            return card

    def card_present(self) -> bool:
        card = self._card
        return card is not None and card.powered

    def exchange(self, frame: bytes, timeout: float = DEFAULT_TIMEOUT) -> tuple[float, bytes | ReaderError]:
        """Run one frame without waiting: (seconds the answer is held back, answer or error).

        Async transports (the HTTP virtual reader) wait with ``asyncio.sleep``; :meth:`transceive` sleeps.
        """
        with self._lock:
            card = self._card
            if card is None or not card.powered:
                return 0.0, CardRemoved("no card in the reader's field")
            reply = card.process(with_len(frame))
            if reply.removed:
                self._card = None
                return 0.0, CardRemoved("the card left the field during the exchange")
        debug = log.isEnabledFor(logging.DEBUG)  # the hex of every frame is not free: only when shown
        if debug:
            log.debug(">> %s", frame.hex())
        if reply.delay > timeout:
            return timeout, CardTimeout(f"no answer within {timeout:.3f} s (the card needs {reply.delay:.3f} s)")
        if reply.data is None:
            return 0.0, CardTimeout(f"the card did not answer {frame[:2].hex()}...")
        if debug:
            log.debug("<< %s", reply.data.hex())
        return reply.delay, reply.data

    def transceive(self, frame: bytes, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        wait, outcome = self.exchange(frame, timeout)
        if wait and self._sleep:
            time.sleep(wait)
        if isinstance(outcome, ReaderError):
            raise outcome
        return outcome


class HttpReader:
    """Client of the HTTP virtual reader (``kmt up``): ``POST {base}/transceive`` and ``GET {base}/status``."""

    def __init__(self, base_url: str, *, slot: str = "0") -> None:
        self._base = base_url.rstrip("/")
        self._slot = slot

    def _call(self, method: str, path: str, body: dict[str, object] | None, timeout: float) -> dict[str, object]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 - the URL is the configured reader endpoint
            f"{self._base}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout + 2.0) as resp:  # noqa: S310
                payload = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ReaderError(f"virtual reader {path}: HTTP {exc.code}: {detail[:200]}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ReaderError(f"virtual reader at {self._base} unreachable: {exc}") from exc
        if not isinstance(payload, dict):
            raise ReaderError(f"virtual reader {path}: answer is not a JSON object")
        return payload

    def card_present(self) -> bool:
        status = self._call("GET", f"/slots/{self._slot}", None, DEFAULT_TIMEOUT)
        return bool(status.get("present"))

    def transceive(self, frame: bytes, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        payload = self._call(
            "POST", f"/slots/{self._slot}/transceive", {"frame": with_len(frame).hex(), "timeout": timeout}, timeout
        )
        status = payload.get("status")
        if status == "removed":
            raise CardRemoved(str(payload.get("detail", "the card left the field")))
        if status == "timeout":
            raise CardTimeout(str(payload.get("detail", f"no answer within {timeout} s")))
        answer = payload.get("answer")
        if status != "ok" or not isinstance(answer, str):
            raise ReaderError(f"virtual reader transceive: unexpected answer {payload!r}"[:200])
        try:
            return bytes.fromhex(answer)
        except ValueError as exc:
            raise ReaderError(f"virtual reader transceive: answer is not hex: {answer[:40]!r}") from exc
