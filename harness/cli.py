"""The ``kmt`` command line: one subcommand group per package, each registered by its own ``cli`` module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module defines ``register(subparsers)`` adding its subcommand(s); the handler is stored as
# ``func`` in the parsed namespace and returns the process exit status.
COMMAND_MODULES: tuple[str, ...] = (
    "virtual_card.cli",
    "harness.cli_stack",
    "backend.cli",
    "simulator.cli",
    "loadtests.cli",
    "features.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kmt", description="kmt-harness: test harness for KMT top-up systems")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
