"""Backend configuration: KCI endpoint and partner credentials, terminals, timeouts, storage.

Everything can come from command-line options (:mod:`backend.cli`) or ``KMT_BACKEND_*`` environment
variables (:meth:`BackendConfig.from_env`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Self

from .errors import ConfigInvalid

KCI_PREFIX = "/kci/v1"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TERMINAL_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class AuthScheme(StrEnum):
    """Which authentication schemes a terminal credential may use."""

    BEARER = "bearer"
    HMAC = "hmac"
    BOTH = "both"

    def allows(self, scheme: AuthScheme) -> bool:
        return self is AuthScheme.BOTH or self is scheme


@dataclass(frozen=True, slots=True)
class TerminalCredential:
    """One terminal's credentials: it may act only for its own ``tid``/``mid``.

    ``secret`` is the bearer API key (``Authorization: Bearer <secret>``) and the HMAC key of the
    ``X-KMT-*`` signature scheme; ``scheme`` says which of the two the terminal may use.
    """

    key_id: str
    tid: str
    mid: str
    secret: str
    scheme: AuthScheme = AuthScheme.BOTH

    def __post_init__(self) -> None:
        if not _KEY_ID.match(self.key_id):
            raise ConfigInvalid(f"terminal key id {self.key_id!r}: 1-64 characters of A-Z a-z 0-9 _ . -")
        for name, value in (("tid", self.tid), ("mid", self.mid)):
            if not _TERMINAL_ID.match(value):
                raise ConfigInvalid(f"terminal {self.key_id}: {name} {value!r}: 1-32 characters of A-Z a-z 0-9 _ . -")
        if len(self.secret) < 16:
            raise ConfigInvalid(f"terminal {self.key_id}: secret must be at least 16 characters")

    @classmethod
    def parse(cls, text: str) -> Self:
        """``KEY_ID:TID:MID:SECRET[:SCHEME]`` as given to ``--terminal`` / ``KMT_BACKEND_TERMINALS``."""
        parts = text.strip().split(":")
        if len(parts) not in (4, 5):
            raise ConfigInvalid(f"terminal {text!r}: expected KEY_ID:TID:MID:SECRET[:bearer|hmac|both]")
        scheme = AuthScheme.BOTH
        if len(parts) == 5:
            try:
                scheme = AuthScheme(parts[4])
            except ValueError as exc:
                raise ConfigInvalid(f"terminal {parts[0]}: scheme must be bearer, hmac or both") from exc
        return cls(key_id=parts[0], tid=parts[1], mid=parts[2], secret=parts[3], scheme=scheme)


@dataclass(frozen=True, slots=True)
class BackendConfig:
    kci_url: str
    """KCI's URL: ``http://host:port`` (``/kci/v1`` is appended) or the API base ``http://host:port/kci/v1``."""
    kci_partner_id: str
    kci_partner_secret: str
    terminals: tuple[TerminalCredential, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    db_path: Path | None = None
    """SQLite file; None keeps the database in memory (tests and benchmarks only)."""
    db_synchronous: str = "FULL"
    """SQLite ``PRAGMA synchronous`` (FULL survives power loss; NORMAL survives a process crash)."""
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    signature_window: int = 300
    """Seconds an ``X-KMT-Timestamp`` may differ from the backend's clock; nonces are kept this long."""
    replay_window: int = 120
    """Seconds during which a repeated step-1 request (card-check 1, pending, update 1) gets the stored answer."""

    def __post_init__(self) -> None:
        if not self.kci_url.startswith(("http://", "https://")):
            raise ConfigInvalid(f"kci_url must be an http(s) URL, got {self.kci_url!r}")
        if not self.kci_partner_id or not self.kci_partner_secret:
            raise ConfigInvalid("KCI partner id and secret are required")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ConfigInvalid("timeouts must be positive")
        if self.db_synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigInvalid("db_synchronous must be FULL, NORMAL or EXTRA")
        seen: set[str] = set()
        for terminal in self.terminals:
            if terminal.key_id in seen:
                raise ConfigInvalid(f"terminal key id {terminal.key_id!r} given twice")
            seen.add(terminal.key_id)
        secrets = [t.secret for t in self.terminals]
        if len(set(secrets)) != len(secrets):
            raise ConfigInvalid("terminal secrets must be unique (a bearer key names its terminal)")

    @property
    def kci_base(self) -> str:
        base = self.kci_url.rstrip("/")
        return base if base.endswith(KCI_PREFIX) else base + KCI_PREFIX

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Self:
        """Read ``KMT_BACKEND_*`` variables; ``overrides`` (non-None values) win over them.

        KCI_URL, KCI_PARTNER_ID, KCI_PARTNER_SECRET, TERMINALS (comma-separated KEY_ID:TID:MID:SECRET[:SCHEME]),
        HOST, PORT, DB, DB_SYNCHRONOUS, CONNECT_TIMEOUT, READ_TIMEOUT, SIGNATURE_WINDOW, REPLAY_WINDOW.
        """
        source = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = source.get(f"KMT_BACKEND_{name}")
            return value if value else None

        values: dict[str, object] = {}
        try:
            if (v := get("KCI_URL")) is not None:
                values["kci_url"] = v
            if (v := get("KCI_PARTNER_ID")) is not None:
                values["kci_partner_id"] = v
            if (v := get("KCI_PARTNER_SECRET")) is not None:
                values["kci_partner_secret"] = v
            if (v := get("TERMINALS")) is not None:
                values["terminals"] = tuple(TerminalCredential.parse(p) for p in v.split(",") if p.strip())
            if (v := get("HOST")) is not None:
                values["host"] = v
            if (v := get("PORT")) is not None:
                values["port"] = int(v)
            if (v := get("DB")) is not None:
                values["db_path"] = None if v == ":memory:" else Path(v)
            if (v := get("DB_SYNCHRONOUS")) is not None:
                values["db_synchronous"] = v.upper()
            if (v := get("CONNECT_TIMEOUT")) is not None:
                values["connect_timeout"] = float(v)
            if (v := get("READ_TIMEOUT")) is not None:
                values["read_timeout"] = float(v)
            if (v := get("SIGNATURE_WINDOW")) is not None:
                values["signature_window"] = int(v)
            if (v := get("REPLAY_WINDOW")) is not None:
                values["replay_window"] = int(v)
        except ValueError as exc:
            raise ConfigInvalid(f"KMT_BACKEND_* variable malformed: {exc}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        for required in ("kci_url", "kci_partner_id", "kci_partner_secret"):
            if required not in values:
                raise ConfigInvalid(f"{required} is required (option or KMT_BACKEND_{required.upper()})")
        return cls(**values)  # type: ignore[arg-type]
