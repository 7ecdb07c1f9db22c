"""Simulator configuration: business limits (DESIGN.md defaults), timeouts, seeding and state."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Self

from .errors import BadRequestError


@dataclass(frozen=True, slots=True)
class Limits:
    """Rules KCI enforces; money in integer rupiah, times in seconds."""

    min_topup: int = 10_000
    max_balance: int = 2_000_000
    monthly_limit: int = 20_000_000
    max_per_transaction: int = 1_000_000
    reservation_ttl: int = 15 * 60
    session_ttl: int = 5 * 60
    clock_skew: int = 300

    def updated(self, changes: dict[str, Any]) -> Self:
        """A copy with ``changes`` applied; unknown names and non-positive integers are rejected."""
        names = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise BadRequestError(f"limits: unknown field {key!r} (known: {', '.join(sorted(names))})")
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise BadRequestError(f"limits: {key} must be a positive integer, got {value!r}")
        return replace(self, **changes)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PartnerSeed:
    """The partner, merchant and terminal that ``create_app`` registers when seeding is on."""

    partner_id: str = "KMTPARTNER01"
    secret: str = ""
    mid: str = "M0000001"
    tid: str = "T0000001"

    def with_secret_for(self, seed: int) -> Self:
        if self.secret:
            return self
        digest = hashlib.sha256(f"kmt-harness partner {self.partner_id} seed {seed}".encode()).hexdigest()
        return replace(self, secret=digest[:32])


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 0
    state: Path | None = None
    """SQLite file that keeps the state across restarts; in memory when None."""
    node: int = 43
    """Two-digit node number in reservation and load-balance numbers (RBLP<node>YYMMDD<seq>)."""
    master_key: bytes | None = None
    """Issuer master key for card key diversification; virtual_card.factory.DEFAULT_MASTER_KEY when None."""
    kci_secret: bytes | None = None
    """Key of the sequence_data HMAC; random per state when None (kept in the state file)."""
    limits: Limits = field(default_factory=Limits)
    seed: int | None = None
    """When set, register a partner/merchant/terminal and ``cards`` cards built from this seed."""
    cards: int = 0
    card_balance: int = 50_000
    partner: PartnerSeed = field(default_factory=PartnerSeed)
    journal: bool = True
    journal_size: int = 10_000
    hang_seconds: float = 600.0
    """The longest a "hang" fault keeps a request open (it ends earlier when the app stops)."""

    def __post_init__(self) -> None:
        if not 0 <= self.node <= 99:
            raise BadRequestError(f"node must be 0..99, got {self.node}")
        if self.master_key is not None and len(self.master_key) != 16:
            raise BadRequestError(f"master_key must be 16 bytes, got {len(self.master_key)}")

    def resolved_master_key(self) -> bytes:
        if self.master_key is not None:
            return self.master_key
        from virtual_card.factory import DEFAULT_MASTER_KEY  # noqa: PLC0415 - card package loads lazily

        return bytes(DEFAULT_MASTER_KEY)

    def seeded_partner(self) -> PartnerSeed:
        return self.partner.with_secret_for(self.seed if self.seed is not None else 0)
