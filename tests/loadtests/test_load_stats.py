"""The pure parts of the load tests: exact percentiles, worker merge, SLO files, reports.

These modules never import gevent or Locust, so they are tested in process.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from loadtests.errors import SloFileError
from loadtests.report import summary_table, write_reports
from loadtests.slo import Slo
from loadtests.stats import StepSamples, percentile


def test_percentile_is_nearest_rank_of_measured_values() -> None:
    values = sorted(float(v) for v in range(1, 101))  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.25], 99) == 3.25
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile(values, 101)


def test_samples_keep_sub_millisecond_differences_locust_would_round_away() -> None:
    samples = StepSamples()
    for i in range(200):
        samples.add("update 5", 101.0 + (i % 2) * 0.4, at=1000.0 + i / 100)
    s = samples.summary("update 5")
    assert s.count == 200
    assert s.p50 == 101.0
    assert s.p90 == 101.4
    assert s.max == 101.4


def test_drain_and_merge_carry_every_sample_to_the_master() -> None:
    worker_a, worker_b, master = StepSamples(), StepSamples(), StepSamples()
    for i in range(10):
        worker_a.add("pending", 2.0 + i, at=100.0 + i)
        worker_b.add("pending", 50.0 + i, at=100.5 + i, error=i == 0)
    worker_b.add("confirm", 7.5, at=101.0)
    master.merge(json.loads(json.dumps(worker_a.drain())))  # what travels is plain JSON/msgpack data
    master.merge(worker_b.drain())
    assert len(worker_a) == 0 and len(worker_b) == 0
    pending = master.summary("pending")
    assert (pending.count, pending.errors) == (20, 1)
    assert pending.p50 == 11.0  # the 10th of 2..11 and 50..59
    assert pending.max == 59.0
    assert master.names == ["pending", "confirm"]  # protocol order
    with pytest.raises(ValueError, match="'pending'"):
        master.merge({"pending": {"t": [1.0], "ms": [1.0, 2.0]}})


def test_timeline_windows_hold_percentiles_per_step() -> None:
    samples = StepSamples()
    for second in range(3):
        for i in range(10):
            samples.add("update 4", 10.0 * (second + 1) + i, at=500.0 + second + i / 20)
    rows = samples.timeline(window=1.0)
    assert [(r["start"], r["count"], r["p50"]) for r in rows] == [(0.0, 10, 14.0), (1.0, 10, 24.0), (2.0, 10, 34.0)]


def _summaries() -> StepSamples:
    samples = StepSamples()
    for i in range(100):
        samples.add("update 5", float(i + 1), at=10.0 + i / 10)
        samples.add("pending", 5.0, at=10.0 + i / 10, error=i < 3)
        samples.add("topup", 60.0, at=10.0 + i / 10, error=i < 3)
    return samples


def test_slo_toml_breaches_name_step_limit_and_value(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text(
        'error_rate = 0.01\nmin_topups = 98\n[steps."update 5"]\np95_ms = 90\np99_ms = 99.5\n'
        '[steps."*"]\nerror_rate = 0.05\n[steps."update 9"]\np50_ms = 1\n'
    )
    breaches = [str(b) for b in Slo.load(path).check(_summaries().summaries())]
    assert "update 5: p95_ms 95 ms > allowed 90 ms" in breaches
    assert "update 5: p99_ms 99 ms > allowed 99.5 ms" not in breaches  # 99 <= 99.5
    assert "update 9: count 0 < required 1" in breaches
    assert "all requests: error_rate 0.015 > allowed 0.01" in breaches
    assert "topup: min_topups 97 < required 98" in breaches
    assert len(breaches) == 4


def test_slo_json_met(tmp_path: Path) -> None:
    path = tmp_path / "slo.json"
    path.write_text(json.dumps({"steps": {"update 5": {"p99_ms": 100}, "*": {"max_ms": 60}}, "error_rate": 0.02}))
    assert Slo.load(path).check(_summaries().summaries()) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p95_ms = 3\n", "unknown key"),
        ('[steps."update 5"]\np95 = 3\n', "steps.'update 5'.p95: unknown limit"),
        ('[steps."update 5"]\nerror_rate = 5\n', "fraction"),
        ('[steps."update 5"]\np99_ms = "fast"\n', "non-negative number"),
        ("min_topups = -1\n", "min_topups"),
        ("error_rate = [\n", "not valid TOML"),
    ],
)
def test_slo_file_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "slo.toml"
    path.write_text(text)
    with pytest.raises(SloFileError, match=r"slo\.toml") as info:
        Slo.load(path)
    assert message in str(info.value)


def test_reports_are_written(tmp_path: Path) -> None:
    doc = write_reports(tmp_path, _summaries(), extra={"money_invariant": {"ok": True}})
    assert doc["topups"]["succeeded"] == 97
    names = [s["name"] for s in json.loads((tmp_path / "steps.json").read_text())["steps"]]
    assert names == ["pending", "update 5", "topup"]
    assert (tmp_path / "steps.csv").read_text().splitlines()[
        0
    ] == "step,count,errors,error_rate,mean,p50,p90,p95,p99,max"
    assert (tmp_path / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "update 5" in (tmp_path / "summary.txt").read_text()
    table = summary_table(_summaries().summaries())
    assert table.splitlines()[2].split()[:3] == ["pending", "100", "3"]
