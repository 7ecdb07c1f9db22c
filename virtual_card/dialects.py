"""Reader dialects: the pseudo-APDUs that PC/SC frontends use to reach a FeliCa card, as typed values.

This is the one place where reader APDUs are turned into values and back, in both directions: the
virtual reader (:mod:`virtual_card.reader`) parses commands and builds responses, a terminal
(``terminal.pcsc_reader``) builds commands and parses responses. Byte layouts follow felica.md 4:

=====================================  ==========================================================
command                                response
=====================================  ==========================================================
``FF CA 00 00 00`` GET DATA (IDm)      ``IDm 90 00`` (ACM1252U)
``FF CA 01 00 00`` GET DATA (PMm)      ``PMm 90 00`` (RC-S300 extension)
``FF 00 00 00 Lc <frame>`` direct      ``<answer with LEN> 90 00`` (ACR1252U); no answer ``64 01``
``FF 00 00 00 Lc D4 40 01 <frame>``    ``D5 41 00 <answer> 90 00``; no answer ``D5 41 01 90 00``
``FF 00 00 00 Lc D4 42 <frame>``       ``D5 43 00 <answer> 90 00``; no answer ``D5 43 01 90 00``
``FF 00 00 00 Lc D4 4A 01 br <poll>``  ``D5 4B 01 01 <Polling answer with LEN> 90 00``; none ``D5 4B 00``
``FF C2 00 00 Lc <DOs>`` session       ``C0 03 00 90 00 [80 03 v] 90 00``
``FF C2 00 01 Lc <DOs>`` exchange      ``C0 03 00 90 00 92 01 00 96 02 00 00 97 L <answer> 90 00``
``FF C2 00 02 Lc 8F 02 std layer``     ``C0 03 00 90 00 90 00``
=====================================  ==========================================================

APDUs are ISO 7816-4 short APDUs (cases 1-4). Data objects are BER-TLV with one- or two-byte tags
(``5F46``, ``FF6D``, ``FF6E``) and one-byte or ``81``/``82`` lengths (PC/SC Part 3 2.02).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from .errors import VirtualCardError
from .frames import has_len

CLA_READER = 0xFF
INS_GET_DATA = 0xCA
INS_DIRECT = 0x00
INS_PART3 = 0xC2
PN532_COMMAND = 0xD4
PN532_RESPONSE = 0xD5


class SW(IntEnum):
    """Status words a PC/SC reader answers with."""

    OK = 0x9000
    NO_RESPONSE = 0x6401
    """The card did not answer in time (ACS: "no response from the card")."""
    WRONG_LENGTH = 0x6700
    FUNCTION_NOT_SUPPORTED = 0x6A81
    WRONG_P1P2 = 0x6B00
    WRONG_LE = 0x6C00
    """``6C xx``: wrong Le, ``xx`` is the length available."""
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


class Pn532Status(IntEnum):
    """PN532 status byte after ``D5 41``/``D5 43`` (low 6 bits are the error code)."""

    OK = 0x00
    TIMEOUT = 0x01
    """The target did not answer."""
    WRONG_CONTEXT = 0x27
    """Command not acceptable in the current context (e.g. unknown target number)."""


class Pn532Command(IntEnum):
    """PN532 commands an ACR122U passes through ``FF 00 00 00``; the answer code is command + 1."""

    IN_DATA_EXCHANGE = 0x40
    IN_COMMUNICATE_THRU = 0x42
    IN_LIST_PASSIVE_TARGET = 0x4A


class Tag(IntEnum):
    """PC/SC Part 3 data object tags (felica.md 4, from pcsc.h of a Linux contactless driver)."""

    VERSION = 0x80
    START_SESSION = 0x81
    END_SESSION = 0x82
    RF_OFF = 0x83
    RF_ON = 0x84
    SWITCH_PROTOCOL = 0x8F
    TXRX_FLAGS = 0x90
    TX_BIT_FRAMING = 0x91
    RX_BIT_FRAMING = 0x92
    TRANSMIT = 0x93
    RECEIVE = 0x94
    TRANSCEIVE = 0x95
    RESPONSE_STATUS = 0x96
    ICC_RESPONSE = 0x97
    GENERIC_ERROR = 0xC0
    TIMER = 0x5F46
    GET_PARAMETER = 0xFF6D
    SET_PARAMETER = 0xFF6E


class Part3Function(IntEnum):
    """P2 of ``FF C2 00 P2``."""

    MANAGE_SESSION = 0x00
    TRANSPARENT_EXCHANGE = 0x01
    SWITCH_PROTOCOL = 0x02


class Standard(IntEnum):
    """Switch Protocol standards (data object 8F, first byte)."""

    ISO14443A = 0x00
    ISO14443B = 0x01
    ISO15693 = 0x02
    FELICA = 0x03


class GetDataKind(IntEnum):
    """P1 of GET DATA ``FF CA P1 00``."""

    IDM = 0x00
    PMM = 0x01


class ApduError(VirtualCardError, ValueError):
    """An APDU is malformed or not supported; ``sw`` is what a real reader answers to it."""

    def __init__(self, message: str, sw: int) -> None:
        super().__init__(f"{message} (SW {sw:04X})")
        self.sw = sw


class Part3Error(ApduError):
    """A Part 3 data object failed: the reader answers ``C0 03 <index> <sw>`` then ``90 00``."""

    def __init__(self, message: str, index: int, sw: int) -> None:
        super().__init__(f"data object {index}: {message}", sw)
        self.index = index


# --------------------------------------------------------------------------------------------
# ISO 7816-4 short APDUs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A short command APDU: ``CLA INS P1 P2 [Lc data] [Le]`` (ISO 7816-4 5.1, cases 1-4)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    """Expected length: None = absent, 0 = ``00`` (up to 256)."""

    def __post_init__(self) -> None:
        if len(self.data) > 255:
            raise ApduError(f"APDU data of {len(self.data)} bytes does not fit a short APDU", SW.WRONG_LENGTH)

    def to_bytes(self) -> bytes:
        out = bytes([self.cla, self.ins, self.p1, self.p2])
        if self.data:
            out += bytes([len(self.data)]) + self.data
        if self.le is not None:
            out += bytes([self.le])
        return out

    @classmethod
    def from_bytes(cls, apdu: bytes) -> Self:
        if len(apdu) < 4:
            raise ApduError(f"APDU of {len(apdu)} bytes: a header needs 4", SW.WRONG_LENGTH)
        cla, ins, p1, p2 = apdu[0], apdu[1], apdu[2], apdu[3]
        if len(apdu) == 4:
            return cls(cla, ins, p1, p2)
        if len(apdu) == 5:
            return cls(cla, ins, p1, p2, b"", apdu[4])
        lc = apdu[4]
        if lc == 0:
            raise ApduError("Lc at offset 4 is 00 (extended APDUs are not supported)", SW.WRONG_LENGTH)
        body = apdu[5:]
        if len(body) == lc:
            return cls(cla, ins, p1, p2, body)
        if len(body) == lc + 1:
            return cls(cla, ins, p1, p2, body[:lc], body[lc])
        raise ApduError(f"Lc at offset 4 says {lc} data byte(s), the APDU carries {len(body)}", SW.WRONG_LENGTH)


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: ``data SW1 SW2``."""

    data: bytes
    sw: int

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, response: bytes) -> Self:
        if len(response) < 2:
            raise ApduError(f"response of {len(response)} byte(s) has no status word", SW.NO_PRECISE_DIAGNOSIS)
        return cls(response[:-2], int.from_bytes(response[-2:], "big"))

    @classmethod
    def status(cls, sw: int) -> Self:
        return cls(b"", sw)

    @property
    def ok(self) -> bool:
        return self.sw == SW.OK


