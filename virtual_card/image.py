"""Card images: a card's memory, identity and key identity as a versioned JSON file.

Format ``kmt-card-image`` version 1::

    {"format": "kmt-card-image", "version": 1,
     "card_no": "6032000100000000", "idm": "012e...", "pmm": "0120220427674eff",
     "system_code": "90b7", "key_version": 1, "card_key": "<32 hex>",
     "blocks": {"1010": ["<32 hex>"], "200c": [...20 blocks], "3008": [...], "4008": [...]},
     "issued_balance": 50000, "fares_total": 0, "holder": "...", "issued_at": "2026-..."}

``blocks`` is keyed by the lowest service code of each overlap group (the keyed one). The card key is
stored as a real card holds it; ``key_version`` names which master key generation made it.
``issued_balance`` and ``fares_total`` are harness bookkeeping for the money invariant, not card memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

from .errors import CardImageError
from .frames import BLOCK_SIZE, ServiceCode
from .profile import KMT_SERVICES, PURSE, PurseBlock
from .types import KMT_SYSTEM_CODE, CardNo, IDm, PMm

FORMAT = "kmt-card-image"
VERSION = 1


def _group_key(number: int) -> str:
    service = next(s for s in KMT_SERVICES if s.number == number)
    return f"{ServiceCode(number, min(service.attributes)).code:04x}"


@dataclass(frozen=True, slots=True)
class CardImage:
    card_no: CardNo
    idm: IDm
    pmm: PMm
    card_key: bytes
    blocks: dict[int, tuple[bytes, ...]]
    """Service number -> blocks of that overlap group."""
    issued_balance: int
    system_code: int = KMT_SYSTEM_CODE
    key_version: int = 1
    fares_total: int = 0
    holder: str = ""
    issued_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def purse(self) -> PurseBlock:
        return PurseBlock.from_bytes(self.blocks[PURSE.number][0])

    @property
    def balance(self) -> int:
        return self.purse.balance

    @property
    def counter(self) -> int:
        return self.purse.counter

    def with_blocks(self, blocks: dict[int, tuple[bytes, ...]], **changes: Any) -> Self:
        return replace(self, blocks=blocks, **changes)

    # -- JSON --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "card_no": self.card_no,
            "idm": self.idm.hex(),
            "pmm": self.pmm.hex(),
            "system_code": f"{self.system_code:04x}",
            "key_version": self.key_version,
            "card_key": self.card_key.hex(),
            "blocks": {_group_key(n): [b.hex() for b in blocks] for n, blocks in sorted(self.blocks.items())},
            "issued_balance": self.issued_balance,
            "fares_total": self.fares_total,
            "holder": self.holder,
            "issued_at": self.issued_at,
            **({"extra": self.extra} if self.extra else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            raise CardImageError("card image: top level must be a JSON object")
        if data.get("format") != FORMAT:
            raise CardImageError(f"card image: format must be {FORMAT!r}, got {data.get('format')!r}")
        if data.get("version") != VERSION:
            raise CardImageError(f"card image: unsupported version {data.get('version')!r} (this reads {VERSION})")

        def hexfield(name: str, size: int) -> bytes:
            value = data.get(name)
            try:
                raw = bytes.fromhex(value) if isinstance(value, str) else None
            except ValueError:
                raw = None
            if raw is None or len(raw) != size:
                raise CardImageError(f"card image: {name} must be {size} bytes of hex, got {value!r}")
            return raw

        def intfield(name: str, default: int | None = None) -> int:
            value = data.get(name, default)
            if not isinstance(value, int) or isinstance(value, bool):
                raise CardImageError(f"card image: {name} must be an integer, got {value!r}")
            return value

        card_no = data.get("card_no")
        if not isinstance(card_no, str) or len(card_no) != 16 or not card_no.isdigit():
            raise CardImageError(f"card image: card_no must be 16 digits, got {card_no!r}")
        raw_blocks = data.get("blocks")
        if not isinstance(raw_blocks, dict):
            raise CardImageError("card image: blocks must be an object")
        blocks: dict[int, tuple[bytes, ...]] = {}
        for service in KMT_SERVICES:
            key = _group_key(service.number)
            values = raw_blocks.get(key)
            if not isinstance(values, list) or len(values) != service.blocks:
                raise CardImageError(f"card image: blocks[{key!r}] must be a list of {service.blocks} blocks")
            parsed = []
            for i, v in enumerate(values):
                try:
                    b = bytes.fromhex(v) if isinstance(v, str) else b""
                except ValueError:
                    b = b""
                if len(b) != BLOCK_SIZE:
                    raise CardImageError(f"card image: blocks[{key!r}][{i}] must be {BLOCK_SIZE} bytes of hex")
                parsed.append(b)
            blocks[service.number] = tuple(parsed)
        system_code = data.get("system_code")
        if not isinstance(system_code, str) or len(system_code) != 4:
            raise CardImageError(f"card image: system_code must be 4 hex digits, got {system_code!r}")
        try:
            sc = int(system_code, 16)
        except ValueError as exc:
            raise CardImageError(f"card image: system_code must be 4 hex digits, got {system_code!r}") from exc
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            raise CardImageError("card image: extra must be an object")
        return cls(
            CardNo(card_no),
            IDm(hexfield("idm", 8)),
            PMm(hexfield("pmm", 8)),
            hexfield("card_key", 16),
            blocks,
            intfield("issued_balance"),
            sc,
            intfield("key_version", 1),
            intfield("fares_total", 0),
            str(data.get("holder", "")),
            str(data.get("issued_at", "")),
            extra,
        )

    @classmethod
    def from_json(cls, text: str) -> Self:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CardImageError(f"card image: not JSON ({exc})") from exc
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half of one."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".card-", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_json())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CardImageError(f"card image {path}: {exc.strerror}") from exc
        return cls.from_json(text)
