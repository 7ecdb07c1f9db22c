"""Exact per-step latency samples and their percentiles.

Locust's own statistics round response times into buckets (exact up to 100 ms, then to 10 ms, then
100 ms); a 3 ms shift in one step disappears there. Here every request keeps its measured latency
(milliseconds, float), its wall-clock time and whether it failed, in compact arrays. Workers
:meth:`~StepSamples.drain` what they gathered and the master :meth:`~StepSamples.merge` s it, so the
master's percentiles cover every sample of every worker.

Percentiles use the nearest-rank definition: ``pXX`` is the smallest sample with at least XX% of the
samples at or below it (always a latency that was actually measured).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)

TOPUP = "topup"
"""Name of the event for a whole top-up (all twelve calls plus the card exchanges)."""

STEP_ORDER: tuple[str, ...] = (
    "card-check 1",
    "card-check 2",
    "card-check 3",
    "pending",
    *(f"update {i}" for i in range(1, 8)),
    "confirm",
    TOPUP,
)


def step_key(name: str) -> tuple[int, str]:
    """Protocol order first, anything else after it alphabetically."""
    return (STEP_ORDER.index(name), "") if name in STEP_ORDER else (len(STEP_ORDER), name)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (``p`` in 0..100); NaN for no samples."""
    if not sorted_values:
        return math.nan
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be in 0..100, got {p}")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class _Series:
    __slots__ = ("errors", "ms", "t")

    def __init__(self) -> None:
        self.t = array("d")
        self.ms = array("d")
        self.errors = array("b")


@dataclass(frozen=True, slots=True)
class StepSummary:
    name: str
    count: int
    errors: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0

    def value(self, stat: str) -> float:
        """``p50``/``p90``/``p95``/``p99``/``max``/``mean`` in ms, or ``error_rate``."""
        if stat == "error_rate":
            return self.error_rate
        if stat not in ("p50", "p90", "p95", "p99", "max", "mean"):
            raise ValueError(f"unknown statistic {stat!r}")
        result: float = getattr(self, stat)
        return result

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            **{k: _round(getattr(self, k)) for k in ("mean", "p50", "p90", "p95", "p99", "max")},
        }


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


class StepSamples:
    """Latency samples per request name; one instance per process, merged on the master."""

    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}

    def add(self, name: str, ms: float, at: float, error: bool = False) -> None:
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = _Series()
        series.t.append(at)
        series.ms.append(ms)
        series.errors.append(1 if error else 0)

    @property
    def names(self) -> list[str]:
        return sorted(self._series, key=step_key)

    def count(self, name: str) -> int:
        series = self._series.get(name)
        return 0 if series is None else len(series.ms)

    def __len__(self) -> int:
        return sum(len(s.ms) for s in self._series.values())

    def drain(self) -> dict[str, dict[str, list[float] | list[int]]]:
        """Everything gathered since the last drain, as plain lists (for Locust's msgpack messages)."""
        out: dict[str, dict[str, list[float] | list[int]]] = {
            name: {"t": s.t.tolist(), "ms": s.ms.tolist(), "err": s.errors.tolist()}
            for name, s in self._series.items()
            if len(s.ms)
        }
        self._series = {}
        return out

    def merge(self, payload: Mapping[str, Mapping[str, Iterable[float]]]) -> None:
        """Add what another process drained; a malformed payload raises ValueError naming the step."""
        for name, cols in payload.items():
            t, ms, err = list(cols["t"]), list(cols["ms"]), list(cols.get("err", []))
            if len(t) != len(ms) or (err and len(err) != len(ms)):
                raise ValueError(f"samples of {name!r}: columns of different lengths")
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = _Series()
            series.t.extend(float(x) for x in t)
            series.ms.extend(float(x) for x in ms)
            series.errors.extend(int(bool(x)) for x in (err or [0] * len(ms)))

    def summary(self, name: str) -> StepSummary:
        series = self._series.get(name)
        values = sorted(series.ms) if series is not None else []
        errors = sum(series.errors) if series is not None else 0
        p = {q: percentile(values, q) for q in PERCENTILES}
        return StepSummary(
            name,
            len(values),
            errors,
            math.fsum(values) / len(values) if values else math.nan,
            p[50],
            p[90],
            p[95],
            p[99],
            values[-1] if values else math.nan,
        )

    def summaries(self) -> list[StepSummary]:
        return [self.summary(name) for name in self.names]

    def span(self) -> tuple[float, float] | None:
        """Earliest and latest sample time (epoch seconds), or None without samples."""
        starts = [min(s.t) for s in self._series.values() if len(s.t)]
        ends = [max(s.t) for s in self._series.values() if len(s.t)]
        return (min(starts), max(ends)) if starts else None

    def timeline(self, window: float | None = None, max_windows: int = 60) -> list[dict[str, Any]]:
        """Percentiles per step per time window: [{"start", "name", "count", "errors", "p50".."p99", "max"}].

        ``window`` defaults to a whole number of seconds giving at most ``max_windows`` windows.
        """
        span = self.span()
        if span is None:
            return []
        t0, t1 = span
        if window is None:
            window = float(max(1, math.ceil((t1 - t0) / max_windows)))
        rows: list[dict[str, Any]] = []
        for name in self.names:
            s = self._series[name]
            buckets: dict[int, tuple[list[float], int]] = {}
            for at, ms, err in zip(s.t, s.ms, s.errors, strict=True):
                values, errors = buckets.setdefault(int((at - t0) // window), ([], 0))
                values.append(ms)
                if err:
                    buckets[int((at - t0) // window)] = (values, errors + 1)
            for index in sorted(buckets):
                values, errors = buckets[index]
                values.sort()
                rows.append(
                    {
                        "start": round(index * window, 3),
                        "name": name,
                        "count": len(values),
                        "errors": errors,
                        **{f"p{q}": round(percentile(values, q), 3) for q in PERCENTILES},
                        "max": round(values[-1], 3),
                    }
                )
        return rows