# --------------------------------------------------------------------------------------------
# BER-TLV data objects (PC/SC Part 3)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataObject:
    """One BER-TLV data object; ``tag`` is one or two bytes (two when the first has low bits 1F)."""

    tag: int
    value: bytes = b""

    def to_bytes(self) -> bytes:
        tag = self.tag.to_bytes(2 if self.tag > 0xFF else 1, "big")
        n = len(self.value)
        if n < 0x80:
            length = bytes([n])
        elif n <= 0xFF:
            length = bytes([0x81, n])
        else:
            length = bytes([0x82]) + n.to_bytes(2, "big")
        return tag + length + self.value


def encode_objects(objects: tuple[DataObject, ...]) -> bytes:
    return b"".join(o.to_bytes() for o in objects)


def decode_objects(data: bytes, what: str) -> tuple[DataObject, ...]:
    """Split ``data`` into data objects; a truncated object raises naming its index and offset."""
    objects: list[DataObject] = []
    pos = 0
    while pos < len(data):
        index = len(objects) + 1
        start = pos
        tag = data[pos]
        pos += 1
        if tag & 0x1F == 0x1F:
            if pos >= len(data):
                raise Part3Error(f"{what}: two-byte tag cut short at offset {start}", index, SW.WRONG_LENGTH)
            tag = tag << 8 | data[pos]
            pos += 1
        if pos >= len(data):
            raise Part3Error(f"{what}: length of tag {tag:X} missing at offset {pos}", index, SW.WRONG_LENGTH)
        n = data[pos]
        pos += 1
        if n in (0x81, 0x82):
            width = n - 0x80
            if pos + width > len(data):
                raise Part3Error(f"{what}: long length cut short at offset {pos}", index, SW.WRONG_LENGTH)
            n = int.from_bytes(data[pos : pos + width], "big")
            pos += width
        elif n > 0x80:
            raise Part3Error(f"{what}: length byte {n:02X} at offset {pos - 1}", index, SW.WRONG_LENGTH)
        if pos + n > len(data):
            raise Part3Error(
                f"{what}: tag {tag:X} needs {n} byte(s) at offset {pos}, only {len(data) - pos} left",
                index,
                SW.WRONG_LENGTH,
            )
        objects.append(DataObject(tag, data[pos : pos + n]))
        pos += n
    return tuple(objects)


