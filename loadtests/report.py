"""What a load run leaves behind, next to Locust's own CSV/HTML:

- ``steps.json``: per step count, errors, error rate, mean, p50/p90/p95/p99/max (exact, ms), plus the
  run's top-ups, the money-invariant verdict and the SLO verdict;
- ``steps.csv``: the same table; ``timeline.csv``: percentiles per step per time window;
- ``summary.txt``: the table as printed at the end of the run;
- ``latency.png``: p50 and p99 of every step over time, and the summary table.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from .stats import TOPUP, StepSamples, StepSummary

COLUMNS = ("count", "errors", "error_rate", "mean", "p50", "p90", "p95", "p99", "max")


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def summary_table(summaries: list[StepSummary]) -> str:
    head = f"{'step':<14}{'count':>8}{'errors':>8}{'err %':>7}" + "".join(
        f"{c:>9}" for c in ("mean", "p50", "p90", "p95", "p99", "max")
    )
    lines = [head + "   (latency in ms, exact)", "-" * len(head)]
    for s in summaries:
        if s.name == TOPUP:
            lines.append("-" * len(head))
        lines.append(
            f"{s.name:<14}{s.count:>8}{s.errors:>8}{s.error_rate * 100:>7.2f}"
            + "".join(f"{_ms(v):>9}" for v in (s.mean, s.p50, s.p90, s.p95, s.p99, s.max))
        )
    return "\n".join(lines)


def write_reports(
    directory: Path,
    samples: StepSamples,
    *,
    extra: dict[str, Any] | None = None,
    chart: bool = True,
) -> dict[str, Any]:
    """Write every report into ``directory``; returns the ``steps.json`` document."""
    directory.mkdir(parents=True, exist_ok=True)
    summaries = samples.summaries()
    span = samples.span()
    topup = next((s for s in summaries if s.name == TOPUP), None)
    duration = (span[1] - span[0]) if span else 0.0
    done = 0 if topup is None else topup.count - topup.errors
    doc: dict[str, Any] = {
        "steps": [s.to_doc() for s in summaries],
        "topups": {
            "succeeded": done,
            "failed": 0 if topup is None else topup.errors,
            "duration_s": round(duration, 3),
            "per_second": round(done / duration, 3) if duration > 0 else None,
        },
        **(extra or {}),
    }
    (directory / "steps.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    with (directory / "steps.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["step", *COLUMNS])
        for s in summaries:
            d = s.to_doc()
            writer.writerow([s.name, *("" if d[c] is None else d[c] for c in COLUMNS)])
    timeline = samples.timeline()
    with (directory / "timeline.csv").open("w", newline="", encoding="utf-8") as f:
        fields = ["start", "name", "count", "errors", "p50", "p90", "p95", "p99", "max"]
        writer_d = csv.DictWriter(f, fieldnames=fields)
        writer_d.writeheader()
        writer_d.writerows(timeline)
    (directory / "summary.txt").write_text(summary_table(summaries) + "\n", encoding="utf-8")
    if chart and summaries:
        write_chart(directory / "latency.png", summaries, timeline)
    return doc


def write_chart(path: Path, summaries: list[StepSummary], timeline: list[dict[str, Any]]) -> None:
    """p50 and p99 per step over time (one line per step), and the summary table below them."""
    import matplotlib  # noqa: PLC0415 - only reports need it (the `load` extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    names = [s.name for s in summaries]
    colors = plt.get_cmap("tab20")
    fig = plt.figure(figsize=(13, 11), layout="constrained")
    grid = fig.add_gridspec(3, 1, height_ratios=[1.0, 1.0, 0.9])
    for row, stat in enumerate(("p50", "p99")):
        ax = fig.add_subplot(grid[row])
        for i, name in enumerate(names):
            if name == TOPUP:
                continue
            points = [(r["start"], r[stat]) for r in timeline if r["name"] == name]
            if points:
                xs, ys = zip(*points, strict=True)
                style = "-" if i < 10 else "--"
                ax.plot(xs, ys, style, marker=".", color=colors(i % 20), label=name, linewidth=1.4)
        ax.set_title(f"{stat} latency per step over time (exact, per window)")
        ax.set_xlabel("seconds since the first request")
        ax.set_ylabel("ms")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax = fig.add_subplot(grid[2])
    ax.axis("off")
    cells = [
        [
            s.name,
            str(s.count),
            f"{s.error_rate * 100:.2f}",
            *(_ms(v) for v in (s.mean, s.p50, s.p90, s.p95, s.p99, s.max)),
        ]
        for s in summaries
    ]
    table = ax.table(
        cellText=cells,
        colLabels=["step", "count", "err %", "mean ms", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms"],
        loc="center",
        cellLoc="right",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    table.scale(1.0, 1.15)
    slowest = max((s for s in summaries if s.name != TOPUP and s.count), key=lambda s: s.p50, default=None)
    title = "per-step latency"
    if slowest is not None:
        title += f" - slowest step by p50: {slowest.name} ({slowest.p50:.2f} ms)"
    fig.suptitle(title, fontsize=13)
    fig.savefig(path, dpi=90)
    plt.close(fig)
