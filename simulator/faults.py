"""Faults aimed precisely at KCI's answers: by operation and step, on the Nth matching call or with a
probability, for one card or for all.

Kinds: ``delay`` (fixed ``delay_ms`` or random up to ``delay_max_ms``, then the normal answer),
``error`` (the envelope with a given KCI ``code``), ``http500`` (a bare HTTP 500), ``reset`` (the
connection is closed with a TCP reset, no answer), ``empty`` (HTTP 200 with an empty body), ``hang``
(no answer until the client gives up or the simulator stops).

``phase`` "before" (default) acts before the operation runs (KCI never saw the request); "after"
runs the operation first and then spoils its answer (KCI did the work, the caller never learns it:
the way to make a load-balance step's outcome unknown).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from .errors import BadRequestError, Code

OPERATIONS = (
    "card-info",
    "reservation/check",
    "reservation/validate",
    "reservation/create",
    "reservation/inquiry",
    "load-balance",
    "load-balance/confirm",
)


class FaultKind(StrEnum):
    DELAY = "delay"
    ERROR = "error"
    HTTP500 = "http500"
    RESET = "reset"
    EMPTY = "empty"
    HANG = "hang"


class Phase(StrEnum):
    BEFORE = "before"
    AFTER = "after"


@dataclass(slots=True)
class Fault:
    id: str
    kind: FaultKind
    operation: str | None = None
    """One of :data:`OPERATIONS`, or None for every operation."""
    step: int | None = None
    card_no: str | None = None
    nth: int | None = None
    """Fire from the Nth matching call on (1 = the first)."""
    probability: float | None = None
    times: int | None = None
    """How many times it fires; None = 1 with ``nth``, unlimited otherwise."""
    phase: Phase = Phase.BEFORE
    delay_ms: int = 0
    delay_max_ms: int | None = None
    code: int | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, operation: str, step: int | None, card_no: str | None) -> bool:
        return (
            (self.operation is None or self.operation == operation)
            and (self.step is None or self.step == step)
            and (self.card_no is None or self.card_no == card_no)
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _opt_int(doc: dict[str, Any], name: str, minimum: int) -> int | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise BadRequestError(f"fault.{name}: must be an integer >= {minimum}, got {value!r}")
    return value


def parse_fault(doc: Any, fault_id: str) -> Fault:
    """A fault from its JSON form; every bad field is named."""
    if not isinstance(doc, dict):
        raise BadRequestError("fault: body must be an object")
    known = {
        "kind",
        "operation",
        "step",
        "card_no",
        "nth",
        "probability",
        "times",
        "phase",
        "delay_ms",
        "delay_max_ms",
        "code",
    }
    unknown = set(doc) - known
    if unknown:
        raise BadRequestError(f"fault: unknown field(s) {', '.join(sorted(unknown))}")
    try:
        kind = FaultKind(str(doc.get("kind")))
    except ValueError as exc:
        raise BadRequestError(f"fault.kind: one of {', '.join(k.value for k in FaultKind)}") from exc
    try:
        phase = Phase(doc.get("phase", "before"))
    except ValueError as exc:
        raise BadRequestError("fault.phase: 'before' or 'after'") from exc
    operation = doc.get("operation")
    if operation in ("*", ""):
        operation = None
    if operation is not None and operation not in OPERATIONS:
        raise BadRequestError(f"fault.operation: one of {', '.join(OPERATIONS)} (or omitted for all)")
    card_no = doc.get("card_no")
    if card_no is not None and not isinstance(card_no, str):
        raise BadRequestError("fault.card_no: must be a string")
    probability = doc.get("probability")
    if probability is not None and (
        not isinstance(probability, int | float) or isinstance(probability, bool) or not 0 <= probability <= 1
    ):
        raise BadRequestError(f"fault.probability: must be a number in 0..1, got {probability!r}")
    code = _opt_int(doc, "code", 200)
    if kind == FaultKind.ERROR and (code is None or code not in {c.value for c in Code}):
        raise BadRequestError("fault.code: an 'error' fault needs a KCI code (see docs/kci-api.md)")
    delay_ms = _opt_int(doc, "delay_ms", 0) or 0
    delay_max_ms = _opt_int(doc, "delay_max_ms", 0)
    if delay_max_ms is not None and delay_max_ms < delay_ms:
        raise BadRequestError("fault.delay_max_ms: must be >= delay_ms")
    if kind == FaultKind.DELAY and delay_ms == 0 and not delay_max_ms:
        raise BadRequestError("fault.delay_ms: a 'delay' fault needs delay_ms or delay_max_ms")
    return Fault(
        id=fault_id,
        kind=kind,
        operation=operation,
        step=_opt_int(doc, "step", 1),
        card_no=card_no,
        nth=_opt_int(doc, "nth", 1),
        probability=float(probability) if probability is not None else None,
        times=_opt_int(doc, "times", 1),
        phase=phase,
        delay_ms=delay_ms,
        delay_max_ms=delay_max_ms,
        code=code,
    )


class FaultSet:
    """The faults of one app; the first matching fault that decides to fire wins."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.faults: dict[str, Fault] = {}
        self.rng = rng or random.Random()
        self._next = 0

    def add(self, doc: Any) -> Fault:
        self._next += 1
        fault = parse_fault(doc, f"f{self._next}")
        self.faults[fault.id] = fault
        return fault

    def remove(self, fault_id: str) -> bool:
        return self.faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        self.faults.clear()

    def take(self, operation: str, step: int | None, card_no: str | None) -> Fault | None:
        """Count this call against every matching fault; return the one that fires, if any."""
        chosen: Fault | None = None
        for fault in self.faults.values():
            if not fault.matches(operation, step, card_no):
                continue
            fault.seen += 1
            if chosen is not None:
                continue
            limit = fault.times if fault.times is not None else (1 if fault.nth is not None else None)
            if limit is not None and fault.fired >= limit:
                continue
            if fault.nth is not None and fault.seen < fault.nth:
                continue
            if fault.probability is not None and self.rng.random() >= fault.probability:
                continue
            fault.fired += 1
            chosen = fault
        return chosen

    def delay_seconds(self, fault: Fault) -> float:
        if fault.delay_max_ms is not None:
            return self.rng.uniform(fault.delay_ms, fault.delay_max_ms) / 1000
        return fault.delay_ms / 1000