def generic_status(index: int = 0, sw: int = SW.OK) -> DataObject:
    """``C0 03 <index> <SW1 SW2>``: which data object failed (00 = none) and how."""
    return DataObject(Tag.GENERIC_ERROR, bytes([index]) + sw.to_bytes(2, "big"))


# --------------------------------------------------------------------------------------------
# Typed reader commands
# --------------------------------------------------------------------------------------------


class ReaderCommand:
    """Base of the typed pseudo-APDUs; ``to_apdu()`` gives the exact bytes a frontend sends."""

    NAME: ClassVar[str]

    def to_apdu(self) -> bytes:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class GetData(ReaderCommand):
    """``FF CA P1 00 Le``: the IDm (P1 00) or the PMm (P1 01) of the card in the field."""

    NAME: ClassVar[str] = "GET DATA"
    kind: GetDataKind = GetDataKind.IDM
    le: int = 0

    def to_apdu(self) -> bytes:
        return CommandApdu(CLA_READER, INS_GET_DATA, self.kind, 0x00, b"", self.le).to_bytes()


@dataclass(frozen=True, slots=True)
class DirectTransmit(ReaderCommand):
    """``FF 00 00 00 Lc <frame>`` (ACR1252U): the frame (with LEN) goes to the card unchanged."""

    NAME: ClassVar[str] = "direct transmit"
    frame: bytes

    def to_apdu(self) -> bytes:
        return CommandApdu(CLA_READER, INS_DIRECT, 0, 0, self.frame).to_bytes()


@dataclass(frozen=True, slots=True)
class Pn532DataExchange(ReaderCommand):
    """``FF 00 00 00 Lc D4 40 Tg <frame>`` (ACR122U InDataExchange)."""

    NAME: ClassVar[str] = "PN532 InDataExchange"
    frame: bytes
    target: int = 1

    def to_apdu(self) -> bytes:
        data = bytes([PN532_COMMAND, Pn532Command.IN_DATA_EXCHANGE, self.target]) + self.frame
        return CommandApdu(CLA_READER, INS_DIRECT, 0, 0, data).to_bytes()


