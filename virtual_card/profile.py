"""The KMT card profile: system 90B7, its areas and services, and the layouts of its blocks.

Layouts follow the public reverse engineering of KMT (metrodroid ``transit/kmt``, kormax
felica-tool; ``shared/reference/felica.md`` 2.2) so that an independent KMT reader decodes our
blocks correctly:

- ``300B``/``3008`` block 0: card number, 16 ASCII digits.
- ``1017``/``1010``/``1012`` block 0 (purse): bytes 0-3 balance (LE), 4-7 last transaction amount
  (LE, signed), 8-12 zero, 13-15 transaction counter (BE).
- ``200F``/``200C`` (cyclic history, newest in block 0): bytes 0-3 timestamp (BE seconds since
  2000-01-01 00:00 UTC), 4-7 amount (BE), 8-9 gate/station code (BE), 10-11 zero, 12 process type
  (0 top-up, 1 fare, 2 POS), 13-15 sequence number (BE, the purse counter after the transaction).

This module is the only place that slices those blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Self

from .errors import FrameError
from .frames import BLOCK_SIZE, BlockListElement, ServiceCode
from .types import CardNo

KMT_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
COUNTER_MAX = 0xFFFFFF
PURSE_MAX = 0x7FFFFFFF


class ProcessType(IntEnum):
    """History record process type (byte 12)."""

    TOPUP = 0
    FARE = 1
    POS = 2


@dataclass(frozen=True, slots=True)
class ServiceDef:
    """A group of overlap services sharing one set of blocks."""

    number: int
    attributes: tuple[int, ...]
    blocks: int

    def codes(self) -> tuple[ServiceCode, ...]:
        return tuple(ServiceCode(self.number, a) for a in self.attributes)


@dataclass(frozen=True, slots=True)
class AreaDef:
    code: int
    end: int


# Service codes (value = number << 6 | attribute), as in felica.md 2.2.
PURSE = ServiceCode.from_int(0x1010)  # purse direct, with key
PURSE_CASHBACK = ServiceCode.from_int(0x1012)  # purse cashback, with key
PURSE_RO = ServiceCode.from_int(0x1017)  # purse read-only, without key
HISTORY = ServiceCode.from_int(0x200C)  # cyclic read-write, with key
HISTORY_RO = ServiceCode.from_int(0x200F)  # cyclic read-only, without key
CARD_INFO = ServiceCode.from_int(0x3008)  # random read-write, with key
CARD_INFO_RO = ServiceCode.from_int(0x300B)  # random read-only, without key
EXTRA = ServiceCode.from_int(0x4008)  # random read-write, with key

HISTORY_BLOCKS = 20
CARD_INFO_BLOCKS = 4
MAX_BLOCKS_PER_READ = 15
MAX_BLOCKS_PER_WRITE = 8
MAX_SERVICES = 16

KMT_AREAS: tuple[AreaDef, ...] = (
    AreaDef(0x0000, 0xFFFE),
    AreaDef(0x1000, 0x103F),
    AreaDef(0x2000, 0x203F),
    AreaDef(0x3000, 0x30FF),
    AreaDef(0x4000, 0x403F),
)

KMT_SERVICES: tuple[ServiceDef, ...] = (
    ServiceDef(PURSE.number, (0x10, 0x12, 0x17), 1),
    ServiceDef(HISTORY.number, (0x0C, 0x0F), HISTORY_BLOCKS),
    ServiceDef(CARD_INFO.number, (0x08, 0x0B), CARD_INFO_BLOCKS),
    ServiceDef(EXTRA.number, (0x08,), 4),
)

SERVICE_BY_CODE: dict[int, ServiceDef] = {c.code: s for s in KMT_SERVICES for c in s.codes()}

# Node list the host names in Authentication1 for a top-up, and the blocks it reads and writes.
TOPUP_AREAS: tuple[int, ...] = (0x1000, 0x2000)
TOPUP_SERVICES: tuple[ServiceCode, ...] = (PURSE, HISTORY)
CARD_CHECK_HISTORY_RECORDS = 10


def card_check_read() -> tuple[tuple[ServiceCode, ...], tuple[BlockListElement, ...]]:
    """Services and blocks read without key at card check: 300B#0, 1017#0, 200F#0..9 (12 blocks)."""
    services = (CARD_INFO_RO, PURSE_RO, HISTORY_RO)
    blocks = (
        BlockListElement.of(0, 0),
        BlockListElement.of(1, 0),
        *(BlockListElement.of(2, i) for i in range(CARD_CHECK_HISTORY_RECORDS)),
    )
    return services, blocks


