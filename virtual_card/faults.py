"""Fault hooks: make the card misbehave on one chosen command, the way a real card in a real field can.

A :class:`Fault` matches a command code (or any command) and fires on the Nth match. What it does:

- ``NO_ANSWER``: the card leaves the field before executing: nothing happens, no answer.
- ``LOSE_ANSWER``: the card executes, then leaves the field before answering.
- ``TEAR_BEFORE_COMMIT`` / ``TEAR_AFTER_COMMIT``: power is lost during a write, before or after the
  commit point. A write is atomic, so the card holds either all of it or none of it; no answer.
- ``DELAY``: the answer comes ``delay`` seconds late (transports hold it back).
- ``CORRUPT``: the answer's byte at ``byte_index`` (default: the last) is XORed with ``mask``.

After a removal the card is powered off and in Mode 0, with no session: a state a real card can be in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from .errors import VirtualCardError
from .types import CommandCode


class FaultKind(StrEnum):
    NO_ANSWER = "no_answer"
    LOSE_ANSWER = "lose_answer"
    TEAR_BEFORE_COMMIT = "tear_before_commit"
    TEAR_AFTER_COMMIT = "tear_after_commit"
    DELAY = "delay"
    CORRUPT = "corrupt"

    @property
    def executes(self) -> bool:
        """Whether the command takes effect on the card."""
        return self not in (FaultKind.NO_ANSWER, FaultKind.TEAR_BEFORE_COMMIT)

    @property
    def removes(self) -> bool:
        return self in (
            FaultKind.NO_ANSWER,
            FaultKind.LOSE_ANSWER,
            FaultKind.TEAR_BEFORE_COMMIT,
            FaultKind.TEAR_AFTER_COMMIT,
        )


@dataclass(slots=True)
class Fault:
    """One armed fault. ``command`` None matches any command; ``nth`` counts matches from arming."""

    kind: FaultKind
    command: CommandCode | None = None
    nth: int = 1
    delay: float = 0.0
    byte_index: int = -1
    mask: int = 0x01
    seen: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.nth < 1:
            raise VirtualCardError(f"fault nth must be >= 1, got {self.nth}")
        if self.kind is FaultKind.DELAY and self.delay <= 0:
            raise VirtualCardError("a DELAY fault needs a positive delay")
        if not 1 <= self.mask <= 0xFF:
            raise VirtualCardError(f"corrupt mask must be 1..255, got {self.mask}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "command": None if self.command is None else self.command.name,
            "nth": self.nth,
            "delay": self.delay,
            "byte_index": self.byte_index,
            "mask": self.mask,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        try:
            kind = FaultKind(data["kind"])
            command = data.get("command")
            cmd = None if command is None else CommandCode[str(command).upper()]
            return cls(
                kind,
                cmd,
                int(data.get("nth", 1)),
                float(data.get("delay", 0.0)),
                int(data.get("byte_index", -1)),
                int(data.get("mask", 1)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise VirtualCardError(f"fault is malformed: {exc!r}") from exc


class FaultPlan:
    """The faults armed on one card; each fires once and is then disarmed."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def __len__(self) -> int:
        return len(self._faults)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._faults))

    def take(self, code: int) -> Fault | None:
        """Count this command against the armed faults and return the one that fires, if any."""
        if not self._faults:
            return None
        fired: Fault | None = None
        for fault in self._faults:
            if fault.command is not None and fault.command != code:
                continue
            fault.seen += 1
            if fired is None and fault.seen == fault.nth:
                fired = fault
        if fired is not None:
            self._faults.remove(fired)
        return fired
