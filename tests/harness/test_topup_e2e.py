"""The whole top-up end to end through the embedded stack, with the money invariant after each test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.stack import Stack, StackConfig, embedded_stack
from terminal.flow import Outcome
from terminal.terminal import TopupTerminal
from virtual_card.card import KmtCard
from virtual_card.faults import Fault, FaultKind
from virtual_card.types import CommandCode

Reconcile = Callable[[list[str]], dict[str, Any]]
MakeTerminal = Callable[..., TopupTerminal]


def assert_money_holds(reconcile: Reconcile, *cards: KmtCard) -> None:
    report = reconcile([c.card_no for c in cards])
    assert report["ok"], report["findings"]


def test_one_topup(kmt_card: KmtCard, kmt_terminal: MakeTerminal, kmt_reconcile: Reconcile) -> None:
    terminal = kmt_terminal(kmt_card.card_no)
    result = terminal.topup(kmt_card.card_no, 10_000)
    assert result.outcome is Outcome.SUCCESS, result.message
    assert (result.balance_before, result.balance_after) == (50_000, 60_000)
    assert kmt_card.balance == 60_000
    assert result.reservation_number and result.reservation_number.startswith("RBLP")
    assert result.load_balance_number and result.load_balance_number.startswith("LBLP")
    steps = [c.step for c in terminal.calls if c.kind == "api"]
    assert steps == [
        "card-check 1", "card-check 2", "card-check 3", "pending",
        *(f"update {i}" for i in range(1, 8)), "confirm",
    ]  # fmt: skip
    assert [c.step for c in terminal.calls if c.kind == "card"] == [
        "card-check 1", "card-check 2", *(f"update {i}" for i in range(1, 7)),
    ]  # fmt: skip
    assert all(c.code == 200 and c.latency > 0 for c in terminal.calls if c.kind == "api")
    assert_money_holds(kmt_reconcile, kmt_card)


def test_hundred_sequential_topups_on_one_card(
    kmt_card: KmtCard, kmt_terminal: MakeTerminal, kmt_reconcile: Reconcile
) -> None:
    terminal = kmt_terminal(kmt_card.card_no)
    numbers = set()
    for i in range(100):
        result = terminal.topup(kmt_card.card_no, 10_000)
        assert result.ok, f"top-up {i}: {result.failed_step} {result.code} {result.message}"
        numbers.add(result.load_balance_number)
        assert result.balance_after == 50_000 + 10_000 * (i + 1)
    assert len(numbers) == 100
    assert kmt_card.balance == 1_050_000
    assert_money_holds(kmt_reconcile, kmt_card)


def test_fifty_cards_in_parallel() -> None:
    async def scenario() -> None:
        async with embedded_stack(StackConfig(seed=11, cards=50)) as stack:
            terminals = [stack.async_terminal(n) for n in stack.card_nos]
            results = await asyncio.gather(
                *(t.topup(t.identity(n).card_no, 20_000) for t, n in zip(terminals, stack.card_nos, strict=True))
            )
            for t in terminals:
                await t.close()
            assert [r.outcome for r in results] == [Outcome.SUCCESS] * 50
            assert all(stack.card(n).balance == 70_000 for n in stack.card_nos)
            report = await stack.reconcile()
            assert report["ok"], report["findings"]

    asyncio.run(scenario())


def test_refused_step_is_reported_with_its_code(kmt_card: KmtCard, kmt_terminal: MakeTerminal) -> None:
    result = kmt_terminal(kmt_card.card_no).topup(kmt_card.card_no, 5_000)  # below the Rp 10,000 minimum
    assert (result.outcome, result.failed_step, result.code) == (Outcome.FAILED, "pending", 418)
    assert kmt_card.balance == 50_000


CARD_COMMANDS = ["card-check 1", "card-check 2", "update 1", "update 2", "update 3", "update 4", "update 5", "update 6"]


@pytest.mark.parametrize("kind", [FaultKind.NO_ANSWER, FaultKind.LOSE_ANSWER], ids=["before", "after"])
@pytest.mark.parametrize("position", range(1, 9), ids=CARD_COMMANDS)
def test_card_removed_at_each_command_then_resumed(
    kmt_card: KmtCard,
    kmt_terminal: MakeTerminal,
    kmt_stack: Stack,
    kmt_reconcile: Reconcile,
    kind: FaultKind,
    position: int,
) -> None:
    """Removal before or after each card command; putting the card back and running the top-up again
    finishes it exactly once: never lost, never doubled."""
    terminal = kmt_terminal(kmt_card.card_no)
    kmt_card.faults.add(Fault(kind, nth=position))
    first = terminal.topup(kmt_card.card_no, 10_000)
    command = CARD_COMMANDS[position - 1]
    assert first.failed_step == command
    write_sent = command == "update 5"  # update 5's command is the write
    after_write = command == "update 6"
    if write_sent or after_write:
        assert first.outcome is Outcome.SUSPECT
    else:
        assert first.outcome is Outcome.CARD_REMOVED
    expected_now = 50_000 + (10_000 if after_write or (write_sent and kind is FaultKind.LOSE_ANSWER) else 0)
    assert kmt_card.balance == expected_now

    kmt_stack.reader(kmt_card.card_no).insert(kmt_card)
    second = terminal.topup(kmt_card.card_no, 10_000)
    assert second.outcome is Outcome.SUCCESS, f"{second.failed_step}: {second.code} {second.message}"
    assert kmt_card.balance == 60_000
    assert second.balance_after == 60_000
    assert_money_holds(kmt_reconcile, kmt_card)


def test_stack_kept_on_disk_survives_a_restart(tmp_path: Path) -> None:
    """Cards, KCI state and the backend database in one folder: a second start goes on where the first stopped."""
    config = StackConfig(
        seed=12, cards=1, cards_dir=tmp_path / "cards", kci_state=tmp_path / "kci.sqlite3", backend_db=tmp_path / "b.db"
    )

    async def one_topup() -> tuple[int, dict[str, Any]]:
        async with embedded_stack(config) as stack:
            card_no = stack.card_nos[0]
            async with stack.async_terminal(card_no) as terminal:
                result = await terminal.topup(card_no, 10_000)
            assert result.ok, result.message
            return stack.card(card_no).balance, await stack.reconcile()

    first, _ = asyncio.run(one_topup())
    second, report = asyncio.run(one_topup())
    assert (first, second) == (60_000, 70_000)
    assert report["ok"], report["findings"]


def test_resume_after_a_fare_paid_in_between(
    kmt_card: KmtCard, kmt_terminal: MakeTerminal, kmt_stack: Stack, kmt_reconcile: Reconcile
) -> None:
    """The write reached the card but its answer did not; the rider goes through a gate before coming back."""
    terminal = kmt_terminal(kmt_card.card_no)
    kmt_card.faults.add(Fault(FaultKind.LOSE_ANSWER, CommandCode.WRITE))
    assert terminal.topup(kmt_card.card_no, 10_000).outcome is Outcome.SUSPECT
    kmt_stack.reader(kmt_card.card_no).insert(kmt_card)
    kmt_card.pay_fare(4_000, 0x0101, datetime.now(UTC))
    result = terminal.topup(kmt_card.card_no, 10_000)
    assert result.ok, f"{result.failed_step}: {result.code} {result.message}"
    assert result.balance_after == 60_000  # the load's own result
    assert kmt_card.balance == 56_000  # loaded once, fare once
    assert_money_holds(kmt_reconcile, kmt_card)


def test_lost_answer_of_update_7_is_recovered_not_loaded_again(
    kmt_card: KmtCard,
    kmt_terminal: MakeTerminal,
    kmt_stack: Stack,
    kmt_run: Callable[..., Any],
    kmt_reconcile: Reconcile,
) -> None:
    """KCI verifies the load at update 7 but its answer never reaches the backend: the backend asks KCI
    (reservation inquiry) instead of failing, and the card is loaded exactly once."""
    admin = kmt_stack.require_admin()
    kmt_run(admin.add_fault(kind="reset", operation="load-balance", step=7, phase="after",
                                    card_no=kmt_card.card_no, times=1))  # fmt: skip
    terminal = kmt_terminal(kmt_card.card_no)
    try:
        result = terminal.topup(kmt_card.card_no, 10_000)
        assert [f["fired"] for f in kmt_run(admin.faults())] == [1], "the fault did not fire"
    finally:
        kmt_run(admin.clear_faults())
    assert result.ok, f"{result.failed_step}: {result.code} {result.message}"
    assert [c.step for c in terminal.calls if c.kind == "api"].count("update 7") == 1  # the backend recovered
    assert kmt_card.balance == 60_000
    assert_money_holds(kmt_reconcile, kmt_card)


def test_loaded_but_unconfirmed_topup_is_confirmed_on_the_next_attempt(
    kmt_card: KmtCard, kmt_terminal: MakeTerminal, kmt_reconcile: Reconcile
) -> None:
    """The frontend stopped after update 7 (no confirm): its next attempt confirms that load, loads nothing new."""
    from terminal.flow import card_check, pending, update

    terminal = kmt_terminal(kmt_card.card_no)
    who = terminal.identity(kmt_card.card_no)
    info = terminal.run(card_check(who))
    first = terminal.run(pending(who, 10_000))
    terminal.run(update(who, info.balance))
    assert kmt_card.balance == 60_000

    again = terminal.topup(kmt_card.card_no, 10_000)
    assert again.ok, f"{again.failed_step}: {again.code} {again.message}"
    assert again.reservation_number == first.reservation_number
    assert [c.step for c in terminal.calls if c.kind == "api"][-2:] == ["pending", "confirm"]
    assert kmt_card.balance == 60_000 and again.balance_after == 60_000
    assert_money_holds(kmt_reconcile, kmt_card)