def to_kmt_time(when: datetime) -> int:
    return int((when - KMT_EPOCH).total_seconds())


def from_kmt_time(seconds: int) -> datetime:
    return KMT_EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class PurseBlock:
    """Purse block 0 of 1010/1012/1017."""

    balance: int
    last_amount: int
    counter: int

    def __post_init__(self) -> None:
        if not 0 <= self.counter <= COUNTER_MAX:
            raise FrameError(f"purse counter {self.counter} does not fit in 3 bytes")

    def to_bytes(self) -> bytes:
        return (
            (self.balance & 0xFFFFFFFF).to_bytes(4, "little")
            + (self.last_amount & 0xFFFFFFFF).to_bytes(4, "little")
            + bytes(5)
            + self.counter.to_bytes(3, "big")
        )

    @classmethod
    def from_bytes(cls, block: bytes) -> Self:
        if len(block) != BLOCK_SIZE:
            raise FrameError(f"purse block must be {BLOCK_SIZE} bytes, got {len(block)}")
        return cls(
            int.from_bytes(block[0:4], "little", signed=True),
            int.from_bytes(block[4:8], "little", signed=True),
            int.from_bytes(block[13:16], "big"),
        )

    @staticmethod
    def raw_balance(block: bytes) -> int:
        """Bytes 0-3 unsigned, as a card sees them before checking for underflow."""
        return int.from_bytes(block[0:4], "little")


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One history record of 200C/200F."""

    timestamp: int
    amount: int
    gate: int
    process_type: int
    sequence: int

    def to_bytes(self) -> bytes:
        return (
            self.timestamp.to_bytes(4, "big")
            + self.amount.to_bytes(4, "big")
            + self.gate.to_bytes(2, "big")
            + bytes(2)
            + bytes([self.process_type])
            + self.sequence.to_bytes(3, "big")
        )

    @classmethod
    def from_bytes(cls, block: bytes) -> Self:
        if len(block) != BLOCK_SIZE:
            raise FrameError(f"history record must be {BLOCK_SIZE} bytes, got {len(block)}")
        return cls(
            int.from_bytes(block[0:4], "big"),
            int.from_bytes(block[4:8], "big"),
            int.from_bytes(block[8:10], "big"),
            block[12],
            int.from_bytes(block[13:16], "big"),
        )

    @property
    def is_empty(self) -> bool:
        """Metrodroid's rule: a record is empty if byte 0 is zero or the gate code is zero."""
        return (self.timestamp >> 24) == 0 or self.gate == 0

    @property
    def when(self) -> datetime:
        return from_kmt_time(self.timestamp)

    def as_dict(self) -> dict[str, object]:
        return {
            "time": self.when.strftime("%Y-%m-%d %H:%M:%S"),
            "amount": self.amount,
            "gate": f"{self.gate:04X}",
            "type": ProcessType(self.process_type).name if self.process_type in (0, 1, 2) else self.process_type,
            "sequence": self.sequence,
        }


def encode_card_number(card_no: CardNo) -> bytes:
    if len(card_no) != 16 or not card_no.isdigit() or not card_no.isascii():
        raise FrameError(f"card number must be 16 ASCII digits, got {card_no!r}")
    return card_no.encode("ascii")


def decode_card_number(block: bytes) -> CardNo:
    if len(block) != BLOCK_SIZE:
        raise FrameError(f"card number block must be {BLOCK_SIZE} bytes, got {len(block)}")
    try:
        text = block.decode("ascii")
    except UnicodeDecodeError:
        return CardNo(block.hex())
    return CardNo(text if text.isdigit() else block.hex())


@dataclass(frozen=True, slots=True)
class CardInfo:
    """What a card check reads: card number, purse and the newest history records."""

    card_no: CardNo
    purse: PurseBlock
    history: tuple[HistoryRecord, ...]

    @classmethod
    def from_blocks(cls, blocks: tuple[bytes, ...]) -> Self:
        """Decode the 12 blocks of :func:`card_check_read`, in that order."""
        if len(blocks) < 2:
            raise FrameError(f"card check needs at least 2 blocks, got {len(blocks)}")
        records = tuple(HistoryRecord.from_bytes(b) for b in blocks[2:])
        return cls(
            decode_card_number(blocks[0]),
            PurseBlock.from_bytes(blocks[1]),
            tuple(r for r in records if not r.is_empty),
        )