@dataclass(frozen=True, slots=True)
class Pn532CommunicateThru(ReaderCommand):
    """``FF 00 00 00 Lc D4 42 <frame>`` (ACR122U InCommunicateThru)."""

    NAME: ClassVar[str] = "PN532 InCommunicateThru"
    frame: bytes

    def to_apdu(self) -> bytes:
        data = bytes([PN532_COMMAND, Pn532Command.IN_COMMUNICATE_THRU]) + self.frame
        return CommandApdu(CLA_READER, INS_DIRECT, 0, 0, data).to_bytes()


@dataclass(frozen=True, slots=True)
class Pn532ListPassiveTarget(ReaderCommand):
    """``FF 00 00 00 Lc D4 4A MaxTg BrTy <Polling payload>`` (ACR122U detect card, BrTy 01 = 212 kbps)."""

    NAME: ClassVar[str] = "PN532 InListPassiveTarget"
    polling: bytes
    max_targets: int = 1
    baud: int = 1

    def to_apdu(self) -> bytes:
        head = bytes([PN532_COMMAND, Pn532Command.IN_LIST_PASSIVE_TARGET, self.max_targets, self.baud])
        return CommandApdu(CLA_READER, INS_DIRECT, 0, 0, head + self.polling).to_bytes()


@dataclass(frozen=True, slots=True)
class ManageSession(ReaderCommand):
    """``FF C2 00 00 Lc <data objects>``: version, start/end session, RF off/on, timer."""

    NAME: ClassVar[str] = "Manage Session"
    objects: tuple[DataObject, ...]

    def to_apdu(self) -> bytes:
        data = encode_objects(self.objects)
        return CommandApdu(CLA_READER, INS_PART3, 0, Part3Function.MANAGE_SESSION, data, 0).to_bytes()


@dataclass(frozen=True, slots=True)
class TransparentExchange(ReaderCommand):
    """``FF C2 00 01 Lc [5F46 timer] [90 flags] 95 L <frame> 00``: one transceive through the reader."""

    NAME: ClassVar[str] = "Transparent Exchange"
    objects: tuple[DataObject, ...]

    @classmethod
    def transceive(cls, frame: bytes, timeout_us: int | None = None) -> Self:
        """The usual exchange: optional timer (µs, little-endian), flags ``00 00``, the frame."""
        objects: list[DataObject] = []
        if timeout_us is not None:
            objects.append(DataObject(Tag.TIMER, timeout_us.to_bytes(4, "little")))
        objects.append(DataObject(Tag.TXRX_FLAGS, b"\x00\x00"))
        objects.append(DataObject(Tag.TRANSCEIVE, frame))
        return cls(tuple(objects))

    def to_apdu(self) -> bytes:
        data = encode_objects(self.objects)
        return CommandApdu(CLA_READER, INS_PART3, 0, Part3Function.TRANSPARENT_EXCHANGE, data, 0).to_bytes()


@dataclass(frozen=True, slots=True)
class SwitchProtocol(ReaderCommand):
    """``FF C2 00 02 Lc 8F 02 <standard> <layer>``; FeliCa is standard 03."""

    NAME: ClassVar[str] = "Switch Protocol"
    standard: int = Standard.FELICA
    layer: int = 0

    def to_apdu(self) -> bytes:
        data = DataObject(Tag.SWITCH_PROTOCOL, bytes([self.standard, self.layer])).to_bytes()
        return CommandApdu(CLA_READER, INS_PART3, 0, Part3Function.SWITCH_PROTOCOL, data, 0).to_bytes()


