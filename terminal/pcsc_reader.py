"""A card reader for the terminal over PC/SC (pyscard): FeliCa frames wrapped in a reader dialect.

``PcscReader.transceive(frame, timeout)`` sends one FeliCa frame (LEN added when missing) and returns
the card's answer with LEN. The frame travels in one of three dialects (:mod:`virtual_card.dialects`
builds and parses the bytes):

- ``direct``: ``FF 00 00 00 Lc <frame>`` (ACR1252U and most CCID contactless readers);
- ``acr122``: ``FF 00 00 00 Lc D4 42 <frame>`` (ACR122U's PN532 InCommunicateThru);
- ``transparent``: ``FF C2 00 01 Lc 5F46 <timer> 95 <frame> 00`` (PC/SC 2.02 Part 3).

Errors map to :mod:`terminal.errors`: no card, a card removed before or during the exchange (an empty
response, ``SCARD_E_NOT_TRANSACTED``, ``SCARD_W_REMOVED_CARD``) raise :class:`CardRemoved`; the
reader's no-answer status (``64 01``, ``D5 43 01``, ``C0 03 xx 64 01``) or a reader that does not
return at all raise :class:`CardTimeout`. After a removal the next call reconnects to whatever card
is in the reader by then.

All PC/SC calls run on one worker thread (pcsc-lite handles are not meant to be shared between
threads), so a transmit that never returns (vpcd has no timeout of its own) cannot hang the caller:
it gets :class:`CardTimeout`, and the reader refuses further calls until the stuck one comes back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from enum import StrEnum
from typing import Any, TypeVar

from smartcard import scard

from virtual_card.dialects import (
    SW,
    ApduError,
    DirectTransmit,
    GetData,
    GetDataKind,
    Part3Response,
    Pn532Command,
    Pn532CommunicateThru,
    Pn532Response,
    Pn532Status,
    ReaderCommand,
    ResponseApdu,
    TransparentExchange,
)
from virtual_card.frames import add_len, has_len

from .errors import CardRemoved, CardTimeout, ReaderError
from .readers import DEFAULT_TIMEOUT

log = logging.getLogger(__name__)

T = TypeVar("T")

CALL_SLACK = 2.0
"""Seconds a PC/SC call may take beyond the card timeout before the reader is declared stuck."""

_REMOVED = frozenset(
    {
        scard.SCARD_W_REMOVED_CARD,
        scard.SCARD_E_NO_SMARTCARD,
        scard.SCARD_E_NOT_TRANSACTED,
        scard.SCARD_W_RESET_CARD,
        scard.SCARD_W_UNPOWERED_CARD,
        scard.SCARD_W_UNRESPONSIVE_CARD,
        scard.SCARD_E_READER_UNAVAILABLE,
    }
)


class Dialect(StrEnum):
    """How frames are wrapped into APDUs."""

    DIRECT = "direct"
    ACR122 = "acr122"
    TRANSPARENT = "transparent"


def _hresult(code: int) -> str:
    return f"{scard.SCardGetErrorMessage(code).strip()} (0x{code & 0xFFFFFFFF:08X})"


class PcscReader:
    """One PC/SC reader, by name (exact, else the first whose name starts with it; None = the first).

    Implements :class:`terminal.readers.CardReader`.
    """

    def __init__(
        self,
        reader: str | None = None,
        *,
        dialect: Dialect | str = Dialect.DIRECT,
        call_slack: float = CALL_SLACK,
    ) -> None:
        self.dialect = Dialect(dialect)
        self.call_slack = call_slack
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pcsc")
        self._stuck: Future[Any] | None = None
        self._card: int | None = None
        self._protocol = 0
        self._context = 0
        self.name = reader or "reader"
        try:
            self._context = self._call(self._establish, call_slack)
            self.name = self._call(lambda: self._resolve(reader), call_slack)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PcscReader({self.name!r}, dialect={self.dialect.value})"

    # -- public API -------------------------------------------------------------------------

    def transceive(self, frame: bytes, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """Send one FeliCa frame, return the card's answer (with LEN)."""
        if not frame:
            raise ReaderError("transceive: empty frame")
        framed = frame if has_len(frame) else add_len(frame)
        command = self._wrap(framed, timeout)
        log.debug(">> %s", framed.hex())
        response = self._call(lambda: self._transmit(command.to_apdu()), timeout + self.call_slack)
        answer = self._unwrap(response)
        log.debug("<< %s", answer.hex())
        return answer

    def card_present(self) -> bool:
        """Whether pcscd sees a card in the reader now."""
        return self._call(self._present, self.call_slack)

    def wait_for_card(self, timeout: float) -> bool:
        """Poll until a card is present (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while not self.card_present():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def wait_for_removal(self, timeout: float) -> bool:
        """Poll until the reader is empty (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while self.card_present():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def idm(self) -> bytes:
        """The IDm of the card in the field (GET DATA ``FF CA 00 00 00``)."""
        return self._get_data(GetDataKind.IDM)

    def pmm(self) -> bytes:
        """The PMm of the card in the field (GET DATA ``FF CA 01 00 00``)."""
        return self._get_data(GetDataKind.PMM)

    def transmit_apdu(self, apdu: bytes, timeout: float = 1.0) -> bytes:
        """Send a raw APDU and return the raw response (data and status word); for diagnostics."""
        return self._call(lambda: self._transmit(apdu), timeout + self.call_slack)

    def close(self) -> None:
        """Disconnect and release the PC/SC context; safe to call twice."""
        if self._stuck is None or self._stuck.done():
            try:
                self._pool.submit(self._release).result(timeout=self.call_slack)
            except FutureTimeout:
                log.warning("PC/SC release did not return within %.1f s", self.call_slack)
        self._pool.shutdown(wait=False)

    def __enter__(self) -> PcscReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- dialects -----------------------------------------------------------------------------

    def _wrap(self, frame: bytes, timeout: float) -> ReaderCommand:
        if self.dialect is Dialect.DIRECT:
            return DirectTransmit(frame)
        if self.dialect is Dialect.ACR122:
            return Pn532CommunicateThru(frame)
        return TransparentExchange.transceive(frame, timeout_us=max(1, round(timeout * 1_000_000)))

    def _unwrap(self, response: bytes) -> bytes:
        try:
            rapdu = ResponseApdu.from_bytes(response)
        except ApduError as exc:
            raise ReaderError(f"{self.name}: {exc}") from exc
        if rapdu.sw == SW.NO_RESPONSE:
            raise CardTimeout(f"{self.name}: no answer from the card (SW 64 01)")
        if not rapdu.ok:
            raise ReaderError(f"{self.name}: reader answered SW {rapdu.sw:04X} to a {self.dialect.value} exchange")
        try:
            answer = self._payload(rapdu.data)
        except ApduError as exc:
            raise ReaderError(f"{self.name}: malformed {self.dialect.value} response: {exc}") from exc
        if not answer:
            raise ReaderError(f"{self.name}: the reader returned an empty card answer")
        return answer

    def _payload(self, data: bytes) -> bytes:
        if self.dialect is Dialect.DIRECT:
            return data
        if self.dialect is Dialect.ACR122:
            pn = Pn532Response.from_bytes(data, Pn532Command.IN_COMMUNICATE_THRU)
            if pn.status == Pn532Status.TIMEOUT:
                raise CardTimeout(f"{self.name}: no answer from the card (PN532 status 01)")
            if pn.status != Pn532Status.OK:
                raise ReaderError(f"{self.name}: PN532 error status {pn.status:02X}")
            return pn.data
        part3 = Part3Response.from_bytes(data)
        index, sw = part3.error
        if sw == SW.NO_RESPONSE:
            raise CardTimeout(f"{self.name}: no answer from the card (C0 object {index}: 64 01)")
        if sw != SW.OK:
            raise ReaderError(f"{self.name}: transparent exchange failed at data object {index}: SW {sw:04X}")
        answer = part3.answer
        if answer is None:
            raise ReaderError(f"{self.name}: transparent exchange response has no 97 object")
        return answer

    def _get_data(self, kind: GetDataKind) -> bytes:
        apdu = GetData(kind).to_apdu()
        rapdu = ResponseApdu.from_bytes(self._call(lambda: self._transmit(apdu), 1.0 + self.call_slack))
        if not rapdu.ok:
            raise ReaderError(f"{self.name}: GET DATA {kind.name} answered SW {rapdu.sw:04X}")
        return rapdu.data

    # -- the worker thread ------------------------------------------------------------------

    def _call(self, fn: Callable[[], T], timeout: float) -> T:
        if self._stuck is not None:
            if not self._stuck.done():
                raise ReaderError(f"{self.name}: a previous PC/SC call has not returned yet")
            self._stuck = None
        future = self._pool.submit(fn)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            self._stuck = future
            raise CardTimeout(f"{self.name}: PC/SC call did not return within {timeout:.1f} s") from None

    @staticmethod
    def _establish() -> int:
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise ReaderError(f"cannot reach pcscd: {_hresult(hresult)} (scripts/pcscd.sh start)")
        return int(context)

    def _resolve(self, wanted: str | None) -> str:
        hresult, names = scard.SCardListReaders(self._context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE or (hresult == scard.SCARD_S_SUCCESS and not names):
            raise ReaderError("pcscd lists no reader")
        if hresult != scard.SCARD_S_SUCCESS:
            raise ReaderError(f"cannot list PC/SC readers: {_hresult(hresult)}")
        readers = [str(n) for n in names]
        if wanted is None:
            return readers[0]
        if wanted in readers:
            return wanted
        for name in readers:
            if name.startswith(wanted):
                return name
        raise ReaderError(f"no PC/SC reader named {wanted!r}; pcscd lists {readers}")

    def _present(self) -> bool:
        hresult, states = scard.SCardGetStatusChange(self._context, 0, [(self.name, scard.SCARD_STATE_UNAWARE)])
        if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
            raise ReaderError(f"{self.name}: status check failed: {_hresult(hresult)}")
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)

    def _connect(self) -> int:
        if self._card is not None:
            return self._card
        hresult, card, protocol = scard.SCardConnect(
            self._context, self.name, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        )
        if hresult in _REMOVED:
            raise CardRemoved(f"{self.name}: no card in the reader ({_hresult(hresult)})")
        if hresult != scard.SCARD_S_SUCCESS:
            raise ReaderError(f"{self.name}: connect failed: {_hresult(hresult)}")
        self._card, self._protocol = int(card), int(protocol)
        return self._card

    def _drop_card(self) -> None:
        if self._card is not None:
            scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)
            self._card = None

    def _transmit(self, apdu: bytes) -> bytes:
        card = self._connect()
        hresult, response = scard.SCardTransmit(card, self._protocol, list(apdu))
        if hresult in _REMOVED:
            self._drop_card()
            raise CardRemoved(f"{self.name}: card removed ({_hresult(hresult)})")
        if hresult != scard.SCARD_S_SUCCESS:
            self._drop_card()
            raise ReaderError(f"{self.name}: transmit failed: {_hresult(hresult)}")
        if not response:  # vpcd: the card went away without answering
            self._drop_card()
            raise CardRemoved(f"{self.name}: card removed during the exchange (empty response)")
        return bytes(response)

    def _release(self) -> None:
        self._drop_card()
        if self._context:
            scard.SCardReleaseContext(self._context)
            self._context = 0


__all__ = ["Dialect", "PcscReader"]
