"""Top-ups/s one Locust process sustains with card emulation, beside a plain FastHttpUser, same run.

1. ``KmtFrontend`` (loadtests/locustfile.py): full top-ups (12 calls, 9 card commands on a virtual card,
   HMAC auth, response checks, exact per-step samples) against the embedded reference backend.
2. ``PlainFrontend`` (loadtests/plain.py): the same 12 POSTs with no card, auth or checks, against the
   stack server's bare endpoint (a fixed success envelope), so the generator is the only cost.

The backend and KCI run in their own process; the rate of (1) is bounded by them, so the figure that
compares the generators is CPU time of the Locust process per top-up (getrusage of the child): its
inverse is the top-ups/s one generator core sustains. Ratio = that capacity / the plain capacity.

Run: .venv/bin/python -P bench/load.py [--seconds S] [--users N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_locust(locustfile: str, args: list[str], cwd: Path) -> tuple[float, float]:
    """Run Locust headless; returns (CPU seconds of the Locust process, wall seconds)."""
    cpu, wall = child_cpu(), time.perf_counter()
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / locustfile), "--headless", "--only-summary", *args]
    proc = subprocess.run(cmd, check=False, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"locust failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return child_cpu() - cpu, time.perf_counter() - wall


def kmt_run(work: Path, users: int, seconds: int, tag: str) -> tuple[float, int, float]:
    """(generator CPU s, top-ups, top-ups/s) of one KmtFrontend run."""
    cpu, _ = run_locust(
        "loadtests/locustfile.py",
        [
            *_common(users, seconds),
            "--kmt-stack-info",
            "stack.json",
            "--kmt-report-dir",
            tag,
            "--kmt-seed",
            str(40 + seconds),
        ],
        work,
    )
    topups = json.loads((work / tag / "steps.json").read_text())["topups"]
    return cpu, topups["succeeded"], topups["per_second"]


def plain_run(work: Path, url: str, users: int, seconds: int, tag: str) -> tuple[float, int, float]:
    cpu, _ = run_locust("loadtests/plain.py", [*_common(users, seconds), "-H", url, "--json-file", tag], work)
    done = next(e["num_requests"] for e in json.loads((work / f"{tag}.json").read_text()) if e["name"] == "confirm")
    return cpu, done, done / seconds


def _common(users: int, seconds: int) -> list[str]:
    return ["-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "5"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=6, help="the short run; the long one is twice as long")
    parser.add_argument("--users", type=int, default=8)
    args = parser.parse_args()
    s, u = args.seconds, args.users
    with (
        tempfile.TemporaryDirectory() as tmp,
        subprocess.Popen(
            [sys.executable, "-m", "loadtests.stack_server", "--bare"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        ) as server,
    ):
        assert server.stdout is not None and server.stdin is not None
        info = json.loads(server.stdout.readline())
        work = Path(tmp)
        (work / "stack.json").write_text(json.dumps(info))
        # two lengths each: the difference cancels start-up, card seeding and report writing
        k1, k2 = kmt_run(work, u, s, "k1"), kmt_run(work, u, 2 * s, "k2")
        p1, p2 = plain_run(work, info["bare_url"], u, s, "p1"), plain_run(work, info["bare_url"], u, 2 * s, "p2")
        server.stdin.close()
        server.wait(15)
    kmt_ms = (k2[0] - k1[0]) / (k2[1] - k1[1]) * 1000
    plain_ms = (p2[0] - p1[0]) / (p2[1] - p1[1]) * 1000
    print(f"{u} users; runs of {s} s and {2 * s} s; one Locust process; backend + KCI in another process")
    print(
        f"plain FastHttpUser, 12 POSTs to a bare endpoint:  {p2[2]:8.1f} sequences/s  "
        f"{plain_ms:6.2f} ms generator CPU per sequence -> {1000 / plain_ms:7.1f} /s per core"
    )
    print(
        f"KmtFrontend, full top-ups on the reference stack: {k2[2]:8.1f} top-ups/s    "
        f"{kmt_ms:6.2f} ms generator CPU per top-up   -> {1000 / kmt_ms:7.1f} /s per core"
    )
    print(f"generator capacity with card emulation: {plain_ms / kmt_ms:.2f} x the plain user's (goal >= 0.70)")


if __name__ == "__main__":
    main()
