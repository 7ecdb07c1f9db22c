"""``kmt bdd``: run the Gherkin suite (the installed ``features`` package) with pytest.

    kmt bdd                                   # on the embedded stack
    kmt bdd -- --backend-url URL --kci-url URL --backend-auth hmac ... --junitxml=kmt.xml

Everything after ``--`` goes to pytest unchanged (the kmt options of the README, ``-k``, report options).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "bdd",
        help="run the Gherkin suite against the embedded stack or your backend",
        description="Runs `pytest --pyargs features` with the pytest options given after `--` "
        "(e.g. --backend-url, --kci-url, --backend-auth, -k, --junitxml, --cucumberjson).",
    )
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="options for pytest, after --")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """pytest in a fresh interpreter: other kmt commands' imports (Locust patches the standard
    library with gevent) must not leak into the suite."""
    extra = list(args.pytest_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    command = [sys.executable, "-m", "pytest", "--pyargs", "features", *extra]
    return subprocess.call(command)  # noqa: S603 - the user's own pytest options, no shell