def parse_command(apdu: bytes) -> ReaderCommand:
    """Classify a command APDU; :class:`ApduError` carries the status word a real reader answers."""
    cmd = CommandApdu.from_bytes(apdu)
    if cmd.cla != CLA_READER:
        raise ApduError(
            f"CLA {cmd.cla:02X} at offset 0: only FF (reader pseudo-APDUs) is supported", SW.CLA_NOT_SUPPORTED
        )
    if cmd.ins == INS_GET_DATA:
        return _parse_get_data(cmd)
    if cmd.ins == INS_DIRECT:
        return _parse_direct(cmd)
    if cmd.ins == INS_PART3:
        return _parse_part3(cmd)
    raise ApduError(f"INS {cmd.ins:02X} at offset 1 is not supported", SW.INS_NOT_SUPPORTED)


def _parse_get_data(cmd: CommandApdu) -> GetData:
    if cmd.data:
        raise ApduError("GET DATA carries no data (Lc must be absent)", SW.WRONG_LENGTH)
    if cmd.p2 != 0:
        raise ApduError(f"GET DATA: P2 {cmd.p2:02X} at offset 3 must be 00", SW.WRONG_P1P2)
    try:
        kind = GetDataKind(cmd.p1)
    except ValueError:
        raise ApduError(
            f"GET DATA: P1 {cmd.p1:02X} at offset 2 is not 00 (IDm) or 01 (PMm)", SW.FUNCTION_NOT_SUPPORTED
        ) from None
    return GetData(kind, 0 if cmd.le is None else cmd.le)


def _parse_direct(cmd: CommandApdu) -> ReaderCommand:
    if (cmd.p1, cmd.p2) != (0, 0):
        raise ApduError(f"direct transmit: P1 P2 {cmd.p1:02X} {cmd.p2:02X} at offset 2 must be 00 00", SW.WRONG_P1P2)
    data = cmd.data
    if not data:
        raise ApduError("direct transmit without data", SW.WRONG_LENGTH)
    # A FeliCa frame starting D4 would need LEN == 212 == Lc, so "D4 and no LEN" means PN532.
    if data[0] != PN532_COMMAND or has_len(data):
        return DirectTransmit(data)
    if len(data) < 2:
        raise ApduError("PN532 command without a command code at data offset 1", SW.WRONG_LENGTH)
    code = data[1]
    if code == Pn532Command.IN_DATA_EXCHANGE:
        if len(data) < 4:
            raise ApduError("InDataExchange needs Tg and a frame (data offsets 2, 3)", SW.WRONG_LENGTH)
        return Pn532DataExchange(data[3:], data[2])
    if code == Pn532Command.IN_COMMUNICATE_THRU:
        if len(data) < 3:
            raise ApduError("InCommunicateThru needs a frame at data offset 2", SW.WRONG_LENGTH)
        return Pn532CommunicateThru(data[2:])
    if code == Pn532Command.IN_LIST_PASSIVE_TARGET:
        if len(data) < 5:
            raise ApduError("InListPassiveTarget needs MaxTg, BrTy and initiator data", SW.WRONG_LENGTH)
        return Pn532ListPassiveTarget(data[4:], data[2], data[3])
    raise ApduError(f"PN532 command {code:02X} at data offset 1 is not supported", SW.FUNCTION_NOT_SUPPORTED)


