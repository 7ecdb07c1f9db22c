"""The parts as separate programs, the way a partner wires them: kmt kci, kmt backend, then kmt demo
and a terminal pointed at that backend (the "test your own backend" path of the README)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.readers import InProcessReader
from terminal.terminal import Auth, TopupTerminal
from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image

KMT = [sys.executable, "-m", "harness.cli"]
SECRET = "partner-terminal-secret-0001"


def read_until(proc: subprocess.Popen[str], pattern: str, timeout: float = 30.0) -> re.Match[str]:
    assert proc.stdout is not None
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"{pattern!r} not printed; got {''.join(seen)!r}")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``kmt kci`` and ``kmt backend`` in their own processes: (backend URL, KCI root URL)."""
    kci = subprocess.Popen([*KMT, "kci", "--port", "0", "--seed", "31", "--cards", "3"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    backend = None
    try:
        kci_url = read_until(kci, r"KCI API\s+(http://\S+)").group(1)
        partner = read_until(kci, r"partner\s+id=(\S+) secret=(\S+)")
        backend = subprocess.Popen(
            [*KMT, "backend", "--kci-url", kci_url, "--kci-partner-id", partner.group(1),
             "--kci-partner-secret", partner.group(2), "--terminal", f"term-01:T0000001:M0000001:{SECRET}",
             "--port", "0", "--db", str(tmp_path / "backend.sqlite3")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        backend_url = read_until(backend, r"kmt backend: (http://127\.0\.0\.1:\d+)/topup-kci").group(1)
        yield backend_url, kci_url.removesuffix("/kci/v1")
    finally:
        for proc in (backend, kci):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
                if proc.stdout is not None:
                    proc.stdout.close()


def test_a_terminal_tops_up_through_separately_started_programs(running: tuple[str, str]) -> None:
    backend_url, _ = running
    card = KmtCard(make_card_image(31, 0, balance=50_000))
    with TopupTerminal(backend_url, InProcessReader(card), tid="T0000001", mid="M0000001",
                       auth=Auth.hmac("term-01", SECRET)) as terminal:  # fmt: skip
        result = terminal.topup(card.card_no, 25_000)
    assert result.ok, f"{result.failed_step}: {result.code} {result.message}"
    assert card.balance == 75_000


def test_kmt_demo_against_an_external_backend(running: tuple[str, str]) -> None:
    backend_url, kci_url = running
    proc = subprocess.run(
        [*KMT, "demo", "--backend-url", backend_url, "--kci-url", kci_url, "--seed", "31", "--card", "1",
         "--auth", "bearer", "--api-key", SECRET],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "outcome: SUCCESS" in proc.stdout and "money invariant     holds" in proc.stdout
    wrong = subprocess.run(
        [*KMT, "demo", "--backend-url", backend_url, "--kci-url", kci_url, "--seed", "31", "--card", "2",
         "--auth", "bearer", "--api-key", "not-the-key-0000000"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "code 401" in wrong.stdout and "check --auth/--api-key/--key-id" in wrong.stdout
