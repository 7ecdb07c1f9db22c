"""vsmartcard's vpcd protocol, card side: puts a virtual card into a pcscd reader slot over TCP.

pcscd's vpcd driver listens on one port per slot (35963 = ``Virtual PCD 00 00``, 35964 = ``... 00 01``,
more with copied driver files, see ``scripts/pcscd.sh``); a card *connects* to it (pcsc.md):

- every message is a 2-byte big-endian length, then the payload; vpcd writes the two in separate
  TCP segments, so we read exactly (header, then body) and set ``TCP_QUICKACK`` before every recv
  (Linux clears it after use; without it Nagle + delayed ACK cost ~40 ms per APDU);
- a 1-byte payload is a control: ``00`` power off, ``01`` power on, ``02`` reset (no reply),
  ``04`` get ATR (reply: the ATR); anything longer is a command APDU, answered with the response APDU;
- connecting is inserting the card, closing the socket is removing it. When the card leaves the field
  in the middle of an APDU (``Answer.response`` None) we close without replying: pcscd's client gets
  an empty response, then ``SCARD_E_NOT_TRANSACTED``, then ``SCARD_W_REMOVED_CARD``.

:class:`VpcdSlot` runs one blocking socket in a daemon thread per inserted card; ``insert``,
``remove`` and ``swap`` may be called from any thread.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from enum import IntEnum, StrEnum

from .errors import VirtualCardError
from .reader import SlotCard

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963
"""vpcd's first slot (``CHANNELID 0x8C7B``); the second slot is the next port."""
READER_NAMES = {
    35963: "Virtual PCD 00 00",
    35964: "Virtual PCD 00 01",
    36000: "Virtual PCD 2 00 00",
    36001: "Virtual PCD 2 00 01",
}
"""Reader names pcscd gives the vpcd ports (36000/36001: scripts/pcscd.sh's copied driver)."""
SWAP_GAP = 0.7
"""Seconds a swapped-out card stays out: pcscd polls every 0.4-0.5 s and must see the slot empty."""


class VpcdError(VirtualCardError):
    """Root of the vpcd transport's errors."""


class VpcdConnectError(VpcdError):
    """The reader slot did not take the card (pcscd not running, or the port is not a vpcd slot)."""


class VpcdStateError(VpcdError):
    """insert on an occupied slot, or a slot used after close."""


class Control(IntEnum):
    """One-byte vpcd control messages."""

    POWER_OFF = 0x00
    POWER_ON = 0x01
    RESET = 0x02
    GET_ATR = 0x04


class CloseReason(StrEnum):
    """Why a card left its slot."""

    REMOVED = "removed"
    """``remove()``/``swap()`` took it out."""
    CARD_LEFT = "card_left"
    """The card left the field in the middle of an APDU (a fault hook)."""
    PEER_CLOSED = "peer_closed"
    """pcscd closed the connection (stopped or restarted)."""
    ERROR = "error"
    """A socket error or a malformed message."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT``, ``PORT`` or ``HOST`` to ``(host, port)``; defaults 127.0.0.1:35963."""
    if not text:
        return DEFAULT_HOST, DEFAULT_PORT
    host, sep, port = text.rpartition(":")
    if not sep:
        if text.isdigit():
            host, port = "", text
        else:
            return text, DEFAULT_PORT
    try:
        number = int(port)
    except ValueError:
        raise VpcdError(f"vpcd address {text!r}: port {port!r} is not a number") from None
    if not 0 < number < 65536:
        raise VpcdError(f"vpcd address {text!r}: port {number} out of range")
    return host.strip("[]") or DEFAULT_HOST, number


class _PeerClosedError(Exception):
    """Internal: the peer closed the connection."""


def _recv_exact(sock: socket.socket, n: int, at_boundary: bool) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if at_boundary and not buf:
                raise _PeerClosedError
            raise VpcdError(f"vpcd closed the connection after {len(buf)} of {n} byte(s)")
        buf += chunk
    return bytes(buf)


