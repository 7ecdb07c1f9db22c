"""``kmt load``: a Locust run against the embedded stack (default) or your backend, in one command.

The stack runs in its own process (``python -m loadtests.stack_server``), Locust in another
(``python -m locust -f loadtests/locustfile.py --headless ...``); this command wires them together,
passes everything after ``--`` to Locust, and returns Locust's exit status (3: SLO breached, 4:
money invariant broken or unchecked).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from .schedules import SCHEDULES

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    load = sub.add_parser(
        "load",
        help="load-test a backend with Locust: per-step latency, SLO gate, reports",
        description="Run Locust users (one virtual card each) against the embedded stack or --backend-url. "
        "Extra Locust options go after --, e.g. kmt load -- --processes 2",
    )
    load.add_argument("--users", "-u", type=int, default=10, help="peak number of users (default 10)")
    load.add_argument("--spawn-rate", "-r", type=float, default=None, help="users started per second (default: all)")
    load.add_argument("--run-time", "-t", default="30s", help="how long (Locust time span, default 30s)")
    load.add_argument("--shape", choices=sorted(SCHEDULES), help="load shape instead of a constant user count")
    load.add_argument("--slo", type=Path, help="SLO file (TOML or JSON); a breach exits with status 3")
    load.add_argument("--report-dir", type=Path, default=Path("kmt-load-report"), help="default ./kmt-load-report")
    load.add_argument(
        "--processes", type=int, default=0, help="Locust worker processes on this machine (-1: one per core)"
    )
    load.add_argument("--amount", type=int, default=10_000, help="top-up amount in rupiah (default 10,000)")
    load.add_argument("--card-balance", type=int, default=50_000, help="balance of each new card (default 50,000)")
    load.add_argument("--pacing", type=float, default=0.0, help="seconds between one user's top-up starts (0: none)")
    load.add_argument("--seed", type=int, default=0, help="card seed (default: random 1000-9999)")
    sut = load.add_argument_group("system under test (default: the embedded reference backend and KCI simulator)")
    sut.add_argument("--backend-url", help="load-test this backend instead of the embedded one")
    sut.add_argument(
        "--kci-admin-url", help="admin API of the KCI simulator your backend uses (seeds cards, reconciles)"
    )
    sut.add_argument("--auth", choices=["none", "bearer", "hmac"], default="none", help="auth to --backend-url")
    sut.add_argument("--api-key", default="", help="bearer API key, or the HMAC secret")
    sut.add_argument("--key-id", default="", help="HMAC key id")
    sut.add_argument("--tid", default="T0000001", help="terminal id (default T0000001)")
    sut.add_argument("--mid", default="M0000001", help="merchant id (default M0000001)")
    load.add_argument("locust_args", nargs=argparse.REMAINDER, help="-- then options for Locust itself")
    load.set_defaults(func=load_command)


def locust_command(args: argparse.Namespace, stack_info: Path | None) -> list[str]:
    report: Path = args.report_dir
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate if args.spawn_rate is not None else args.users),
        "--run-time",
        str(args.run_time),
        "--stop-timeout",
        "10",
        "--only-summary",
        "--csv",
        str(report / "locust"),
        "--html",
        str(report / "locust.html"),
        "--json-file",
        str(report / "locust"),
        "--kmt-report-dir",
        str(report),
        "--kmt-amount",
        str(args.amount),
        "--kmt-card-balance",
        str(args.card_balance),
        "--kmt-pacing",
        str(args.pacing),
        "--kmt-seed",
        str(args.seed),
    ]
    if args.processes:
        cmd += ["--processes", str(args.processes)]
    if args.slo is not None:
        cmd += ["--kmt-slo", str(args.slo)]
    if stack_info is not None:
        cmd += ["--kmt-stack-info", str(stack_info)]
    else:
        cmd += ["--host", args.backend_url, "--kmt-tid", args.tid, "--kmt-mid", args.mid, "--kmt-auth", args.auth]
        cmd += ["--kmt-key-id", args.key_id, "--kmt-secret", args.api_key]
        if args.kci_admin_url:
            cmd += ["--kmt-admin-url", args.kci_admin_url]
    extra = list(args.locust_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    return cmd + extra


def load_command(args: argparse.Namespace) -> int:
    report: Path = args.report_dir
    report.mkdir(parents=True, exist_ok=True)
    if args.slo is not None and not args.slo.is_file():
        print(f"kmt load: SLO file {args.slo} not found", file=sys.stderr)
        return 2
    if args.backend_url and not args.kci_admin_url:
        print(
            "kmt load: without --kci-admin-url the cards cannot be registered at KCI nor the money checked; "
            "give the admin URL of the KCI simulator your backend uses",
            file=sys.stderr,
        )
        return 2
    env = {**os.environ, "KMT_SHAPE": args.shape} if args.shape else None
    if args.backend_url:
        return subprocess.call(locust_command(args, None), env=env)  # noqa: S603 - our own command line
    seed = args.seed or 0
    server_cmd = [sys.executable, "-m", "loadtests.stack_server"] + (["--seed", str(seed)] if seed else [])
    with subprocess.Popen(  # noqa: S603 - our own module
        server_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None and server.stdin is not None
        line = server.stdout.readline()
        try:
            info = json.loads(line)
        except ValueError:
            print(f"kmt load: the embedded stack did not start ({line.strip() or 'no output'})", file=sys.stderr)
            server.kill()
            return 2
        stack_info = report / "stack.json"
        stack_info.write_text(json.dumps(info) + "\n", encoding="utf-8")
        print(f"kmt load: embedded stack: backend {info['backend_url']}, KCI {info['kci_url']}", flush=True)
        try:
            return subprocess.call(locust_command(args, stack_info), env=env)  # noqa: S603
        finally:
            server.stdin.close()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.terminate()
                server.wait(5)
