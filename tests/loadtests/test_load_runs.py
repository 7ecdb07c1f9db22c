"""Real Locust runs in subprocesses (gevent must never enter the pytest process).

Each run is a few seconds with a few users: the embedded stack through ``kmt load``; a master and two
workers on loopback sharing one stack server; the delay-injection proof that the reported per-step
p50 finds a known delay in exactly the step it was put in; the load shapes' schedules.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadtests.admin_http import AdminHttp

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
KMT = [sys.executable, "-m", "harness.cli"]
STEPS = ["card-check 1", "card-check 2", "card-check 3", "pending", *(f"update {i}" for i in range(1, 8)), "confirm"]


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, Any]]:
    """One stack server (KCI simulator + reference backend) for the runs of this module."""
    with subprocess.Popen(
        [sys.executable, "-m", "loadtests.stack_server", "--seed", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        info: dict[str, Any] = json.loads(proc.stdout.readline())
        try:
            yield info
        finally:
            proc.stdin.close()
            proc.wait(15)


def locust(tmp: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary", *args]
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout)


def steps_of(report: Path) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in json.loads((report / "steps.json").read_text())["steps"]}


def locust_counts(json_path: Path) -> dict[str, int]:
    """Request counts from Locust's own final statistics (``--json-file``)."""
    return {e["name"]: e["num_requests"] for e in json.loads(json_path.read_text())}


def test_kmt_load_embedded_stack_slo_breach_exits_3(tmp_path: Path) -> None:
    slo = tmp_path / "slo.toml"
    slo.write_text('[steps."update 5"]\np50_ms = 0.001\n[steps."*"]\nerror_rate = 0.0\n')
    report = tmp_path / "report"
    proc = subprocess.run(
        [*KMT, "load", "-u", "3", "-t", "3s", "--slo", str(slo), "--report-dir", str(report)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "SLO: BREACHED" in proc.stderr and "update 5: p50_ms" in proc.stderr
    doc = json.loads((report / "steps.json").read_text())
    assert doc["money_invariant"]["ok"] is True and doc["money_invariant"]["cards"] == 3
    assert doc["slo"]["breaches"] == [b for b in doc["slo"]["breaches"] if b.startswith("update 5: p50_ms")]
    steps = steps_of(report)
    assert list(steps) == [*STEPS, "topup"]
    # every request Locust counted is an exact sample here, and no request failed
    assert {n: s["count"] for n, s in steps.items()} == locust_counts(report / "locust.json")
    assert all(s["errors"] == 0 for s in steps.values())
    for name in ("locust.html", "latency.png", "timeline.csv", "summary.txt", "stack.json"):
        assert (report / name).stat().st_size > 0, name


def test_master_and_two_workers_share_cards_out_and_ship_samples(tmp_path: Path, stack: dict[str, Any]) -> None:
    (tmp_path / "stack.json").write_text(json.dumps(stack))
    slo = tmp_path / "slo.json"
    slo.write_text(json.dumps({"error_rate": 0.0, "min_topups": 5, "steps": {"*": {"p99_ms": 5000}}}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    worker_cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", "127.0.0.1"]
    workers = [
        subprocess.Popen(
            [*worker_cmd, "--master-port", str(port)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    try:
        master = locust(
            tmp_path,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            "2",
            "--expect-workers-max-wait",
            "30",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "3s",
            "--kmt-stack-info",
            "stack.json",
            "--kmt-seed",
            "21",
            "--kmt-slo",
            str(slo),
            "--kmt-report-dir",
            "report",
            "--json-file",
            "report/locust",
        )
    finally:
        worker_logs = []
        for w in workers:
            try:
                worker_logs.append(w.communicate(timeout=20)[1])
            except subprocess.TimeoutExpired:
                w.kill()
                worker_logs.append(w.communicate()[1])
    assert master.returncode == 0, master.stderr[-4000:] + worker_logs[0][-2000:]
    assert all(w.returncode == 0 for w in workers), worker_logs
    report = tmp_path / "report"
    doc = json.loads((report / "steps.json").read_text())
    assert doc["cards_per_worker"] == {"0": 2, "1": 2}
    assert doc["money_invariant"] == {**doc["money_invariant"], "checked": True, "ok": True, "cards": 4}
    assert doc["slo"]["ok"] is True
    steps = steps_of(report)
    assert {n: s["count"] for n, s in steps.items()} == locust_counts(report / "locust.json")
    assert steps["topup"]["count"] >= 5
    # cards of worker 1 come from its own block of indexes: 6032 + seed 0021 + 00100000.. (block 100,000)
    cards = {c["card_no"] for c in AdminHttp(stack["kci_admin_url"]).request("GET", "cards")}
    assert {"6032002100000000", "6032002100000001", "6032002100100000", "6032002100100001"} <= cards


def test_delay_injected_at_kci_shows_in_that_step_only(tmp_path: Path, stack: dict[str, Any]) -> None:
    """Baseline, then +60 ms on KCI's load-balance step 4: update 4's p50 moves by 60 ms, no other step's."""
    (tmp_path / "stack.json").write_text(json.dumps(stack))
    admin = AdminHttp(stack["kci_admin_url"])
    delay = 60.0

    def run(name: str, seed: int) -> dict[str, dict[str, Any]]:
        proc = locust(
            tmp_path,
            *("-u", "2", "-r", "2", "-t", "4s", "--kmt-pacing", "0.15", "--kmt-seed", str(seed)),
            *("--kmt-stack-info", "stack.json", "--kmt-report-dir", name),
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        return steps_of(tmp_path / name)

    base = run("baseline", 31)
    admin.add_fault(kind="delay", operation="load-balance", step=4, delay_ms=int(delay))
    try:
        delayed = run("delayed", 32)
    finally:
        admin.clear_faults()
    for step in STEPS:
        assert delayed[step]["count"] >= 20 and delayed[step]["errors"] == 0
        shift = delayed[step]["p50"] - base[step]["p50"]
        if step == "update 4":
            expected = base[step]["p50"] + delay
            assert abs(delayed[step]["p50"] - expected) <= max(2.0, 0.05 * expected), (base[step], delayed[step])
        else:
            assert abs(shift) < delay / 4, (step, base[step], delayed[step])


def test_shapes_follow_their_schedules(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, types
        from loadtests.shapes import SHAPES
        options = types.SimpleNamespace(num_users=10, spawn_rate=2.0, run_time=100)
        runner = types.SimpleNamespace(environment=types.SimpleNamespace(parsed_options=options))
        out = {}
        for name, cls in SHAPES.items():
            shape = cls()
            shape.runner = runner
            out[name] = [shape.at(t) for t in (0, 30, 45, 55, 79, 99, 100)]
        print(json.dumps(out))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["ramp"] == [[10, 0.125]] * 6 + [None]
    assert got["step"] == [[3, 2.0], [5, 2.0], [5, 2.0], [8, 2.0], [10, 2.0], [10, 2.0], None]
    assert got["spike"] == [[2, 10.0], [2, 10.0], [10, 10.0], [10, 10.0], [2, 10.0], [2, 10.0], None]
    assert got["soak"] == [[10, 2.0]] * 6 + [None]


def test_kmt_load_needs_the_admin_url_for_an_external_backend(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*KMT, "load", "--backend-url", "http://127.0.0.1:9", "--report-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "--kci-admin-url" in proc.stderr