class VpcdSlot:
    """One vpcd reader slot (one TCP port) and the card currently inserted in it, if any."""

    def __init__(self, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, *, connect_timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.card: SlotCard | None = None
        self.close_reason: CloseReason | None = None
        self.apdus = 0
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._removing = threading.Event()
        self._gone = threading.Event()
        self._gone.set()

    def __repr__(self) -> str:
        return f"VpcdSlot({self.host}:{self.port}, {'present' if self.present else 'empty'})"

    @property
    def present(self) -> bool:
        """True while a card is connected to the slot."""
        return not self._gone.is_set()

    def insert(self, card: SlotCard) -> None:
        """Put ``card`` into the slot (connect); retries while pcscd is not listening yet."""
        with self._lock:
            if self.present:
                raise VpcdStateError(f"slot {self.host}:{self.port} already holds a card; remove or swap it")
            sock = self._connect()
            card.power_on()  # entering the field powers the card up
            self.card = card
            self.close_reason = None
            self._sock = sock
            self._removing.clear()
            self._gone.clear()
            self._thread = threading.Thread(target=self._run, args=(sock, card), name=f"vpcd-{self.port}", daemon=True)
            self._thread.start()
        log.info("card inserted into %s:%d", self.host, self.port)

    def remove(self) -> None:
        """Take the card out (close the connection); a no-op on an empty slot."""
        with self._lock:
            sock, thread = self._sock, self._thread
            if sock is None or thread is None:
                return
            self._removing.set()
            with contextlib.suppress(OSError):  # already closed by the other side
                sock.shutdown(socket.SHUT_RDWR)
            thread.join(timeout=5.0)
            self._sock = None
            self._thread = None
        log.info("card removed from %s:%d", self.host, self.port)

    def swap(self, card: SlotCard, gap: float = SWAP_GAP) -> None:
        """Remove the current card, leave the slot empty for ``gap`` seconds, insert ``card``."""
        self.remove()
        time.sleep(gap)
        self.insert(card)

    def wait_gone(self, timeout: float | None = None) -> bool:
        """Wait until the card is out of the slot (for any reason); True when it is."""
        return self._gone.wait(timeout)

    def close(self) -> None:
        self.remove()

    def __enter__(self) -> VpcdSlot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the connection -------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + self.connect_timeout
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
            except OSError as exc:
                retry = exc.errno in (errno.ECONNREFUSED, errno.ECONNRESET)
                if not retry or time.monotonic() >= deadline:
                    raise VpcdConnectError(
                        f"cannot insert a card into vpcd at {self.host}:{self.port}: {exc} "
                        "(is pcscd running with vsmartcard-vpcd? scripts/pcscd.sh start)"
                    ) from exc
                time.sleep(0.05)
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

    def _run(self, sock: socket.socket, card: SlotCard) -> None:
        reason = CloseReason.PEER_CLOSED
        debug = log.isEnabledFor(logging.DEBUG)
        try:
            while True:
                size = int.from_bytes(_recv_exact(sock, 2, at_boundary=True), "big")
                message = _recv_exact(sock, size, at_boundary=False)
                if size == 1:
                    self._control(sock, card, message[0])
                    continue
                if debug:
                    log.debug(">> %s", message.hex())
                self.apdus += 1
                answer = card.transmit(message)
                if answer.delay > 0 and self._removing.wait(answer.delay):
                    break
                if answer.response is None:
                    reason = CloseReason.CARD_LEFT
                    log.info("card left the field of %s:%d during an APDU", self.host, self.port)
                    break
                if debug:
                    log.debug("<< %s", answer.response.hex())
                sock.sendall(len(answer.response).to_bytes(2, "big") + answer.response)
        except _PeerClosedError:
            pass
        except (OSError, VpcdError) as exc:
            if not self._removing.is_set():
                reason = CloseReason.ERROR
                log.warning("vpcd connection %s:%d failed: %s", self.host, self.port, exc)
        finally:
            if self._removing.is_set():
                reason = CloseReason.REMOVED
            sock.close()
            self.close_reason = reason
            self._gone.set()

    def _control(self, sock: socket.socket, card: SlotCard, code: int) -> None:
        if code == Control.GET_ATR:
            atr = card.atr
            sock.sendall(len(atr).to_bytes(2, "big") + atr)
        elif code == Control.POWER_ON:
            card.power_on()
        elif code == Control.POWER_OFF:
            card.power_off()
        elif code == Control.RESET:
            card.reset()
        else:
            log.warning("vpcd %s:%d: unknown control byte %02X ignored", self.host, self.port, code)


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "READER_NAMES",
    "SWAP_GAP",
    "CloseReason",
    "Control",
    "VpcdConnectError",
    "VpcdError",
    "VpcdSlot",
    "VpcdStateError",
    "parse_address",
]
