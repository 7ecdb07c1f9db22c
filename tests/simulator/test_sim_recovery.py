"""Suspect recovery and concurrency: a write is never applied twice nor lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sim_driver import Driver, make_card

from virtual_card.card import KmtCard
from virtual_card.faults import Fault, FaultKind
from virtual_card.frames import AuthRead, AuthWrite, parse_command
from virtual_card.types import CommandCode


async def reconcile_ok(driver: Driver, card: KmtCard, fares: int = 0) -> None:
    report = await driver.admin.reconcile([{"card_no": card.card_no, "balance": card.balance, "fares": fares}])
    assert report["ok"] is True, report


async def finish(
    driver: Driver, card: KmtCard, datas: list[dict[str, Any]], last_balance: int | None = None
) -> dict[str, Any]:
    balance = card.balance if last_balance is None else last_balance
    return await driver.ok(
        "load-balance/confirm",
        driver.base(card) | {"session_id": datas[-1]["session_id"], "last_balance": balance},
    )


def command_type(data: dict[str, Any]) -> type:
    return type(parse_command(bytes.fromhex(data["command"])))


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", [FaultKind.LOSE_ANSWER, FaultKind.TEAR_AFTER_COMMIT])
async def test_write_applied_but_answer_lost_is_not_written_again(driver: Driver, kind: FaultKind) -> None:
    card = make_card(0)
    res = await driver.reserve(card, 20_000)
    card.faults.add(Fault(kind, CommandCode.WRITE))
    env, datas = await driver.load_steps(card)
    assert datas[-1]["step"] == 5 and command_type(datas[-1]) is AuthWrite
    assert card.balance == 70_000  # the write reached the card, its answer did not reach KCI
    [open_] = (await driver.ok("reservation/check", driver.base(card)))["reservations"]
    assert open_["status"] == "IN_PROGRESS" and open_["suspect"] is False  # its session is still alive

    card.power_on()
    env, datas = await driver.load_steps(card)  # the next run for the card recovers it
    assert env["code"] == 200, env
    assert command_type(datas[4]) is AuthRead  # update 5 reads again instead of writing
    assert datas[-1]["balance"] == 70_000 and datas[-1]["prev_balance"] == 50_000
    assert card.balance == 70_000
    await finish(driver, card, datas)
    events = [e["event"] for e in await driver.admin.ledger(card.card_no)]
    assert events == ["RESERVED", "WRITE_ISSUED", "RECOVERED_APPLIED", "LOADED", "CONFIRMED"]
    inquiry = await driver.ok("reservation/inquiry", {"reservation_number": res["reservation_number"]})
    assert inquiry["status"] == "SUCCESS"
    await reconcile_ok(driver, card)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", [FaultKind.NO_ANSWER, FaultKind.TEAR_BEFORE_COMMIT])
async def test_write_not_applied_is_written_on_recovery(driver: Driver, kind: FaultKind) -> None:
    card = make_card(0)
    await driver.reserve(card, 20_000)
    card.faults.add(Fault(kind, CommandCode.WRITE))
    env, datas = await driver.load_steps(card)
    assert datas[-1]["step"] == 5 and card.balance == 50_000
    card.power_on()
    env, datas = await driver.load_steps(card)
    assert env["code"] == 200, env
    assert command_type(datas[4]) is AuthWrite
    assert card.balance == 70_000
    await finish(driver, card, datas)
    events = [e["event"] for e in await driver.admin.ledger(card.card_no)]
    assert events == ["RESERVED", "WRITE_ISSUED", "REWRITE_ISSUED", "LOADED", "CONFIRMED"]
    await reconcile_ok(driver, card)


@pytest.mark.asyncio
async def test_suspect_after_session_expiry_blocks_new_top_ups(driver: Driver) -> None:
    card = make_card(0)
    res = await driver.reserve(card, 20_000)
    env, datas = await driver.load_steps(card, until=5)
    card.handle(bytes.fromhex(datas[-1]["command"]))  # written; the answer is simply never delivered
    await driver.admin.advance_clock(301)  # the session expires: outcome unknown
    [open_] = (await driver.ok("reservation/check", driver.base(card)))["reservations"]
    assert open_["suspect"] is True and open_["reservation_number"] == res["reservation_number"]
    env = await driver.call("reservation/create", driver.base(card) | {"amount": 10_000, "ref_no": "NEW"})
    assert env["code"] == 420
    report = await driver.admin.reconcile([{"card_no": card.card_no, "balance": card.balance, "fares": 0}])
    assert report["ok"] is False  # money is on the card but the reservation is not LOADED yet
    assert {f["kind"] for f in report["findings"]} == {"balance_mismatch", "unresolved_in_progress"}
    env, datas = await driver.load_steps(card)  # no reservation_number: picks the suspect one
    assert env["code"] == 200 and command_type(datas[4]) is AuthRead
    await finish(driver, card, datas)
    await reconcile_ok(driver, card)
    assert (await driver.ok("reservation/check", driver.base(card)))["reservations"] == []


@pytest.mark.asyncio
async def test_recovery_after_a_fare_when_the_write_was_lost(driver: Driver) -> None:
    from datetime import UTC, datetime

    card = make_card(0)
    await driver.reserve(card, 20_000)
    env, datas = await driver.load_steps(card, until=5)  # write issued, never delivered
    card.pay_fare(5_000, 0x0105, datetime.now(UTC))  # the card is used at a gate meanwhile
    env, datas = await driver.load_steps(card)
    assert env["code"] == 200, env
    assert command_type(datas[4]) is AuthWrite and card.balance == 65_000
    await finish(driver, card, datas)
    await reconcile_ok(driver, card, fares=5_000)


@pytest.mark.asyncio
async def test_recovery_finds_the_write_behind_later_fares(driver: Driver) -> None:
    from datetime import UTC, datetime

    card = make_card(0)
    await driver.reserve(card, 20_000)
    env, datas = await driver.load_steps(card, until=5)
    card.handle(bytes.fromhex(datas[-1]["command"]))  # applied, answer lost
    for _ in range(3):
        card.pay_fare(5_000, 0x0105, datetime.now(UTC))  # ... and newer records sit on top of KCI's
    env, datas = await driver.load_steps(card)
    assert env["code"] == 200, env
    assert command_type(datas[4]) is AuthRead  # found: no second write
    assert env["data"]["balance"] == 70_000  # the load's own result, before the fares
    assert card.balance == 55_000
    await finish(driver, card, datas, last_balance=70_000)
    await reconcile_ok(driver, card, fares=15_000)


@pytest.mark.asyncio
async def test_undecidable_recovery_writes_nothing(driver: Driver) -> None:
    from datetime import UTC, datetime

    card = make_card(0)
    await driver.reserve(card, 20_000)
    env, datas = await driver.load_steps(card, until=5)
    card.handle(bytes.fromhex(datas[-1]["command"]))  # applied
    for _ in range(8):  # more transactions than the recovery read covers
        card.pay_fare(1_000, 0x0105, datetime.now(UTC))
    env, _ = await driver.load_steps(card)
    assert env["code"] == 428 and "cannot tell" in env["message"]
    assert card.balance == 62_000  # 50,000 + 20,000 once - 8 fares of 1,000: nothing written twice


@pytest.mark.asyncio
async def test_superseded_session_cannot_go_on(driver: Driver) -> None:
    card = make_card(0)
    await driver.reserve(card, 20_000)
    _, datas_a = await driver.load_steps(card, until=4)
    await driver.load_steps(card, until=4)  # a newer run for the same reservation
    answer = card.handle(bytes.fromhex(datas_a[-1]["command"]))  # session A's read: the card is in B's session
    body = driver.base(card) | {
        "step": 5,
        "balance": card.balance,
        "session_id": datas_a[-1]["session_id"],
        "card_resp": (answer or b"\x00").hex(),
        "sequence_data": datas_a[-1]["sequence_data"],
    }
    env = await driver.call("load-balance", body)
    assert env["code"] == 424
    sessions = {s["session_id"]: s for s in await driver.admin.request("GET", "sessions")}
    assert sessions[datas_a[0]["session_id"]]["closed"] == "superseded"


async def run_load(driver: Driver, card: KmtCard) -> dict[str, Any]:
    env, _ = await driver.load_steps(card)
    return env


@pytest.mark.asyncio
async def test_two_sessions_on_one_card_cannot_both_load(driver: Driver) -> None:
    card = make_card(0)
    await driver.reserve(card, 20_000)
    results = await asyncio.gather(*(run_load(driver, card) for _ in range(4)))
    codes = sorted(r["code"] for r in results)
    assert codes.count(200) <= 1
    assert card.balance in (50_000, 70_000)
    reservations = await driver.admin.reservations(card.card_no)
    loaded = [r for r in reservations if r["status"] == "LOADED"]
    assert len(loaded) == (1 if card.balance == 70_000 else 0)
    if not loaded:  # every run lost to another; a final run recovers whatever happened
        card.power_on()
        env, _ = await driver.load_steps(card)
        assert env["code"] == 200, env
    assert card.balance == 70_000
    await reconcile_ok(driver, card)


@pytest.mark.asyncio
async def test_concurrent_reservations_for_one_card(driver: Driver) -> None:
    card = make_card(0)
    bodies = [driver.base(card) | {"amount": 10_000, "ref_no": f"C{i}"} for i in range(5)]
    envs = await asyncio.gather(*(driver.call("reservation/create", b) for b in bodies))
    assert sorted(e["code"] for e in envs) == [200, 421, 421, 421, 421]
