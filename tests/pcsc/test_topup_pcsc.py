"""Whole top-ups through a real pcscd: the virtual card in vpcd, the terminal reading it with pyscard."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.stack import Stack
from terminal.flow import Outcome, TopupResult
from terminal.pcsc_reader import Dialect, PcscReader
from terminal.terminal import TopupTerminal
from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image
from virtual_card.faults import Fault, FaultKind
from virtual_card.reader import VirtualReader
from virtual_card.types import CommandCode
from virtual_card.vpcd import READER_NAMES, VpcdSlot

pytestmark = [pytest.mark.pcsc]

Reconcile = Callable[[list[str]], dict[str, Any]]


@pytest.fixture
def pcsc_terminal(pcscd: None, kmt_stack: Stack) -> Iterator[Callable[..., tuple[TopupTerminal, VpcdSlot]]]:
    """``pcsc_terminal(card, port)``: the card served into that vpcd slot and a terminal on its PC/SC reader."""
    opened: list[tuple[TopupTerminal, VpcdSlot]] = []

    def make(card: KmtCard, port: int = 35963, dialect: Dialect = Dialect.DIRECT) -> tuple[TopupTerminal, VpcdSlot]:
        reader = PcscReader(READER_NAMES[port], dialect=dialect)
        assert reader.wait_for_removal(3.0)  # pcscd has seen any earlier card leave this slot
        slot = VpcdSlot(port)
        slot.insert(VirtualReader(card))
        assert reader.wait_for_card(5.0)
        terminal = TopupTerminal(
            kmt_stack.backend_url, reader, tid=kmt_stack.tid, mid=kmt_stack.mid, auth=kmt_stack.auth
        )
        opened.append((terminal, slot))
        return terminal, slot

    yield make
    for terminal, slot in opened:
        terminal.close()
        reader = terminal.reader
        assert isinstance(reader, PcscReader)
        reader.close()
        slot.remove()
    if opened:
        time.sleep(0.6)  # let pcscd's 0.4-0.5 s poll see the slots empty before the next test inserts


def test_kmt_demo_through_pcsc(pcscd: None) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "demo", "--reader", "pcsc", "--dialect", "transparent", "--seed", "9"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PC/SC reader PcscReader('Virtual PCD 00 00', dialect=transparent)" in proc.stdout
    assert re.search(r"balance after\s+Rp\s+70,000", proc.stdout)
    assert "money invariant     holds" in proc.stdout


@pytest.mark.parametrize(
    ("kind", "on_card_after"),
    [(FaultKind.TEAR_BEFORE_COMMIT, 50_000), (FaultKind.TEAR_AFTER_COMMIT, 60_000)],
    ids=["before-write", "after-write"],
)
def test_removed_during_the_write_then_resumed(
    pcsc_terminal: Callable[..., tuple[TopupTerminal, VpcdSlot]],
    kmt_card: KmtCard,
    kmt_reconcile: Reconcile,
    kind: FaultKind,
    on_card_after: int,
) -> None:
    terminal, slot = pcsc_terminal(kmt_card)
    kmt_card.faults.add(Fault(kind, CommandCode.WRITE))
    first = terminal.topup(kmt_card.card_no, 10_000)
    assert (first.outcome, first.failed_step) == (Outcome.SUSPECT, "update 5")
    assert kmt_card.balance == on_card_after
    reader = terminal.reader
    assert isinstance(reader, PcscReader)
    assert slot.wait_gone(5.0)  # the card closed its vpcd connection...
    assert reader.wait_for_removal(5.0)  # ...and pcscd reported the slot empty, as a frontend waits for
    slot.insert(VirtualReader(kmt_card))
    assert reader.wait_for_card(5.0)
    second = terminal.topup(kmt_card.card_no, 10_000)
    assert second.ok, f"{second.failed_step}: {second.code} {second.message}"
    assert kmt_card.balance == 60_000
    report = kmt_reconcile([kmt_card.card_no])
    assert report["ok"], report["findings"]


def test_two_readers_two_cards_two_topups_at_once(
    pcsc_terminal: Callable[..., tuple[TopupTerminal, VpcdSlot]],
    kmt_card_pool: Any,
    kmt_reconcile: Reconcile,
) -> None:
    cards = [kmt_card_pool.take(), kmt_card_pool.take()]
    terminals = [pcsc_terminal(cards[0], 35963)[0], pcsc_terminal(cards[1], 36000, Dialect.ACR122)[0]]
    results: list[TopupResult] = []

    def run(terminal: TopupTerminal, card: KmtCard) -> None:
        results.append(terminal.topup(card.card_no, 25_000))

    threads = [threading.Thread(target=run, args=pair) for pair in zip(terminals, cards, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.SUCCESS]
    assert [c.balance for c in cards] == [75_000, 75_000]
    report = kmt_reconcile([c.card_no for c in cards])
    assert report["ok"], report["findings"]


def test_kmt_up_puts_the_first_card_into_the_pcsc_reader(pcscd: None, tmp_path: Path) -> None:
    args = ["up", "--pcsc", "--data", str(tmp_path), "--count", "2", "--backend-port", "0", "--kci-port", "0",
            "--reader-port", "0"]  # fmt: skip
    with subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(3)]
            assert lines[0].startswith("PC/SC reader Virtual PCD 00 00 holds card 6032000100000000"), lines
            with PcscReader(READER_NAMES[35963]) as reader:
                assert reader.wait_for_card(5.0)
                assert reader.idm() == make_card_image(1, 0).idm
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    assert proc.returncode == 0
    time.sleep(0.6)  # let pcscd see the slot empty before the next test
