"""kmt demo and kmt up as a user runs them, the HTTP virtual reader, and the terminal's plain errors."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.stack import Stack
from terminal.api import ApiResponse
from terminal.errors import CardRemoved, CardTimeout, ProtocolViolation
from terminal.flow import Outcome
from terminal.readers import HttpReader, InProcessReader
from terminal.terminal import Auth, TopupTerminal
from virtual_card.card import KmtCard
from virtual_card.faults import Fault, FaultKind
from virtual_card.types import CommandCode

KMT = [sys.executable, "-m", "harness.cli"]


def test_kmt_demo_runs_a_full_topup() -> None:
    proc = subprocess.run(
        [*KMT, "demo", "--amount", "30000", "--seed", "5"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "outcome: SUCCESS" in out
    assert re.search(r"balance before\s+Rp\s+50,000", out) and re.search(r"balance after\s+Rp\s+80,000", out)
    assert re.search(r"reservation number\s+RBLP\d{14}", out)
    assert re.search(r"load balance number LBLP\d{14}", out)
    assert "money invariant     holds" in out
    table = [line for line in out.splitlines() if re.match(r"^\s*\d+\s+(card-check|pending|update|confirm)", line)]
    assert len(table) == 12
    assert "authenticated Write" in out


def test_kmt_demo_fails_plainly_when_the_backend_is_unreachable() -> None:
    proc = subprocess.run(
        [*KMT, "demo", "--backend-url", "http://127.0.0.1:9", "--kci-url", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "127.0.0.1:9" in proc.stdout + proc.stderr


def test_kmt_demo_below_minimum_exits_nonzero_with_the_code() -> None:
    proc = subprocess.run([*KMT, "demo", "--amount", "100"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "outcome: FAILED" in proc.stdout and "code 418" in proc.stdout


def test_kmt_up_serves_the_http_reader_and_keeps_cards(tmp_path: Path) -> None:
    args = [
        "up",
        "--data",
        str(tmp_path),
        "--count",
        "2",
        "--backend-port",
        "0",
        "--kci-port",
        "0",
        "--reader-port",
        "0",
    ]
    with subprocess.Popen([*KMT, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        _use_kmt_up(proc)
    assert proc.returncode == 0
    saved = json.loads((tmp_path / "cards" / "6032000100000000.json").read_text())
    assert saved["card_no"] == "6032000100000000" and saved["blocks"]["1010"][0].startswith("60ea0000")  # 60,000 LE
    assert (tmp_path / "kci.sqlite3").exists() and (tmp_path / "backend.sqlite3").exists()


def _use_kmt_up(proc: subprocess.Popen[str]) -> None:
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "6032000100000001" in line:
                break
        text = "".join(lines)
        reader_url = re.search(r"virtual reader\s+(http://\S+)", text)
        backend_url = re.search(r"backend\s+(http://127\.0\.0\.1:\d+)", text)
        key = re.search(r"Bearer (\w+)", text)
        assert reader_url and backend_url and key, text
        reader = HttpReader(reader_url.group(1))
        assert reader.card_present()
        terminal = TopupTerminal(
            backend_url.group(1), reader, tid="T0000001", mid="M0000001", auth=Auth.bearer(key.group(1))
        )
        result = terminal.topup("6032000100000000", 10_000)
        terminal.close()
        assert result.ok, result.message
        assert result.balance_after == 60_000
        with urllib.request.urlopen(reader_url.group(1) + "/cards") as resp:
            cards = json.loads(resp.read())
        assert cards[0] == {"card_no": "6032000100000000", "idm": cards[0]["idm"], "balance": 60_000, "slot": "0"}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_in_process_reader_removal_and_timeouts(card: KmtCard) -> None:
    reader = InProcessReader(card, sleep=False)
    assert reader.transceive(bytes.fromhex("00ffff0100"))[:2] == b"\x14\x01"
    card.faults.add(Fault(FaultKind.DELAY, delay=2.0))
    with pytest.raises(CardTimeout, match=r"no answer within 0\.500 s"):
        reader.transceive(bytes.fromhex("00ffff0100"), timeout=0.5)
    assert reader.exchange(bytes.fromhex("00ffff0100"), 0.5)[0] == 0.0  # the delay fired once
    reader.remove()
    assert not reader.card_present()
    with pytest.raises(CardRemoved, match="no card"):
        reader.transceive(bytes.fromhex("00ffff0100"))


def test_wrong_credentials_are_a_401_failure(kmt_stack: Stack, kmt_card: KmtCard) -> None:
    reader = kmt_stack.reader(kmt_card.card_no)
    auth = Auth.bearer("not-the-key-of-any-terminal")
    with TopupTerminal(kmt_stack.backend_url, reader, tid=kmt_stack.tid, mid=kmt_stack.mid, auth=auth) as terminal:
        result = terminal.topup(kmt_card.card_no, 10_000)
    assert (result.outcome, result.code, result.failed_step) == (Outcome.FAILED, 401, "card-check 1")
    assert kmt_card.balance == 50_000


def test_unreachable_backend_is_an_error_outcome(kmt_card: KmtCard, kmt_stack: Stack) -> None:
    with TopupTerminal("http://127.0.0.1:9", kmt_stack.reader(kmt_card.card_no), tid="T", mid="M") as terminal:
        result = terminal.topup(kmt_card.card_no, 10_000)
    assert result.outcome is Outcome.ERROR
    assert "cannot reach the backend at http://127.0.0.1:9" in result.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "not a JSON object"),
        ({"data": {}}, "'response' object missing"),
        ({"response": {"code": "200"}}, "response.code must be an integer"),
    ],
)
def test_envelope_violations_name_the_field(body: object, message: str) -> None:
    with pytest.raises(ProtocolViolation, match=message):
        ApiResponse.parse(200, body, "pending")


def test_reader_retry_policy_asks_again_but_never_resends_the_write(
    kmt_terminal: Callable[..., TopupTerminal], kmt_card: KmtCard, kmt_stack: Stack
) -> None:
    """A card that does not answer in time is asked again (update 1's Polling); the write is not:
    its late answer makes the top-up suspect, and running it again finishes it exactly once."""
    kmt_card.faults.add(Fault(FaultKind.DELAY, CommandCode.POLLING, nth=2, delay=0.5))
    terminal = kmt_terminal(kmt_card.card_no, retries=2, card_timeout=0.05)
    result = terminal.topup(kmt_card.card_no, 10_000)
    assert result.ok, result.message
    polls = [c for c in terminal.calls if c.kind == "card" and c.step == "update 1"]
    assert [c.error is not None for c in polls] == [True, False]
    assert polls[0].error is not None and polls[0].error.startswith("CardTimeout")

    kmt_card.faults.add(Fault(FaultKind.DELAY, CommandCode.WRITE, delay=0.5))
    terminal.calls.clear()
    result = terminal.topup(kmt_card.card_no, 10_000)
    assert (result.outcome, result.failed_step) == (Outcome.SUSPECT, "update 5")
    assert len([c for c in terminal.calls if c.kind == "card" and c.step == "update 5"]) == 1
    assert kmt_card.balance == 70_000  # the late write did reach the card
    again = terminal.topup(kmt_card.card_no, 10_000)
    assert again.ok and again.balance_after == 70_000 and kmt_card.balance == 70_000


def test_kmt_does_not_load_gevent() -> None:
    """Locust monkey-patches with gevent on import; the kmt command (asyncio, threads, PC/SC) must not."""
    script = (
        "import sys, harness.cli; harness.cli.build_parser(); print(sorted({'gevent', 'locust'} & set(sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
