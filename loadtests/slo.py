"""Service-level objectives for a load run, from a TOML or JSON file, and their verdict.

    # slo.toml
    error_rate = 0.01            # failed requests / all requests, over every step (optional)
    min_topups = 10              # at least this many successful top-ups (optional)

    [steps."update 5"]           # a step name as reported: "card-check 1".."update 7", "confirm", "topup"
    p95_ms = 80
    p99_ms = 150
    error_rate = 0.0

    [steps."*"]                  # every step without its own table
    p99_ms = 500

The same structure in JSON: ``{"error_rate": 0.01, "steps": {"update 5": {"p95_ms": 80}}}``.
Limits per step: ``p50_ms``, ``p90_ms``, ``p95_ms``, ``p99_ms``, ``max_ms``, ``mean_ms``,
``error_rate``. A step named in the file that saw no request is a breach (a typo must not pass).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SloFileError
from .stats import TOPUP, StepSummary

STEP_LIMITS: dict[str, str] = {
    "p50_ms": "p50",
    "p90_ms": "p90",
    "p95_ms": "p95",
    "p99_ms": "p99",
    "max_ms": "max",
    "mean_ms": "mean",
    "error_rate": "error_rate",
}
WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class Breach:
    step: str
    limit: str
    allowed: float
    measured: float

    def __str__(self) -> str:
        if self.limit in ("count", "min_topups"):
            return f"{self.step}: {self.limit} {self.measured:g} < required {self.allowed:g}"
        unit = "" if self.limit == "error_rate" else " ms"
        return f"{self.step}: {self.limit} {self.measured:g}{unit} > allowed {self.allowed:g}{unit}"


@dataclass(frozen=True, slots=True)
class Slo:
    steps: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    error_rate: float | None = None
    min_topups: int | None = None

    @classmethod
    def load(cls, path: Path) -> Slo:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SloFileError(f"SLO file {path}: {exc.strerror or exc}") from exc
        try:
            doc: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise SloFileError(
                f"SLO file {path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}"
            ) from exc
        return cls.from_doc(doc, str(path))

    @classmethod
    def from_doc(cls, doc: Any, where: str = "SLO") -> Slo:
        if not isinstance(doc, dict):
            raise SloFileError(f"{where}: must be a table/object")
        unknown = set(doc) - {"steps", "error_rate", "min_topups"}
        if unknown:
            raise SloFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (steps, error_rate, min_topups)")
        steps_doc = doc.get("steps", {})
        if not isinstance(steps_doc, dict):
            raise SloFileError(f"{where}: steps must be a table of step name -> limits")
        steps: dict[str, dict[str, float]] = {}
        for step, limits in steps_doc.items():
            if not isinstance(limits, dict) or not limits:
                raise SloFileError(f"{where}: steps.{step!r} must be a non-empty table of limits")
            for key, value in limits.items():
                if key not in STEP_LIMITS:
                    raise SloFileError(
                        f"{where}: steps.{step!r}.{key}: unknown limit (one of {', '.join(STEP_LIMITS)})"
                    )
                steps.setdefault(step, {})[key] = _number(value, f"{where}: steps.{step!r}.{key}", key)
        error_rate = doc.get("error_rate")
        min_topups = doc.get("min_topups")
        if min_topups is not None and (
            not isinstance(min_topups, int) or isinstance(min_topups, bool) or min_topups < 0
        ):
            raise SloFileError(f"{where}: min_topups must be a non-negative integer")
        return cls(
            steps,
            None if error_rate is None else _number(error_rate, f"{where}: error_rate", "error_rate"),
            min_topups,
        )

    def check(self, summaries: list[StepSummary]) -> list[Breach]:
        """Every limit the run broke (empty: the run meets the objectives)."""
        by_name = {s.name: s for s in summaries}
        breaches: list[Breach] = []
        for step, limits in self.steps.items():
            targets = [s for s in summaries if s.name not in self.steps] if step == WILDCARD else [by_name.get(step)]
            for summary in targets:
                if summary is None or summary.count == 0:
                    breaches.append(Breach(step, "count", 1, 0))
                    continue
                for key, allowed in limits.items():
                    measured = summary.value(STEP_LIMITS[key])
                    if not math.isnan(measured) and measured > allowed:
                        breaches.append(Breach(summary.name, key, allowed, measured))
        requests = [s for s in summaries if s.name != TOPUP]
        if self.error_rate is not None:
            total = sum(s.count for s in requests)
            rate = sum(s.errors for s in requests) / total if total else 0.0
            if rate > self.error_rate:
                breaches.append(Breach("all requests", "error_rate", self.error_rate, rate))
        if self.min_topups is not None:
            topup = by_name.get(TOPUP)
            done = 0 if topup is None else topup.count - topup.errors
            if done < self.min_topups:
                breaches.append(Breach(TOPUP, "min_topups", self.min_topups, done))
        return breaches


def _number(value: Any, where: str, key: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise SloFileError(f"{where}: must be a non-negative number")
    if key == "error_rate" and value > 1:
        raise SloFileError(f"{where}: is a fraction (0..1), got {value}")
    return float(value)