def _parse_part3(cmd: CommandApdu) -> ReaderCommand:
    if cmd.p1 != 0:
        raise ApduError(f"FF C2: P1 {cmd.p1:02X} at offset 2 must be 00", SW.WRONG_P1P2)
    try:
        function = Part3Function(cmd.p2)
    except ValueError:
        raise ApduError(
            f"FF C2: function P2 {cmd.p2:02X} at offset 3 is not supported", SW.FUNCTION_NOT_SUPPORTED
        ) from None
    if function is Part3Function.TRANSPARENT_EXCHANGE and has_len(cmd.data):
        # Defensive (felica.md 4): some frontends put a bare LEN-prefixed frame here, without 95.
        try:
            objects = decode_objects(cmd.data, "FF C2 00 01")
        except Part3Error:
            objects = ()
        if not any(o.tag == Tag.TRANSCEIVE for o in objects):
            return TransparentExchange((DataObject(Tag.TRANSCEIVE, cmd.data),))
    objects = decode_objects(cmd.data, f"FF C2 00 {cmd.p2:02X}")
    if function is Part3Function.MANAGE_SESSION:
        return ManageSession(objects)
    if function is Part3Function.TRANSPARENT_EXCHANGE:
        return TransparentExchange(objects)
    if len(objects) != 1 or objects[0].tag != Tag.SWITCH_PROTOCOL or len(objects[0].value) != 2:
        raise Part3Error("Switch Protocol needs exactly one 8F object of 2 bytes", 1, SW.WRONG_LENGTH)
    return SwitchProtocol(objects[0].value[0], objects[0].value[1])


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pn532Response:
    """``D5 <code> [status] <data>`` inside a ``90 00`` response (InListPassiveTarget has no status)."""

    code: int
    status: int
    data: bytes = b""

    def to_bytes(self) -> bytes:
        if self.code == Pn532Command.IN_LIST_PASSIVE_TARGET + 1:
            return bytes([PN532_RESPONSE, self.code]) + self.data
        return bytes([PN532_RESPONSE, self.code, self.status]) + self.data

    @classmethod
    def from_bytes(cls, data: bytes, command: int) -> Self:
        """Parse the data of a ``90 00`` response to PN532 ``command``."""
        if len(data) < 2 or data[0] != PN532_RESPONSE or data[1] != command + 1:
            raise ApduError(f"PN532 answer {data[:2].hex(' ')} is not D5 {command + 1:02X}", SW.NO_PRECISE_DIAGNOSIS)
        if command == Pn532Command.IN_LIST_PASSIVE_TARGET:
            return cls(data[1], Pn532Status.OK, data[2:])
        if len(data) < 3:
            raise ApduError("PN532 answer has no status byte at offset 2", SW.NO_PRECISE_DIAGNOSIS)
        return cls(data[1], data[2], data[3:])


@dataclass(frozen=True, slots=True)
class Part3Response:
    """The data objects of a Part 3 response (``C0`` status, ``92`` bits, ``96`` status, ``97`` answer)."""

    objects: tuple[DataObject, ...]

    @classmethod
    def exchange_ok(cls, answer: bytes) -> Self:
        return cls(
            (
                generic_status(),
                DataObject(Tag.RX_BIT_FRAMING, b"\x00"),
                DataObject(Tag.RESPONSE_STATUS, b"\x00\x00"),
                DataObject(Tag.ICC_RESPONSE, answer),
            )
        )

    def to_bytes(self) -> bytes:
        return encode_objects(self.objects)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return cls(decode_objects(data, "Part 3 response"))

    def get(self, tag: int) -> bytes | None:
        for o in self.objects:
            if o.tag == tag:
                return o.value
        return None

    @property
    def error(self) -> tuple[int, int]:
        """``(index, sw)`` from the C0 object; ``(0, 9000)`` when absent."""
        value = self.get(Tag.GENERIC_ERROR)
        if value is None:
            return 0, SW.OK
        if len(value) != 3:
            raise ApduError(f"C0 object of {len(value)} byte(s), expected 3", SW.NO_PRECISE_DIAGNOSIS)
        return value[0], int.from_bytes(value[1:], "big")

    @property
    def answer(self) -> bytes | None:
        return self.get(Tag.ICC_RESPONSE)


__all__ = [
    "SW",
    "ApduError",
    "CommandApdu",
    "DataObject",
    "DirectTransmit",
    "GetData",
    "GetDataKind",
    "ManageSession",
    "Part3Error",
    "Part3Function",
    "Part3Response",
    "Pn532Command",
    "Pn532CommunicateThru",
    "Pn532DataExchange",
    "Pn532ListPassiveTarget",
    "Pn532Response",
    "Pn532Status",
    "ReaderCommand",
    "ResponseApdu",
    "Standard",
    "SwitchProtocol",
    "Tag",
    "TransparentExchange",
    "decode_objects",
    "encode_objects",
    "generic_status",
    "parse_command",
]
