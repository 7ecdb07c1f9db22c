"""The host (SAM) half of the simulated secure messaging, used by the KCI simulator.

A :class:`HostSession` walks Authentication1 -> Authentication2 -> authenticated Read/Write with one
card and verifies each answer: IDm, status flags, proofs, sequence numbers and MACs. It is a plain
value that serialises to a dict, so a stateless HTTP host can keep it between steps.

    session = HostSession.begin(idm, card_key, host_challenge)
    auth1 = session.authentication1(TOPUP_AREAS, TOPUP_SERVICES)   # send auth1.to_bytes()
    auth2 = session.accept_authentication1(card_answer)           # raises on a bad card proof
    session.accept_authentication2(card_answer)
    read = session.read(services, blocks)                          # MACed, seq 1
    blocks = session.accept_read(card_answer).blocks               # MAC and seq checked
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Self

from . import secure
from .errors import CardStatusError, FrameError, SecureMessagingError, WrongCardError
from .frames import (
    BLOCK_SIZE,
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
    ServiceCode,
)
from .profile import HISTORY, PURSE, HistoryRecord, ProcessType, PurseBlock, to_kmt_time
from .types import IDm


def _check_idm(expected: bytes, got: bytes, what: str) -> None:
    if got != expected:
        raise WrongCardError(f"{what}: answer from IDm {got.hex()}, session card is {expected.hex()}")


@dataclass(frozen=True, slots=True)
class HostSession:
    """State of one authenticated session with one card, as the host sees it."""

    idm: IDm
    card_key: bytes
    host_challenge: bytes
    card_challenge: bytes = b""
    session_key: bytes = b""
    authenticated: bool = False
    seq: int = 0

    @classmethod
    def begin(cls, idm: bytes, card_key: bytes, host_challenge: bytes) -> Self:
        if len(host_challenge) != CHALLENGE_SIZE:
            raise SecureMessagingError(f"host challenge must be {CHALLENGE_SIZE} bytes")
        return cls(IDm(bytes(idm)), bytes(card_key), bytes(host_challenge))

    # -- mutual authentication ---------------------------------------------------------------

    def authentication1(self, areas: tuple[int, ...], services: tuple[ServiceCode, ...]) -> Authentication1:
        return Authentication1(self.idm, areas, services, self.host_challenge)

    def accept_authentication1(self, answer: bytes) -> tuple[Self, Authentication2]:
        """Check the card's proof; return the new session state and the Authentication2 command."""
        resp = Authentication1Response.from_bytes(answer)
        _check_idm(self.idm, resp.idm, "Authentication1")
        sk = secure.session_key(self.card_key, self.host_challenge, resp.card_challenge)
        expected = secure.card_proof(sk, self.idm, self.host_challenge, resp.card_challenge)
        if not secure.equal(expected, resp.card_proof):
            raise SecureMessagingError("Authentication1: card proof does not verify (wrong card key?)")
        state = replace(self, card_challenge=resp.card_challenge, session_key=sk)
        proof = secure.host_proof(sk, self.idm, self.host_challenge, resp.card_challenge)
        return state, Authentication2(self.idm, proof)

    def accept_authentication2(self, answer: bytes) -> Self:
        if not self.session_key:
            raise SecureMessagingError("Authentication2 answer before Authentication1 was verified")
        resp = Authentication2Response.from_bytes(answer)
        _check_idm(self.idm, resp.idm, "Authentication2")
        expected = secure.confirmation(self.session_key, self.idm, self.host_challenge)
        if not secure.equal(expected, resp.confirmation):
            raise SecureMessagingError("Authentication2: card confirmation does not verify")
        return replace(self, authenticated=True)

    # -- authenticated read and write ---------------------------------------------------------

    def _require_auth(self, what: str) -> None:
        if not self.authenticated:
            raise SecureMessagingError(f"{what} needs a completed mutual authentication")

    def read(self, services: tuple[ServiceCode, ...], blocks: tuple[BlockListElement, ...]) -> tuple[Self, AuthRead]:
        self._require_auth("authenticated Read")
        seq = self.seq + 1
        mac = secure.frame_mac(self.session_key, AuthRead(self.idm, seq, services, blocks).unsigned())
        return self._next(seq), AuthRead(self.idm, seq, services, blocks, mac)

    def write(
        self,
        services: tuple[ServiceCode, ...],
        blocks: tuple[BlockListElement, ...],
        data: tuple[bytes, ...],
    ) -> tuple[Self, AuthWrite]:
        self._require_auth("authenticated Write")
        seq = self.seq + 1
        mac = secure.frame_mac(self.session_key, AuthWrite(self.idm, seq, services, blocks, data).unsigned())
        return self._next(seq), AuthWrite(self.idm, seq, services, blocks, data, mac)

    def _next(self, seq: int) -> Self:
        return type(self)(
            self.idm, self.card_key, self.host_challenge, self.card_challenge, self.session_key, self.authenticated, seq
        )

    def _verify(self, resp: AuthReadResponse | AuthWriteResponse, what: str) -> None:
        _check_idm(self.idm, resp.idm, what)
        if not secure.equal(secure.frame_mac(self.session_key, resp.unsigned()), resp.mac):
            raise SecureMessagingError(f"{what}: MAC does not verify")
        if resp.seq != self.seq:
            raise SecureMessagingError(f"{what}: sequence number {resp.seq}, expected {self.seq}")
        if resp.sf1 or resp.sf2:
            raise CardStatusError(what, resp.sf1, resp.sf2)

    def accept_read(self, answer: bytes) -> AuthReadResponse:
        resp = AuthReadResponse.from_bytes(answer)
        self._verify(resp, "authenticated Read")
        return resp

    def accept_write(self, answer: bytes) -> AuthWriteResponse:
        resp = AuthWriteResponse.from_bytes(answer)
        self._verify(resp, "authenticated Write")
        return resp

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        try:
            return cls(
                IDm(bytes.fromhex(data["idm"])),
                bytes.fromhex(data["card_key"]),
                bytes.fromhex(data["host_challenge"]),
                bytes.fromhex(data["card_challenge"]),
                bytes.fromhex(data["session_key"]),
                bool(data["authenticated"]),
                int(data["seq"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise SecureMessagingError(f"host session state is malformed: {exc}") from exc


# -- what a top-up reads and writes ---------------------------------------------------------------

RECOVERY_RECORDS = 8
"""History records read with the purse: enough to find an earlier write behind a few later fares."""

PURSE_READ: tuple[tuple[ServiceCode, ...], tuple[BlockListElement, ...]] = (
    (PURSE, HISTORY),
    (BlockListElement.of(0, 0), *(BlockListElement.of(1, i) for i in range(RECOVERY_RECORDS))),
)
"""Update 4 and 6: purse 1010#0 and the newest history records 200C#0..7 (9 blocks)."""


@dataclass(frozen=True, slots=True)
class PurseState:
    """What the host learns from an authenticated read of :data:`PURSE_READ`: the purse and the newest
    history records (kept as blocks, decoded when asked for: most reads only need the newest one)."""

    purse: PurseBlock
    history: tuple[bytes, ...]

    @property
    def records(self) -> tuple[HistoryRecord, ...]:
        return tuple(HistoryRecord.from_bytes(b) for b in self.history)

    @property
    def last_record(self) -> HistoryRecord:
        return HistoryRecord.from_bytes(self.history[0])

    def record_with(self, sequence: int) -> HistoryRecord | None:
        """The history record the transaction with this counter value left, if still in the window."""
        for block in self.history:
            record = HistoryRecord.from_bytes(block)
            if record.sequence == sequence and not record.is_empty:
                return record
        return None

    @classmethod
    def from_read(cls, resp: AuthReadResponse) -> Self:
        if len(resp.blocks) < 2:
            raise FrameError(f"purse read: expected the purse and history records, got {len(resp.blocks)} block(s)")
        for i, block in enumerate(resp.blocks[1:]):
            if len(block) != BLOCK_SIZE:  # pragma: no cover - the frame codec splits 16-byte blocks
                raise FrameError(f"purse read: history block {i} is {len(block)} bytes")
        return cls(PurseBlock.from_bytes(resp.blocks[0]), resp.blocks[1:])


def topup_write(
    current: PurseBlock, amount: int, when: datetime, gate: int
) -> tuple[tuple[ServiceCode, ...], tuple[BlockListElement, ...], tuple[bytes, ...]]:
    """The blocks of a top-up write: the new purse (balance + amount, counter + 1) and its history record."""
    if amount <= 0:
        raise ValueError(f"top-up amount must be positive, got {amount}")
    counter = current.counter + 1
    purse = PurseBlock(current.balance + amount, amount, counter)
    record = HistoryRecord(to_kmt_time(when), amount, gate, ProcessType.TOPUP, counter)
    return (
        (PURSE, HISTORY),
        (BlockListElement.of(0, 0), BlockListElement.of(1, 0)),
        (purse.to_bytes(), record.to_bytes()),
    )


def frame_hex(frame: Frame) -> str:
    """The command as KCI sends it: lowercase hex without LEN."""
    return frame.to_bytes().hex()
