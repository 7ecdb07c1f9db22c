"""FeliCa frame codec: the one place where card frames are turned into typed values and back.

A *frame* is ``LEN | code | ...`` with no preamble, sync or CRC (felica.md 1.1); the *payload* is
the same without LEN. KCI sends commands as payloads (``00ffff0100`` is a Polling payload), readers
add LEN. :func:`unframe` accepts both: LEN is present when ``data[0] == len(data)``. Every layout
below is chosen so that no payload can be mistaken for a frame (tested for every type).

Multi-byte fields: service, area and node codes little-endian; system codes big-endian; block
numbers in 3-byte block list elements little-endian (tt3.py). The authenticated Read/Write (14/15,
16/17) and Authentication1/2 (10-13) bodies are this project's documented simulation, see
``docs/protocol.md``; they keep FeliCa's shape but are not Sony's format.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Self, TypeVar

from .errors import FrameError
from .types import CommandCode, IDm, PMm

BLOCK_SIZE = 16
MAC_SIZE = 8
CHALLENGE_SIZE = 16
MAX_FRAME = 255


def add_len(payload: bytes) -> bytes:
    """Prefix a payload with its LEN byte (LEN counts itself)."""
    if not payload:
        raise FrameError("empty payload: a frame needs at least a command code")
    if len(payload) + 1 > MAX_FRAME:
        raise FrameError(f"payload of {len(payload)} bytes does not fit in a frame (max {MAX_FRAME - 1})")
    return bytes([len(payload) + 1]) + payload


def has_len(data: bytes) -> bool:
    """True when ``data`` starts with its own LEN byte."""
    return len(data) > 1 and data[0] == len(data)


def unframe(data: bytes) -> bytes:
    """Return the payload of ``data``, which may carry its LEN byte or not."""
    if not data:
        raise FrameError("empty frame")
    return data[1:] if has_len(data) else bytes(data)


class _Cursor:
    """Exact reads over a payload; every short read names the field and its offset."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int, field: str) -> bytes:
        if self.pos + n > len(self.data):
            raise FrameError(
                f"{self.what}: {field} needs {n} byte(s) at offset {self.pos}, only {len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16be(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "big")

    def u16le(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little")

    def idm(self) -> IDm:
        return IDm(self.take(8, "IDm"))

    def rest(self) -> bytes:
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk

    def end(self) -> None:
        if self.pos != len(self.data):
            raise FrameError(f"{self.what}: {len(self.data) - self.pos} unexpected byte(s) at offset {self.pos}")


# --------------------------------------------------------------------------------------------
# Value objects
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceCode:
    """A service code: ``number << 6 | attribute``, little-endian on the wire (felica.md 1.5)."""

    number: int
    attribute: int
    _wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.number < 1024 or not 0 <= self.attribute < 64:
            raise FrameError(f"service number {self.number} / attribute {self.attribute:#x} out of range")
        object.__setattr__(self, "_wire", ((self.number << 6) | self.attribute).to_bytes(2, "little"))

    @classmethod
    def from_int(cls, code: int) -> Self:
        if not 0 <= code <= 0xFFFF:
            raise FrameError(f"service code {code:#x} is not 16 bits")
        return cls(code >> 6, code & 0x3F)

    @property
    def code(self) -> int:
        return (self.number << 6) | self.attribute

    @property
    def needs_key(self) -> bool:
        """Even attributes need authentication; odd ones are readable without a key."""
        return self.attribute & 1 == 0

    @property
    def is_purse(self) -> bool:
        return 0x10 <= self.attribute <= 0x17

    @property
    def is_cyclic(self) -> bool:
        return 0x0C <= self.attribute <= 0x0F

    @property
    def is_read_only(self) -> bool:
        return self.attribute in (0x0A, 0x0B, 0x0E, 0x0F, 0x16, 0x17)

    def to_bytes(self) -> bytes:
        return self._wire

    def __str__(self) -> str:
        return f"{self.code:04X}"


@dataclass(frozen=True, slots=True)
class BlockListElement:
    """One block list element: D0 = length flag | access mode | service index, then the block number.

    The 2-byte form (D0 bit 7 set) carries a block number below 256; the 3-byte form carries a
    little-endian 16-bit block number (felica.md 1.5).
    """

    service_index: int
    block: int
    access_mode: int = 0
    long_form: bool = False
    _wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.service_index < 16:
            raise FrameError(f"block list element: service index {self.service_index} not in 0..15")
        if not 0 <= self.access_mode < 8:
            raise FrameError(f"block list element: access mode {self.access_mode} not in 0..7")
        if not 0 <= self.block <= 0xFFFF or (self.block > 0xFF and not self.long_form):
            raise FrameError(f"block list element: block {self.block} needs the 3-byte form")
        d0 = (self.access_mode << 4) | self.service_index
        wire = bytes([d0]) + self.block.to_bytes(2, "little") if self.long_form else bytes([0x80 | d0, self.block])
        object.__setattr__(self, "_wire", wire)

    @classmethod
    def of(cls, service_index: int, block: int) -> Self:
        return cls(service_index, block, 0, block > 0xFF)

    def to_bytes(self) -> bytes:
        return self._wire

    @classmethod
    def read_from(cls, cur: _Cursor, index: int) -> Self:
        d0 = cur.u8(f"block list element {index} D0")
        long_form = not d0 & 0x80
        block = (
            cur.u16le(f"block list element {index} block") if long_form else cur.u8(f"block list element {index} block")
        )
        if cls is BlockListElement:
            return _element(d0, block, long_form)  # type: ignore[return-value]
        return cls(d0 & 0x0F, block, (d0 >> 4) & 0x07, long_form)


def _services_bytes(services: tuple[ServiceCode, ...]) -> bytes:
    return bytes([len(services)]) + b"".join(s.to_bytes() for s in services)


@functools.lru_cache(maxsize=4096)
def _service(code: int) -> ServiceCode:
    """Service codes are immutable values: parse each one once."""
    return ServiceCode.from_int(code)


@functools.lru_cache(maxsize=4096)
def _element(d0: int, block: int, long_form: bool) -> BlockListElement:
    return BlockListElement(d0 & 0x0F, block, (d0 >> 4) & 0x07, long_form)


def _read_services(cur: _Cursor) -> tuple[ServiceCode, ...]:
    n = cur.u8("number of services")
    return tuple(_service(cur.u16le(f"service code {i}")) for i in range(n))


def _blocks_bytes(blocks: tuple[BlockListElement, ...]) -> bytes:
    return bytes([len(blocks)]) + b"".join(b.to_bytes() for b in blocks)


def _read_blocks(cur: _Cursor) -> tuple[BlockListElement, ...]:
    m = cur.u8("number of blocks")
    data, out = cur.data, []
    for i in range(m):
        pos = cur.pos
        size = 2 if pos < len(data) and data[pos] & 0x80 else 3
        if pos + size > len(data):  # short: let the cursor name the field and offset
            out.append(BlockListElement.read_from(cur, i))
            continue
        d0 = data[pos]
        block = data[pos + 1] if size == 2 else data[pos + 1] | data[pos + 2] << 8
        out.append(_element(d0, block, size == 3))
        cur.pos = pos + size
    return tuple(out)


def _split_blocks(data: bytes, m: int, what: str) -> tuple[bytes, ...]:
    if len(data) != BLOCK_SIZE * m:
        raise FrameError(f"{what}: {m} block(s) need {BLOCK_SIZE * m} data bytes, got {len(data)}")
    return tuple(data[i * BLOCK_SIZE : (i + 1) * BLOCK_SIZE] for i in range(m))


def _check_idm(idm: bytes) -> None:
    if len(idm) != 8:
        raise FrameError(f"IDm must be 8 bytes, got {len(idm)}")


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


class Frame:
    """Base of every typed frame: ``CODE`` identifies it, ``body()`` is the payload after the code."""

    CODE: ClassVar[int]
    NAME: ClassVar[str]

    def body(self) -> bytes:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The payload, without LEN (the form KCI sends)."""
        return bytes([self.CODE]) + self.body()

    def to_frame(self) -> bytes:
        """The frame, with LEN (the form a card sees)."""
        return add_len(self.to_bytes())

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        raise NotImplementedError

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Parse a frame or payload of this type; raises :class:`FrameError` naming what is wrong."""
        payload = unframe(data)
        if payload[0] != cls.CODE:
            raise FrameError(f"{cls.NAME}: code byte is {payload[0]:#04x}, expected {cls.CODE:#04x}")
        cur = _Cursor(payload, cls.NAME)
        cur.pos = 1
        frame = cls.parse_body(cur)
        cur.end()
        return frame


@dataclass(frozen=True, slots=True)
class Polling(Frame):
    """Polling request ``00 SC(2, BE) RC TSN`` (felica.md 1.2)."""

    CODE: ClassVar[int] = CommandCode.POLLING
    NAME: ClassVar[str] = "Polling"
    system_code: int = 0xFFFF
    request_code: int = 0
    time_slot: int = 0

    def body(self) -> bytes:
        return struct.pack(">HBB", self.system_code, self.request_code, self.time_slot)

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        return cls(cur.u16be("system code"), cur.u8("request code"), cur.u8("time slot"))


@dataclass(frozen=True, slots=True)
class PollingResponse(Frame):
    """Polling response ``01 IDm PMm [RD(2)]``."""

    CODE: ClassVar[int] = CommandCode.POLLING + 1
    NAME: ClassVar[str] = "Polling response"
    idm: IDm
    pmm: PMm
    request_data: bytes = b""

    def body(self) -> bytes:
        return self.idm + self.pmm + self.request_data

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm, pmm = cur.idm(), PMm(cur.take(8, "PMm"))
        rd = cur.rest()
        if len(rd) not in (0, 2):
            raise FrameError(f"Polling response: request data must be 0 or 2 bytes, got {len(rd)}")
        return cls(idm, pmm, rd)

    @property
    def system_code(self) -> int | None:
        """The system code when the Polling asked for it (request code 01)."""
        return int.from_bytes(self.request_data, "big") if self.request_data else None


@dataclass(frozen=True, slots=True)
class RequestService(Frame):
    """Request Service ``02 IDm n node[2n, LE]``."""

    CODE: ClassVar[int] = CommandCode.REQUEST_SERVICE
    NAME: ClassVar[str] = "Request Service"
    idm: IDm
    nodes: tuple[int, ...]

    def body(self) -> bytes:
        return self.idm + bytes([len(self.nodes)]) + b"".join(n.to_bytes(2, "little") for n in self.nodes)

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm = cur.idm()
        n = cur.u8("number of nodes")
        return cls(idm, tuple(cur.u16le(f"node {i}") for i in range(n)))


@dataclass(frozen=True, slots=True)
class RequestServiceResponse(Frame):
    """Request Service response ``03 IDm n keyver[2n, LE]`` (``FFFF`` = no such node)."""

    CODE: ClassVar[int] = CommandCode.REQUEST_SERVICE + 1
    NAME: ClassVar[str] = "Request Service response"
    idm: IDm
    key_versions: tuple[int, ...]

    def body(self) -> bytes:
        kv = b"".join(k.to_bytes(2, "little") for k in self.key_versions)
        return self.idm + bytes([len(self.key_versions)]) + kv

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm = cur.idm()
        n = cur.u8("number of nodes")
        return cls(idm, tuple(cur.u16le(f"key version {i}") for i in range(n)))


@dataclass(frozen=True, slots=True)
class RequestResponse(Frame):
    """Request Response ``04 IDm``."""

    CODE: ClassVar[int] = CommandCode.REQUEST_RESPONSE
    NAME: ClassVar[str] = "Request Response"
    idm: IDm

    def body(self) -> bytes:
        return self.idm

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        return cls(cur.idm())


@dataclass(frozen=True, slots=True)
class RequestResponseResponse(Frame):
    """Request Response response ``05 IDm mode``."""

    CODE: ClassVar[int] = CommandCode.REQUEST_RESPONSE + 1
    NAME: ClassVar[str] = "Request Response response"
    idm: IDm
    mode: int

    def body(self) -> bytes:
        return self.idm + bytes([self.mode])

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        return cls(cur.idm(), cur.u8("mode"))


@dataclass(frozen=True, slots=True)
class ReadWithoutEncryption(Frame):
    """Read Without Encryption ``06 IDm n SC[2n] m BLE...``."""

    CODE: ClassVar[int] = CommandCode.READ_WITHOUT_ENCRYPTION
    NAME: ClassVar[str] = "Read Without Encryption"
    idm: IDm
    services: tuple[ServiceCode, ...]
    blocks: tuple[BlockListElement, ...]

    def body(self) -> bytes:
        return self.idm + _services_bytes(self.services) + _blocks_bytes(self.blocks)

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        return cls(cur.idm(), _read_services(cur), _read_blocks(cur))


@dataclass(frozen=True, slots=True)
class ReadWithoutEncryptionResponse(Frame):
    """Read response ``07 IDm SF1 SF2 [m data(16m)]``: data only when SF1 is 00."""

    CODE: ClassVar[int] = CommandCode.READ_WITHOUT_ENCRYPTION + 1
    NAME: ClassVar[str] = "Read Without Encryption response"
    idm: IDm
    sf1: int
    sf2: int
    blocks: tuple[bytes, ...] = ()

    def body(self) -> bytes:
        head = self.idm + bytes([self.sf1, self.sf2])
        if self.sf1:
            return head
        return head + bytes([len(self.blocks)]) + b"".join(self.blocks)

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm, sf1, sf2 = cur.idm(), cur.u8("status flag 1"), cur.u8("status flag 2")
        if sf1:
            return cls(idm, sf1, sf2)
        m = cur.u8("number of blocks")
        return cls(idm, sf1, sf2, _split_blocks(cur.rest(), m, cls.NAME))


@dataclass(frozen=True, slots=True)
class WriteWithoutEncryption(Frame):
    """Write Without Encryption ``08 IDm n SC[2n] m BLE... data(16m)``."""

    CODE: ClassVar[int] = CommandCode.WRITE_WITHOUT_ENCRYPTION
    NAME: ClassVar[str] = "Write Without Encryption"
    idm: IDm
    services: tuple[ServiceCode, ...]
    blocks: tuple[BlockListElement, ...]
    data: tuple[bytes, ...]

    def body(self) -> bytes:
        return self.idm + _services_bytes(self.services) + _blocks_bytes(self.blocks) + b"".join(self.data)

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm, services, blocks = cur.idm(), _read_services(cur), _read_blocks(cur)
        return cls(idm, services, blocks, _split_blocks(cur.rest(), len(blocks), cls.NAME))


@dataclass(frozen=True, slots=True)
class StatusResponse(Frame):
    """Status-only response ``code IDm SF1 SF2`` (Write Without Encryption answers this way)."""

    CODE: ClassVar[int] = CommandCode.WRITE_WITHOUT_ENCRYPTION + 1
    NAME: ClassVar[str] = "Write Without Encryption response"
    idm: IDm
    sf1: int
    sf2: int

    def body(self) -> bytes:
        return self.idm + bytes([self.sf1, self.sf2])

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        return cls(cur.idm(), cur.u8("status flag 1"), cur.u8("status flag 2"))


WriteWithoutEncryptionResponse = StatusResponse


@dataclass(frozen=True, slots=True)
class SearchServiceCode(Frame):
    """Search Service Code ``0A IDm index(2, LE)``."""

    CODE: ClassVar[int] = CommandCode.SEARCH_SERVICE_CODE
    NAME: ClassVar[str] = "Search Service Code"
    idm: IDm
    index: int

    def body(self) -> bytes:
        return self.idm + self.index.to_bytes(2, "little")

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        return cls(cur.idm(), cur.u16le("index"))


@dataclass(frozen=True, slots=True)
class SearchServiceCodeResponse(Frame):
    """Search Service Code response ``0B IDm code(2) [end(2)]``: an area has an end code; ``FFFF`` ends."""

    CODE: ClassVar[int] = CommandCode.SEARCH_SERVICE_CODE + 1
    NAME: ClassVar[str] = "Search Service Code response"
    idm: IDm
    code: int
    end: int | None = None

    def body(self) -> bytes:
        tail = b"" if self.end is None else self.end.to_bytes(2, "little")
        return self.idm + self.code.to_bytes(2, "little") + tail

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm, code = cur.idm(), cur.u16le("code")
        rest = cur.rest()
        if len(rest) not in (0, 2):
            raise FrameError(f"{cls.NAME}: area end code must be 2 bytes, got {len(rest)}")
        return cls(idm, code, int.from_bytes(rest, "little") if rest else None)


@dataclass(frozen=True, slots=True)
class RequestSystemCode(Frame):
    """Request System Code ``0C IDm``."""

    CODE: ClassVar[int] = CommandCode.REQUEST_SYSTEM_CODE
    NAME: ClassVar[str] = "Request System Code"
    idm: IDm

    def body(self) -> bytes:
        return self.idm

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        return cls(cur.idm())


@dataclass(frozen=True, slots=True)
class RequestSystemCodeResponse(Frame):
    """Request System Code response ``0D IDm n SC[2n, BE]``."""

    CODE: ClassVar[int] = CommandCode.REQUEST_SYSTEM_CODE + 1
    NAME: ClassVar[str] = "Request System Code response"
    idm: IDm
    system_codes: tuple[int, ...]

    def body(self) -> bytes:
        codes = b"".join(c.to_bytes(2, "big") for c in self.system_codes)
        return self.idm + bytes([len(self.system_codes)]) + codes

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm = cur.idm()
        n = cur.u8("number of system codes")
        return cls(idm, tuple(cur.u16be(f"system code {i}") for i in range(n)))


@dataclass(frozen=True, slots=True)
class Authentication1(Frame):
    """Authentication1 ``10 IDm nA area[2nA, LE] nS SC[2nS, LE] Rh(16)`` (simulated; docs/protocol.md)."""

    CODE: ClassVar[int] = CommandCode.AUTHENTICATION1
    NAME: ClassVar[str] = "Authentication1"
    idm: IDm
    areas: tuple[int, ...]
    services: tuple[ServiceCode, ...]
    host_challenge: bytes

    def body(self) -> bytes:
        areas = bytes([len(self.areas)]) + b"".join(a.to_bytes(2, "little") for a in self.areas)
        return self.idm + areas + _services_bytes(self.services) + self.host_challenge

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm = cur.idm()
        n_areas = cur.u8("number of areas")
        areas = tuple(cur.u16le(f"area code {i}") for i in range(n_areas))
        services = _read_services(cur)
        return cls(idm, areas, services, cur.take(CHALLENGE_SIZE, "host challenge"))


@dataclass(frozen=True, slots=True)
class Authentication1Response(Frame):
    """Authentication1 response ``11 IDm Rc(16) card_proof(16)``."""

    CODE: ClassVar[int] = CommandCode.AUTHENTICATION1 + 1
    NAME: ClassVar[str] = "Authentication1 response"
    idm: IDm
    card_challenge: bytes
    card_proof: bytes

    def body(self) -> bytes:
        return self.idm + self.card_challenge + self.card_proof

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        return cls(cur.idm(), cur.take(CHALLENGE_SIZE, "card challenge"), cur.take(16, "card proof"))


@dataclass(frozen=True, slots=True)
class Authentication2(Frame):
    """Authentication2 ``12 IDm host_proof(16)``."""

    CODE: ClassVar[int] = CommandCode.AUTHENTICATION2
    NAME: ClassVar[str] = "Authentication2"
    idm: IDm
    host_proof: bytes

    def body(self) -> bytes:
        return self.idm + self.host_proof

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        return cls(cur.idm(), cur.take(16, "host proof"))


@dataclass(frozen=True, slots=True)
class Authentication2Response(Frame):
    """Authentication2 response ``13 IDm confirmation(16)``."""

    CODE: ClassVar[int] = CommandCode.AUTHENTICATION2 + 1
    NAME: ClassVar[str] = "Authentication2 response"
    idm: IDm
    confirmation: bytes

    def body(self) -> bytes:
        return self.idm + self.confirmation

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        return cls(cur.idm(), cur.take(16, "confirmation"))


@dataclass(frozen=True, slots=True)
class AuthRead(Frame):
    """Authenticated Read ``14 IDm seq(2, BE) n SC[2n] m BLE... MAC(8)``."""

    CODE: ClassVar[int] = CommandCode.READ
    NAME: ClassVar[str] = "authenticated Read"
    idm: IDm
    seq: int
    services: tuple[ServiceCode, ...]
    blocks: tuple[BlockListElement, ...]
    mac: bytes = bytes(MAC_SIZE)

    def unsigned(self) -> bytes:
        """The bytes the MAC covers: the payload up to the MAC."""
        return (
            bytes([self.CODE])
            + self.idm
            + self.seq.to_bytes(2, "big")
            + _services_bytes(self.services)
            + _blocks_bytes(self.blocks)
        )

    def body(self) -> bytes:
        return self.unsigned()[1:] + self.mac

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm, seq = cur.idm(), cur.u16be("sequence number")
        services, blocks = _read_services(cur), _read_blocks(cur)
        return cls(idm, seq, services, blocks, cur.take(MAC_SIZE, "MAC"))


@dataclass(frozen=True, slots=True)
class AuthReadResponse(Frame):
    """Authenticated Read response ``15 IDm SF1 SF2 seq(2) m data(16m) MAC(8)`` (m = 0 on error)."""

    CODE: ClassVar[int] = CommandCode.READ + 1
    NAME: ClassVar[str] = "authenticated Read response"
    idm: IDm
    sf1: int
    sf2: int
    seq: int
    blocks: tuple[bytes, ...] = ()
    mac: bytes = bytes(MAC_SIZE)

    def unsigned(self) -> bytes:
        head = bytes([self.CODE]) + self.idm + bytes([self.sf1, self.sf2]) + self.seq.to_bytes(2, "big")
        return head + bytes([len(self.blocks)]) + b"".join(self.blocks)

    def body(self) -> bytes:
        return self.unsigned()[1:] + self.mac

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm, sf1, sf2 = cur.idm(), cur.u8("status flag 1"), cur.u8("status flag 2")
        seq, m = cur.u16be("sequence number"), cur.u8("number of blocks")
        data = cur.take(BLOCK_SIZE * m, "block data")
        return cls(idm, sf1, sf2, seq, _split_blocks(data, m, cls.NAME), cur.take(MAC_SIZE, "MAC"))


@dataclass(frozen=True, slots=True)
class AuthWrite(Frame):
    """Authenticated Write ``16 IDm seq(2, BE) n SC[2n] m BLE... data(16m) MAC(8)``."""

    CODE: ClassVar[int] = CommandCode.WRITE
    NAME: ClassVar[str] = "authenticated Write"
    idm: IDm
    seq: int
    services: tuple[ServiceCode, ...]
    blocks: tuple[BlockListElement, ...]
    data: tuple[bytes, ...]
    mac: bytes = bytes(MAC_SIZE)

    def unsigned(self) -> bytes:
        return (
            bytes([self.CODE])
            + self.idm
            + self.seq.to_bytes(2, "big")
            + _services_bytes(self.services)
            + _blocks_bytes(self.blocks)
            + b"".join(self.data)
        )

    def body(self) -> bytes:
        return self.unsigned()[1:] + self.mac

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm, seq = cur.idm(), cur.u16be("sequence number")
        services, blocks = _read_services(cur), _read_blocks(cur)
        data = cur.take(BLOCK_SIZE * len(blocks), "block data")
        return cls(idm, seq, services, blocks, _split_blocks(data, len(blocks), cls.NAME), cur.take(MAC_SIZE, "MAC"))


@dataclass(frozen=True, slots=True)
class AuthWriteResponse(Frame):
    """Authenticated Write response ``17 IDm SF1 SF2 seq(2) MAC(8)``."""

    CODE: ClassVar[int] = CommandCode.WRITE + 1
    NAME: ClassVar[str] = "authenticated Write response"
    idm: IDm
    sf1: int
    sf2: int
    seq: int
    mac: bytes = bytes(MAC_SIZE)

    def unsigned(self) -> bytes:
        return bytes([self.CODE]) + self.idm + bytes([self.sf1, self.sf2]) + self.seq.to_bytes(2, "big")

    def body(self) -> bytes:
        return self.unsigned()[1:] + self.mac

    @classmethod
    def parse_body(cls, cur: _Cursor) -> Self:
        idm, sf1, sf2 = cur.idm(), cur.u8("status flag 1"), cur.u8("status flag 2")
        return cls(idm, sf1, sf2, cur.u16be("sequence number"), cur.take(MAC_SIZE, "MAC"))


COMMANDS: dict[int, type[Frame]] = {
    f.CODE: f
    for f in (
        Polling,
        RequestService,
        RequestResponse,
        ReadWithoutEncryption,
        WriteWithoutEncryption,
        SearchServiceCode,
        RequestSystemCode,
        Authentication1,
        Authentication2,
        AuthRead,
        AuthWrite,
    )
}

RESPONSES: dict[int, type[Frame]] = {
    f.CODE: f
    for f in (
        PollingResponse,
        RequestServiceResponse,
        RequestResponseResponse,
        ReadWithoutEncryptionResponse,
        WriteWithoutEncryptionResponse,
        SearchServiceCodeResponse,
        RequestSystemCodeResponse,
        Authentication1Response,
        Authentication2Response,
        AuthReadResponse,
        AuthWriteResponse,
    )
}


def parse_command(data: bytes) -> Frame:
    """Parse a command frame or payload into its typed frame."""
    payload = unframe(data)
    kind = COMMANDS.get(payload[0])
    if kind is None:
        raise FrameError(f"unknown command code {payload[0]:#04x} at offset 0")
    return kind.from_bytes(payload)


F = TypeVar("F", bound=Frame)


def parse_response(data: bytes, kind: type[F]) -> F:
    """Parse a card answer (with or without LEN) as the expected response type."""
    return kind.from_bytes(data)


def describe(data: bytes, parse: Callable[[bytes], Frame] = parse_command) -> str:
    """A one-line human description of a frame, for logs; never raises."""
    try:
        frame = parse(data)
    except FrameError as exc:
        return f"<unparsable: {exc}>"
    return frame.NAME


__all__ = [
    "BLOCK_SIZE",
    "CHALLENGE_SIZE",
    "COMMANDS",
    "MAC_SIZE",
    "RESPONSES",
    "AuthRead",
    "AuthReadResponse",
    "AuthWrite",
    "AuthWriteResponse",
    "Authentication1",
    "Authentication1Response",
    "Authentication2",
    "Authentication2Response",
    "BlockListElement",
    "Frame",
    "Polling",
    "PollingResponse",
    "ReadWithoutEncryption",
    "ReadWithoutEncryptionResponse",
    "RequestResponse",
    "RequestResponseResponse",
    "RequestService",
    "RequestServiceResponse",
    "RequestSystemCode",
    "RequestSystemCodeResponse",
    "SearchServiceCode",
    "SearchServiceCodeResponse",
    "ServiceCode",
    "StatusResponse",
    "WriteWithoutEncryption",
    "WriteWithoutEncryptionResponse",
    "add_len",
    "has_len",
    "parse_command",
    "parse_response",
    "unframe",
]
