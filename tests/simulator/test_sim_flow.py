"""The happy paths: card info, reservation lifecycle, the 7-step load balance, confirm, ledger, metrics."""

from __future__ import annotations

import re

import pytest
from sim_driver import Driver, make_card

from virtual_card.frames import Authentication1, Authentication2, AuthRead, AuthWrite, Polling, parse_command


@pytest.mark.asyncio
async def test_card_info_reads_the_card(driver: Driver) -> None:
    card = make_card(0)
    d1 = await driver.ok("card-info", driver.base(card) | {"step": 1})
    assert d1["command"] == "00ffff0100" and d1["command_len"] == 5
    assert d1["next_step"] == 2 and d1["sequence_data"] == ""
    assert re.fullmatch(r"[0-9a-f]{32}", d1["session_id"])
    info = await driver.card_info(card)
    assert info["step"] == 3 and info["next_step"] is None
    assert info["card_no"] == card.card_no
    assert info["account_status"] == "ACTIVE"
    assert info["balance"] == 50_000
    assert info["counter"] == card.purse.counter
    assert len(info["history"]) == 10
    assert {"time", "amount", "gate", "type", "sequence"} <= set(info["history"][0])
    assert info["history"][0]["sequence"] == card.purse.counter


@pytest.mark.asyncio
async def test_full_top_up_moves_money_once(driver: Driver) -> None:
    card = make_card(0)
    res = await driver.reserve(card, 20_000, "INV-1")
    assert re.fullmatch(r"RBLP43\d{6}\d{6}", res["reservation_number"])
    assert res["status"] == "PENDING" and res["amount"] == 20_000 and res["ref_no"] == "INV-1"
    env, datas = await driver.load_steps(card)
    assert env["code"] == 200
    kinds = [type(parse_command(bytes.fromhex(d["command"]))) for d in datas[:6]]
    assert kinds == [Polling, Authentication1, Authentication2, AuthRead, AuthWrite, AuthRead]
    assert [d["step"] for d in datas] == [1, 2, 3, 4, 5, 6, 7]
    assert all(d["reservation_number"] == res["reservation_number"] for d in datas)
    last = datas[-1]
    assert re.fullmatch(r"LBLP43\d{12}", last["load_balance_number"])
    assert (last["prev_balance"], last["balance"], last["amount"]) == (50_000, 70_000, 20_000)
    assert card.balance == 70_000
    inquiry = await driver.ok("reservation/inquiry", {"reservation_number": res["reservation_number"]})
    assert inquiry["status"] == "LOADED" and inquiry["load_balance_number"] == last["load_balance_number"]
    done = await driver.ok(
        "load-balance/confirm", driver.base(card) | {"session_id": last["session_id"], "last_balance": 70_000}
    )
    assert done == {
        "reservation_number": res["reservation_number"],
        "load_balance_number": last["load_balance_number"],
        "ref_no": "INV-1",
        "amount": 20_000,
        "prev_balance": 50_000,
        "last_balance": 70_000,
        "activated_balance": 20_000,
        "status": "SUCCESS",
    }
    by_ref = await driver.ok("reservation/inquiry", {"ref_no": "INV-1"})
    assert by_ref["status"] == "SUCCESS"
    events = [e["event"] for e in await driver.admin.ledger(card.card_no)]
    assert events == ["RESERVED", "WRITE_ISSUED", "LOADED", "CONFIRMED"]
    report = await driver.admin.reconcile([{"card_no": card.card_no, "balance": card.balance, "fares": 0}])
    assert report["ok"] is True and report["findings"] == []
    info = await driver.card_info(card)
    assert info["balance"] == 70_000 and info["history"][0]["type"] == "TOPUP"


@pytest.mark.asyncio
async def test_numbers_are_unique_and_sequential(driver: Driver) -> None:
    numbers = []
    for index in range(3):
        res = await driver.reserve(make_card(index), 10_000)
        numbers.append(res["reservation_number"])
    assert len(set(numbers)) == 3
    assert [int(n[-6:]) for n in numbers] == [1, 2, 3]


@pytest.mark.asyncio
async def test_reservation_check_lists_open_ones(driver: Driver) -> None:
    card = make_card(1)
    empty = await driver.ok("reservation/check", driver.base(card))
    assert empty == {"reservations": []}
    res = await driver.reserve(card, 30_000)
    listed = (await driver.ok("reservation/check", driver.base(card)))["reservations"]
    assert [r["reservation_number"] for r in listed] == [res["reservation_number"]]
    assert listed[0]["suspect"] is False and listed[0]["status"] == "PENDING"
    validate = await driver.ok("reservation/validate", driver.base(make_card(2)) | {"amount": 10_000, "ref_no": "V-1"})
    assert validate == {"card_no": make_card(2).card_no, "amount": 10_000, "valid": True}


@pytest.mark.asyncio
async def test_load_picks_the_given_reservation_number(driver: Driver) -> None:
    card = make_card(0)
    res = await driver.reserve(card, 10_000)
    env, datas = await driver.load_steps(card, reservation_number=res["reservation_number"])
    assert env["code"] == 200 and datas[-1]["balance"] == 60_000


@pytest.mark.asyncio
async def test_metrics_count_calls_per_operation_and_step(driver: Driver) -> None:
    card = make_card(0)
    await driver.card_info(card)
    await driver.call("card-info", driver.base("9999999999999999") | {"step": 1})
    async with driver.kci._session.get(f"{driver.sim.root_url}/metrics") as resp:  # type: ignore[union-attr]
        text = await resp.text()
    assert 'kci_calls_total{code="200",operation="card-info",step="1"} 1.0' in text
    assert 'kci_calls_total{code="413",operation="card-info",step="1"} 1.0' in text
    assert 'kci_latency_seconds_count{operation="card-info",step="3"} 1.0' in text
