"""Prometheus metrics of one app (its own CollectorRegistry): calls, codes and latency per operation and step."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "kci_calls",
            "KCI API calls by operation, step and KCI code",
            ("operation", "step", "code"),
            registry=self.registry,
        )
        self.faults = Counter(
            "kci_faults",
            "Injected faults that fired, by operation and kind",
            ("operation", "kind"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "kci_latency_seconds",
            "KCI API latency by operation and step",
            ("operation", "step"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, int | None, int | None], tuple[Any, Any]] = {}

    def observe(self, operation: str, step: int | None, code: int | None, seconds: float) -> None:
        key = (operation, step, code)
        children = self._children.get(key)
        if children is None:
            s = "" if step is None else str(step)
            children = (
                self.calls.labels(operation, s, "none" if code is None else str(code)),
                self.latency.labels(operation, s),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
