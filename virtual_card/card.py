"""The virtual KMT card: a pure state machine from command frames to answer frames.

``KmtCard.handle(frame) -> bytes | None`` is the whole card as the RF field sees it; transports
(in process, PC/SC through vpcd, HTTP reader) wrap it. ``process`` additionally reports what fault
hooks did (delay, removal). Like a real FeliCa card it stays silent on frames that are malformed or
addressed to another IDm, and answers errors with status flags (``docs/protocol.md`` lists them):

==========================================  ====  ====
condition                                   SF1   SF2
==========================================  ====  ====
number of services 0 or > 16                FF    A1
number of blocks 0 or > 15 (read), > 8 wr.  FF    A2
block names a service index beyond the list  pos  A3
access mode not 000                          pos  A7
service not on this card                     pos  A6
keyed service without authentication         pos  B1
service not named in Authentication1 / RO    pos  A5
block number out of range                    pos  A8
purse value negative / cashback overflow     pos  01
purse counter not current + 1                pos  AC
MAC does not verify (session ends)           FF   AB
sequence number not last + 1 (session ends)  FF   AC
==========================================  ====  ====

``pos`` is the failing list element as a bitmask (``1 << index``), like nfcpy and proxmark.
Authentication failures get no answer and drop the card to Mode 0, as on FeliCa.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from . import secure
from .errors import FrameError, VirtualCardError
from .faults import Fault, FaultKind, FaultPlan
from .frames import (
    CHALLENGE_SIZE,
    Authentication1,
    Authentication1Response,
    Authentication2,
    Authentication2Response,
    AuthRead,
    AuthReadResponse,
    AuthWrite,
    AuthWriteResponse,
    BlockListElement,
    Frame,
    Polling,
    PollingResponse,
    ReadWithoutEncryption,
    ReadWithoutEncryptionResponse,
    RequestResponse,
    RequestResponseResponse,
    RequestService,
    RequestServiceResponse,
    RequestSystemCode,
    RequestSystemCodeResponse,
    SearchServiceCode,
    SearchServiceCodeResponse,
    ServiceCode,
    StatusResponse,
    WriteWithoutEncryption,
    parse_command,
    unframe,
)
from .image import CardImage
from .profile import (
    COUNTER_MAX,
    HISTORY,
    KMT_AREAS,
    KMT_SERVICES,
    MAX_BLOCKS_PER_READ,
    MAX_BLOCKS_PER_WRITE,
    MAX_SERVICES,
    PURSE,
    PURSE_MAX,
    SERVICE_BY_CODE,
    HistoryRecord,
    ProcessType,
    PurseBlock,
    ServiceDef,
    to_kmt_time,
)
from .types import SF1_GENERIC, CommandCode, Mode, StatusFlag2, sf1_for_position

FELICA_ATR = bytes.fromhex("3B8F8001804F0CA00000030611003B0000000042")
"""PC/SC Part 3 ATR of a contactless FeliCa card (pcsc.md): SS 11 = FeliCa, card name 00 3B, TCK 42."""

VALID_TIME_SLOTS = frozenset({0x00, 0x01, 0x03, 0x07, 0x0F})
COMMUNICATION_PERFORMANCE = b"\x00\x01"  # 212 kbps only (felica.md 1.2)

ATTR_PURSE_DIRECT = 0x10
ATTR_PURSE_CASHBACK = 0x12

Random = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class Reply:
    """What the card does with one frame: its answer (None = silence), a hold-back delay, removal."""

    data: bytes | None
    delay: float = 0.0
    removed: bool = False


class _StatusError(Exception):
    """Internal: a command fails with these status flags."""

    def __init__(self, sf1: int, sf2: int) -> None:
        super().__init__(f"SF1={sf1:02X} SF2={sf2:02X}")
        self.sf1 = sf1
        self.sf2 = sf2


@dataclass(slots=True)
class _Session:
    host_challenge: bytes
    card_challenge: bytes
    session_key: bytes
    services: frozenset[int]
    """Service numbers named in Authentication1."""
    seq: int = 0


class KmtCard:
    """A KMT card (system 90B7) built from a :class:`CardImage`.

    The only sources of nondeterminism are the card challenge, drawn from ``rng``; pass a seeded
    function to make a session reproducible.
    """

    def __init__(self, image: CardImage, *, rng: Random = os.urandom) -> None:
        self._image = image
        self._memory: dict[int, list[bytes]] = {n: list(b) for n, b in image.blocks.items()}
        self._fares_total = image.fares_total
        self._rng = rng
        self._mode = Mode.MODE0
        self._session: _Session | None = None
        self.powered = True
        self.faults = FaultPlan()
        self._polling_answers: dict[int, bytes] = {}

    # -- identity ----------------------------------------------------------------------------

    @property
    def idm(self) -> bytes:
        return self._image.idm

    @property
    def pmm(self) -> bytes:
        return self._image.pmm

    @property
    def card_no(self) -> str:
        return self._image.card_no

    @property
    def atr(self) -> bytes:
        return FELICA_ATR

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def purse(self) -> PurseBlock:
        return PurseBlock.from_bytes(self._memory[PURSE.number][0])

    @property
    def balance(self) -> int:
        return self.purse.balance

    def image(self) -> CardImage:
        """A snapshot of the card's memory as an image (volatile state such as the mode is not kept)."""
        return self._image.with_blocks({n: tuple(b) for n, b in self._memory.items()}, fares_total=self._fares_total)

    # -- power ---------------------------------------------------------------------------------

    def power_on(self) -> None:
        self.powered = True
        self._drop_session()

    def power_off(self) -> None:
        self.powered = False
        self._drop_session()

    def reset(self) -> None:
        self.power_off()
        self.power_on()

    def _drop_session(self) -> None:
        self._mode = Mode.MODE0
        self._session = None

    # -- the RF interface ------------------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        """Answer one command frame (with or without LEN); None when a real card would stay silent."""
        return self.process(frame).data

    def process(self, frame: bytes) -> Reply:
        if not self.powered or not frame:
            return Reply(None)
        fault = None
        if self.faults:
            code = command_code(frame)
            fault = self.faults.take(-1 if code is None else code)
        if fault is None:
            return Reply(self._execute(frame))
        return self._apply_fault(fault, frame)

    def _apply_fault(self, fault: Fault, frame: bytes) -> Reply:
        answer = self._execute(frame) if fault.kind.executes else None
        if fault.kind.removes:
            self.power_off()
            return Reply(None, removed=True)
        if answer is None:
            return Reply(None)
        if fault.kind is FaultKind.DELAY:
            return Reply(answer, delay=fault.delay)
        corrupted = bytearray(answer)
        corrupted[fault.byte_index] ^= fault.mask
        return Reply(bytes(corrupted))

    def _execute(self, frame: bytes) -> bytes | None:
        try:
            command = parse_command(frame)
        except FrameError:
            return None
        if not isinstance(command, Polling) and getattr(command, "idm", None) != self._image.idm:
            return None
        answer: Frame | None
        match command:
            case Polling():
                return self._polling(command)
            case RequestService():
                answer = self._request_service(command)
            case RequestResponse():
                answer = RequestResponseResponse(self._image.idm, int(self._mode))
            case RequestSystemCode():
                answer = RequestSystemCodeResponse(self._image.idm, (self._image.system_code,))
            case SearchServiceCode():
                answer = self._search_service_code(command)
            case ReadWithoutEncryption():
                answer = self._read_plain(command)
            case WriteWithoutEncryption():
                answer = self._write_plain(command)
            case Authentication1():
                answer = self._authentication1(command)
            case Authentication2():
                answer = self._authentication2(command)
            case AuthRead():
                answer = self._read_auth(command)
            case AuthWrite():
                answer = self._write_auth(command)
            case _:  # pragma: no cover - parse_command only returns the types above
                answer = None
        return None if answer is None else answer.to_frame()

    # -- commands without authentication -----------------------------------------------------------

    def _polling(self, cmd: Polling) -> bytes | None:
        """The answer frame: it depends only on the request code, so each is encoded once."""
        if cmd.time_slot not in VALID_TIME_SLOTS:
            return None
        hi, lo = cmd.system_code >> 8, cmd.system_code & 0xFF
        sc = self._image.system_code
        if (hi not in (0xFF, sc >> 8)) or (lo not in (0xFF, sc & 0xFF)):
            return None
        self._drop_session()
        answer = self._polling_answers.get(cmd.request_code)
        if answer is None:
            rd = b""
            if cmd.request_code == 0x01:
                rd = sc.to_bytes(2, "big")
            elif cmd.request_code == 0x02:
                rd = COMMUNICATION_PERFORMANCE
            answer = PollingResponse(self._image.idm, self._image.pmm, rd).to_frame()
            self._polling_answers[cmd.request_code] = answer
        return answer

    def _request_service(self, cmd: RequestService) -> Frame | None:
        if not 1 <= len(cmd.nodes) <= 32:
            return None
        areas = {a.code for a in KMT_AREAS}
        versions = tuple(self._image.key_version if (n in areas or n in SERVICE_BY_CODE) else 0xFFFF for n in cmd.nodes)
        return RequestServiceResponse(self._image.idm, versions)

    def _search_service_code(self, cmd: SearchServiceCode) -> Frame:
        nodes: list[tuple[int, int | None]] = [(a.code, a.end) for a in KMT_AREAS]
        nodes += [(c.code, None) for s in KMT_SERVICES for c in s.codes()]
        nodes.sort(key=lambda n: (n[0], n[1] is None))
        if cmd.index >= len(nodes):
            return SearchServiceCodeResponse(self._image.idm, 0xFFFF)
        code, end = nodes[cmd.index]
        return SearchServiceCodeResponse(self._image.idm, code, end)

    def _read_plain(self, cmd: ReadWithoutEncryption) -> Frame:
        try:
            defs = self._check_lists(cmd.services, cmd.blocks, MAX_BLOCKS_PER_READ)
            for i, service in enumerate(cmd.services):
                if service.needs_key:
                    raise _StatusError(sf1_for_position(i), StatusFlag2.AUTHENTICATION_REQUIRED)
            data = tuple(self._block(defs[b.service_index], b.block) for b in cmd.blocks)
        except _StatusError as err:
            return ReadWithoutEncryptionResponse(self._image.idm, err.sf1, err.sf2)
        return ReadWithoutEncryptionResponse(self._image.idm, 0, 0, data)

    def _write_plain(self, cmd: WriteWithoutEncryption) -> Frame:
        try:
            self._check_lists(cmd.services, cmd.blocks, MAX_BLOCKS_PER_WRITE)
            for i, service in enumerate(cmd.services):
                if service.needs_key:
                    raise _StatusError(sf1_for_position(i), StatusFlag2.AUTHENTICATION_REQUIRED)
                raise _StatusError(sf1_for_position(i), StatusFlag2.ACCESS_NOT_ALLOWED)
        except _StatusError as err:
            return StatusResponse(self._image.idm, err.sf1, err.sf2)
        return StatusResponse(self._image.idm, SF1_GENERIC, StatusFlag2.ILLEGAL_PARAMETER)  # pragma: no cover

    # -- mutual authentication ----------------------------------------------------------------------

    def _authentication1(self, cmd: Authentication1) -> Frame | None:
        self._drop_session()
        areas = {a.code for a in KMT_AREAS}
        if not cmd.services or any(a not in areas for a in cmd.areas):
            return None
        if any(s.code not in SERVICE_BY_CODE or not s.needs_key for s in cmd.services):
            return None
        rc = self._rng(CHALLENGE_SIZE)
        sk = secure.session_key(self._image.card_key, cmd.host_challenge, rc)
        self._session = _Session(cmd.host_challenge, rc, sk, frozenset(s.number for s in cmd.services))
        self._mode = Mode.MODE1
        proof = secure.card_proof(sk, self._image.idm, cmd.host_challenge, rc)
        return Authentication1Response(self._image.idm, rc, proof)

    def _authentication2(self, cmd: Authentication2) -> Frame | None:
        s = self._session
        if self._mode is not Mode.MODE1 or s is None:
            self._drop_session()
            return None
        expected = secure.host_proof(s.session_key, self._image.idm, s.host_challenge, s.card_challenge)
        if not secure.equal(expected, cmd.host_proof):
            self._drop_session()
            return None
        self._mode = Mode.MODE2
        return Authentication2Response(
            self._image.idm, secure.confirmation(s.session_key, self._image.idm, s.host_challenge)
        )

    def _authorize(self, cmd: AuthRead | AuthWrite) -> _Session | _StatusError | None:
        """Check mode, MAC and sequence; None = silence, a _StatusError = answer it and end the session."""
        s = self._session
        if self._mode is not Mode.MODE2 or s is None:
            return None
        if not secure.equal(secure.frame_mac(s.session_key, cmd.unsigned()), cmd.mac):
            return _StatusError(SF1_GENERIC, StatusFlag2.MAC_ERROR)
        if cmd.seq != s.seq + 1:
            return _StatusError(SF1_GENERIC, StatusFlag2.ILLEGAL_PARAMETER)
        s.seq = cmd.seq
        return s

    def _read_auth(self, cmd: AuthRead) -> Frame | None:
        s = self._authorize(cmd)
        if s is None:
            return None
        if isinstance(s, _StatusError):
            return self._end_session(AuthReadResponse(self._image.idm, s.sf1, s.sf2, cmd.seq))
        try:
            defs = self._check_lists(cmd.services, cmd.blocks, MAX_BLOCKS_PER_READ)
            self._check_authorized(cmd.services, s)
            blocks = tuple(self._block(defs[b.service_index], b.block) for b in cmd.blocks)
        except _StatusError as err:
            return self._sign(AuthReadResponse(self._image.idm, err.sf1, err.sf2, cmd.seq), s)
        return self._sign(AuthReadResponse(self._image.idm, 0, 0, cmd.seq, blocks), s)

    def _write_auth(self, cmd: AuthWrite) -> Frame | None:
        s = self._authorize(cmd)
        if s is None:
            return None
        if isinstance(s, _StatusError):
            return self._end_session(AuthWriteResponse(self._image.idm, s.sf1, s.sf2, cmd.seq))
        try:
            defs = self._check_lists(cmd.services, cmd.blocks, MAX_BLOCKS_PER_WRITE)
            self._check_authorized(cmd.services, s)
            updates = self._plan_write(cmd, defs)
        except _StatusError as err:
            return self._sign(AuthWriteResponse(self._image.idm, err.sf1, err.sf2, cmd.seq), s)
        self._memory.update(updates)  # the commit point: every block at once
        return self._sign(AuthWriteResponse(self._image.idm, 0, 0, cmd.seq), s)

    def _sign(self, resp: AuthReadResponse | AuthWriteResponse, s: _Session) -> Frame:
        mac = secure.frame_mac(s.session_key, resp.unsigned())
        if isinstance(resp, AuthReadResponse):
            return AuthReadResponse(resp.idm, resp.sf1, resp.sf2, resp.seq, resp.blocks, mac)
        return AuthWriteResponse(resp.idm, resp.sf1, resp.sf2, resp.seq, mac)

    def _end_session(self, resp: AuthReadResponse | AuthWriteResponse) -> Frame:
        s = self._session
        assert s is not None
        signed = self._sign(resp, s)
        self._drop_session()
        return signed

    # -- shared checks --------------------------------------------------------------------------------

    def _check_lists(
        self, services: tuple[ServiceCode, ...], blocks: tuple[BlockListElement, ...], max_blocks: int
    ) -> list[ServiceDef]:
        if not 1 <= len(services) <= MAX_SERVICES:
            raise _StatusError(SF1_GENERIC, StatusFlag2.ILLEGAL_SERVICE_COUNT)
        if not 1 <= len(blocks) <= max_blocks:
            raise _StatusError(SF1_GENERIC, StatusFlag2.ILLEGAL_BLOCK_COUNT)
        defs: list[ServiceDef] = []
        for i, service in enumerate(services):
            found = SERVICE_BY_CODE.get(service.code)
            if found is None:
                raise _StatusError(sf1_for_position(i), StatusFlag2.ILLEGAL_SERVICE_CODE)
            defs.append(found)
        for i, element in enumerate(blocks):
            if element.service_index >= len(services):
                raise _StatusError(sf1_for_position(i), StatusFlag2.SERVICE_ORDER)
            if element.access_mode != 0:
                raise _StatusError(sf1_for_position(i), StatusFlag2.ILLEGAL_ACCESS_MODE)
            if element.block >= defs[element.service_index].blocks:
                raise _StatusError(sf1_for_position(i), StatusFlag2.BLOCK_OUT_OF_RANGE)
        return defs

    @staticmethod
    def _check_authorized(services: tuple[ServiceCode, ...], s: _Session) -> None:
        for i, service in enumerate(services):
            if service.needs_key and service.number not in s.services:
                raise _StatusError(sf1_for_position(i), StatusFlag2.ACCESS_NOT_ALLOWED)

    def _block(self, service: ServiceDef, block: int) -> bytes:
        return self._memory[service.number][block]

    def _plan_write(self, cmd: AuthWrite, defs: list[ServiceDef]) -> dict[int, list[bytes]]:
        """Validate every block of a write and return the new memory groups; nothing is applied here."""
        updates: dict[int, list[bytes]] = {}
        for i, (element, data) in enumerate(zip(cmd.blocks, cmd.data, strict=True)):
            service = cmd.services[element.service_index]
            group = defs[element.service_index]
            if service.is_read_only or not service.needs_key:
                raise _StatusError(sf1_for_position(i), StatusFlag2.ACCESS_NOT_ALLOWED)
            blocks = updates.get(group.number) or list(self._memory[group.number])
            if service.is_purse:
                blocks[0] = self._purse_write(service, data, i)
            elif service.is_cyclic:
                if element.block != 0:
                    raise _StatusError(sf1_for_position(i), StatusFlag2.BLOCK_OUT_OF_RANGE)
                blocks = [data, *blocks[:-1]]
            else:
                blocks[element.block] = data
            updates[group.number] = blocks
        return updates

    def _purse_write(self, service: ServiceCode, data: bytes, index: int) -> bytes:
        current = self.purse
        pos = sf1_for_position(index)
        if current.counter >= COUNTER_MAX:
            raise _StatusError(pos, StatusFlag2.PURSE_OVERFLOW)
        if service.attribute == ATTR_PURSE_CASHBACK:
            value = PurseBlock.raw_balance(data)
            if value > PURSE_MAX or current.balance + value > PURSE_MAX:
                raise _StatusError(pos, StatusFlag2.PURSE_OVERFLOW)
            return PurseBlock(current.balance + value, value, current.counter + 1).to_bytes()
        new = PurseBlock.from_bytes(data)
        if PurseBlock.raw_balance(data) > PURSE_MAX:
            raise _StatusError(pos, StatusFlag2.PURSE_OVERFLOW)
        if new.counter != current.counter + 1:
            raise _StatusError(pos, StatusFlag2.ILLEGAL_PARAMETER)
        return data

    # -- what happens outside the top-up protocol -------------------------------------------------------

    def pay_fare(self, amount: int, gate: int, when: datetime) -> None:
        """A gate's own debit (its SAM is not simulated): purse - amount, counter + 1, a fare record."""
        if amount <= 0:
            raise VirtualCardError(f"fare must be positive, got {amount}")
        current = self.purse
        if current.balance < amount:
            raise VirtualCardError(f"balance {current.balance} is below the fare {amount}")
        counter = current.counter + 1
        self._memory[PURSE.number][0] = PurseBlock(current.balance - amount, -amount, counter).to_bytes()
        record = HistoryRecord(to_kmt_time(when), amount, gate, ProcessType.FARE, counter)
        history = self._memory[HISTORY.number]
        self._memory[HISTORY.number] = [record.to_bytes(), *history[:-1]]
        self._fares_total += amount


def command_code(frame: bytes) -> CommandCode | None:
    """The command code of a frame (with or without LEN), or None for an unknown code."""
    try:
        payload = unframe(frame)
    except FrameError:
        return None
    try:
        return CommandCode(payload[0])
    except ValueError:
        return None
