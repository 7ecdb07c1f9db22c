"""Top-ups/s one Locust process sustains with card emulation, beside a plain FastHttpUser, same run.

Four Locust runs, one process each, ``--users`` users; the servers run in other processes:

1. ``KmtFrontend`` (loadtests/locustfile.py) on the reference stack: full top-ups (12 calls, 9 card
   commands on a virtual card, HMAC signing, response checks, exact per-step samples).
2. ``PlainFrontend`` (loadtests/plain.py): the same 12 POSTs with no card, auth or checks, back to
   back against the stack server's bare endpoint (a fixed success envelope).
3. The plain user paced (``--plain-pacing``) to the rate run 1 reached.
4. ``KmtFrontend`` back to back against recorded answers (loadtests/replay.py: one top-up recorded
   on the reference stack, its answers served per step; loadtests/replay_user.py gives each top-up a
   fresh copy of the recorded card, so the card checks and answers every command as it did live).

Measured: the Locust process's CPU time (all threads) per unit of work in a steady-state window
(bench/load_meter.py: from ``--warmup`` s after the start until 1 s before the end), so card seeding,
spawning, stopping and the reports are left out. Capacity per core = 1 / that CPU time.

The goal's ratio compares 4 with 2: both users saturate the generator (CPU ~1.0) against a server
that does nothing, so the difference is the generator's work. Run 1 cannot show capacity: the
reference backend and KCI serve far fewer top-ups than one generator core drives, so its generator
idles, and an idle gevent process pays more per request (a loop wake-up for nearly every socket
event, Locust's once-a-second housekeeping shared by few requests): run 3, the plain user at run 1's
rate, shows how much. Runs 1 and 3 are printed for that comparison; run 1 also proves the live
stack runs.

Run: .venv/bin/python -P bench/load.py [--seconds S] [--users N] [--warmup W]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
METER = ROOT / "bench" / "load_meter.py"


@dataclass(frozen=True)
class Window:
    """One run's steady-state window: generator CPU seconds, units done, wall seconds."""

    cpu_s: float
    units: int
    wall_s: float

    @property
    def rate(self) -> float:
        return self.units / self.wall_s

    @property
    def ms(self) -> float:
        return self.cpu_s / self.units * 1000


@dataclass(frozen=True)
class Bench:
    work: Path
    users: int
    seconds: int
    warmup: float

    def run(self, locustfile: str, args: list[str], unit: str, *, env: dict[str, str] | None = None) -> Window:
        """Run Locust headless with the meter; ``unit`` is "TYPE name" of the request counted."""
        out = self.work / "meter.json"
        out.unlink(missing_ok=True)
        meter_env = {
            "KMT_METER_FILE": str(out),
            "KMT_METER_UNIT": unit,
            "KMT_METER_WARMUP": str(self.warmup),
            "KMT_METER_WINDOW": str(self.seconds - self.warmup - 1),
        }
        cmd = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            f"{ROOT / locustfile},{METER}",
            "--headless",
            "--only-summary",
            *("-u", str(self.users), "-r", str(self.users), "-t", f"{self.seconds}s", "--stop-timeout", "5"),
            *args,
        ]
        proc = subprocess.run(
            cmd,
            check=False,
            cwd=self.work,
            env={**os.environ, **meter_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if not out.exists():
            raise SystemExit(f"{locustfile}: locust exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
        window = Window(**json.loads(out.read_text()))
        if not window.units:
            raise SystemExit(f"{locustfile}: no {unit} in the measuring window:\n{proc.stderr[-3000:]}")
        return window


def _server(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)


def _first_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        info: dict[str, Any] = json.loads(line)
    except ValueError as exc:
        raise SystemExit(f"{proc.args}: did not start (it said {line!r})") from exc
    return info


def _stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=12, help="length of each run")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the measuring window")
    parser.add_argument("--repeat", type=int, default=2, help="runs 2 and 4 alternate this many times; best kept")
    args = parser.parse_args()
    if args.seconds - args.warmup - 1 < 2:
        raise SystemExit("--seconds must leave a window of at least 2 s after --warmup")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        bench = Bench(Path(tmp), args.users, args.seconds, args.warmup)
        stack = _server(["-m", "loadtests.stack_server", "--bare"])
        servers.callback(_stop, stack)
        info = _first_line(stack)
        stack_json = bench.work / "stack.json"
        stack_json.write_text(json.dumps(info))
        live = bench.run(
            "loadtests/locustfile.py",
            ["--kmt-stack-info", str(stack_json), "--kmt-report-dir", "live", "--kmt-seed", "52"],
            "TOPUP topup",
        )
        answers = bench.work / "answers.json"
        record = [sys.executable, "-m", "loadtests.replay", "record", str(stack_json), str(answers)]
        subprocess.run(record, check=True, cwd=ROOT)
        replay_server = _server(["-m", "loadtests.replay", "serve", str(answers)])
        servers.callback(_stop, replay_server)
        auth = info["auth"]
        replay_args = [
            *("-H", _first_line(replay_server)["url"], "--kmt-report-dir", "replay"),
            *("--kmt-auth", auth["scheme"], "--kmt-key-id", auth["key_id"], "--kmt-secret", auth["secret"]),
        ]
        replay_env = {"KMT_REPLAY_SEED": str(json.loads(answers.read_text())["seed"])}
        plain_args = ["-H", info["bare_url"]]
        plains: list[Window] = []
        replays: list[Window] = []
        for _ in range(max(1, args.repeat)):  # alternate, so a noisy neighbour hits both alike
            plains.append(bench.run("loadtests/plain.py", plain_args, "POST confirm"))
            replays.append(bench.run("loadtests/replay_user.py", replay_args, "TOPUP topup", env=replay_env))
        pacing = f"{args.users / live.rate:.6f}"
        paced = bench.run("loadtests/plain.py", [*plain_args, "--plain-pacing", pacing], "POST confirm")
    plain, replay = min(plains, key=lambda m: m.ms), min(replays, key=lambda m: m.ms)
    s, w = args.seconds, args.warmup
    print(
        f"{args.users} users, runs of {s} s; Locust process CPU from {w:g} s to {s - 1} s; servers in other processes"
    )
    rows = (
        ("1 KmtFrontend, reference stack     ", [live], "top-ups"),
        ("2 plain user, back to back         ", plains, "sequences"),
        ("3 plain user, paced to run 1's rate", [paced], "sequences"),
        ("4 KmtFrontend, recorded answers    ", replays, "top-ups"),
    )
    for label, runs, unit in rows:
        best = min(runs, key=lambda m: m.ms)
        others = ", ".join(f"{m.ms:.2f}" for m in runs if m is not best)
        print(
            f"{label}: {best.rate:7.1f} {unit}/s  {best.ms:5.2f} ms CPU each -> {1000 / best.ms:6.0f} /s per core"
            + (f"  (other runs: {others} ms)" if others else "")
        )
    print(
        f"at run 1's rate (1 vs 3): the real user costs {live.ms - paced.ms:.2f} ms more per top-up than the plain one"
    )
    print(
        f"generator capacity with card emulation (4 vs 2, both saturated): {plain.ms / replay.ms:.2f} x "
        "the plain user's (goal >= 0.70)"
    )


if __name__ == "__main__":
    main()
