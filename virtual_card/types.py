"""Domain types shared by the card, the host and the readers."""

from __future__ import annotations

from enum import IntEnum
from typing import NewType

IDm = NewType("IDm", bytes)
"""Manufacture ID of a FeliCa system: 8 bytes."""

PMm = NewType("PMm", bytes)
"""Manufacture parameters: ROM type, IC type and six timeout bytes (felica.md 1.3)."""

CardNo = NewType("CardNo", str)
"""A KMT card number: 16 ASCII digits, as printed and stored in service 300B block 0."""

KMT_SYSTEM_CODE = 0x90B7
WILDCARD_SYSTEM_CODE = 0xFFFF


class CommandCode(IntEnum):
    """FeliCa command codes; a response code is the command code + 1 (felica.md 1.1)."""

    POLLING = 0x00
    REQUEST_SERVICE = 0x02
    REQUEST_RESPONSE = 0x04
    READ_WITHOUT_ENCRYPTION = 0x06
    WRITE_WITHOUT_ENCRYPTION = 0x08
    SEARCH_SERVICE_CODE = 0x0A
    REQUEST_SYSTEM_CODE = 0x0C
    AUTHENTICATION1 = 0x10
    AUTHENTICATION2 = 0x12
    READ = 0x14
    WRITE = 0x16

    @property
    def response_code(self) -> int:
        return self.value + 1


class Mode(IntEnum):
    """Card modes: 0 after power-up or Polling, 1 after Authentication1, 2 after Authentication2."""

    MODE0 = 0
    MODE1 = 1
    MODE2 = 2


class StatusFlag2(IntEnum):
    """Status Flag 2 values used by the card (felica.md 1.4)."""

    OK = 0x00
    PURSE_OVERFLOW = 0x01
    MEMORY_ERROR = 0x70
    ILLEGAL_SERVICE_COUNT = 0xA1
    ILLEGAL_BLOCK_COUNT = 0xA2
    SERVICE_ORDER = 0xA3
    ILLEGAL_SERVICE_TYPE = 0xA4
    ACCESS_NOT_ALLOWED = 0xA5
    ILLEGAL_SERVICE_CODE = 0xA6
    ILLEGAL_ACCESS_MODE = 0xA7
    BLOCK_OUT_OF_RANGE = 0xA8
    MAC_ERROR = 0xAB
    ILLEGAL_PARAMETER = 0xAC
    AUTHENTICATION_REQUIRED = 0xB1


SF1_GENERIC = 0xFF
"""Status Flag 1 for an error not tied to one list element."""


def sf1_for_position(index: int) -> int:
    """Status Flag 1 naming a failing list element, as a bitmask like nfcpy and proxmark (felica.md 1.4)."""
    return 1 << (index % 8)
