"""The admin API: seeding, reset, limits, clock, journal, faults of every kind, and SQLite restarts."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sim_driver import Driver, make_card

from simulator.admin_client import AdminClient, AdminError
from simulator.client import KciClient
from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image


async def post_raw(driver: Driver, op: str, body: dict[str, Any], wait: float = 5.0) -> tuple[int, bytes]:
    data = json.dumps(body).encode()
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=wait)) as http,
        http.post(f"{driver.sim.url}/{op}", data=data, headers=driver.kci.headers(op, data)) as resp,
    ):
        return resp.status, await resp.read()


# -- seeding ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_seeded_cards_match_the_virtual_cards(driver: Driver) -> None:
    cards = {c["card_no"]: c for c in await driver.admin.cards()}
    image = make_card_image(7, 3, balance=50_000)
    assert cards[image.card_no]["idm"] == image.idm.hex()
    assert cards[image.card_no]["balance"] == 50_000
    seeded = await driver.admin.seed(cards={"seed": 11, "count": 2, "balance": 30_000, "start": 5})
    assert [c["card_no"] for c in seeded["cards"]] == [make_card_image(11, i).card_no for i in (5, 6)]
    card = KmtCard(make_card_image(11, 6, balance=30_000))
    assert (await driver.card_info(card))["balance"] == 30_000
    await driver.top_up(card, 10_000)
    assert card.balance == 40_000


@pytest.mark.asyncio
async def test_explicit_card_seed_and_validation(driver: Driver) -> None:
    image = make_card_image(99, 0, balance=12_345)
    seeded = await driver.admin.seed(
        cards=[{"card_no": image.card_no, "idm": image.idm.hex(), "balance": 12_345, "expires": "2030-06-30"}]
    )
    assert seeded["cards"][0]["balance"] == 12_345 and seeded["cards"][0]["status"] == "ACTIVE"
    assert (await driver.card_info(KmtCard(image)))["balance"] == 12_345
    bad = [
        {"cards": [{"card_no": "123", "idm": "00" * 8, "balance": 1}]},
        {"cards": [{"card_no": "1" * 16, "idm": "00", "balance": 1}]},
        {"cards": [{"card_no": "1" * 16, "idm": "00" * 8}]},
        {"cards": [{"card_no": "1" * 16, "idm": "00" * 8, "balance": 1, "status": "NEW"}]},
        {"cards": [{"card_no": "1" * 16, "idm": "00" * 8, "balance": 1, "expires": "soon"}]},
        {"partners": [{"partner_id": "x"}]},
        {"terminals": [{"tid": "t", "mid": "m", "colour": "red"}]},
        {"bananas": []},
    ]
    for body in bad:
        with pytest.raises(AdminError) as err:
            await driver.admin.request("POST", "seed", body)
        assert err.value.code == 400, body
    assert "1" * 16 not in {c["card_no"] for c in await driver.admin.cards()}


@pytest.mark.asyncio
async def test_reset_one_card_and_everything(driver: Driver) -> None:
    a, b = make_card(0), make_card(1)
    await driver.reserve(a)
    await driver.reserve(b)
    await driver.admin.reset(a.card_no)
    assert await driver.admin.reservations(a.card_no) == []
    assert len(await driver.admin.reservations(b.card_no)) == 1
    await driver.reserve(a)
    await driver.admin.reset()
    assert await driver.admin.reservations() == []
    assert await driver.admin.cards() == []
    # numbers stay unique after a reset
    await driver.admin.seed(
        partners=[{"partner_id": driver.sim.partner.partner_id, "secret": driver.sim.partner.secret}],
        merchants=[{"mid": driver.mid, "partner_id": driver.sim.partner.partner_id}],
        terminals=[{"tid": driver.tid, "mid": driver.mid}],
        cards={"seed": 7, "count": 1, "balance": 50_000},
    )
    res = await driver.reserve(a)
    assert res["reservation_number"].endswith("000004")


@pytest.mark.asyncio
async def test_limits_and_clock(driver: Driver) -> None:
    limits = await driver.admin.limits()
    assert limits["min_topup"] == 10_000 and limits["max_balance"] == 2_000_000
    assert limits["monthly_limit"] == 20_000_000 and limits["max_per_transaction"] == 1_000_000
    assert limits["reservation_ttl"] == 900
    assert (await driver.admin.limits(min_topup=5_000))["min_topup"] == 5_000
    await driver.reserve(make_card(0), 5_000)
    for bad in ({"min_topup": -1}, {"nope": 1}, {"min_topup": "1"}):
        with pytest.raises(AdminError):
            await driver.admin.request("POST", "limits", bad)
    before = await driver.admin.clock()
    after = await driver.admin.advance_clock(3600)
    assert 3599 < after["now"] - before["now"] < 3610
    set_to = await driver.admin.set_clock("2027-03-01 08:00:00")
    assert set_to["local"] == "2027-03-01 08:00:00"
    res = await driver.reserve(make_card(1), 10_000)
    assert res["reservation_number"][6:12] == "270301" and res["trx_time"] == "2027-03-01 08:00:00"
    with pytest.raises(AdminError):
        await driver.admin.request("POST", "clock", {"set": "tomorrow"})


# -- journal ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_journal_records_and_filters(driver: Driver) -> None:
    a, b = make_card(0), make_card(1)
    info = await driver.card_info(a)
    await driver.card_info(b)
    entries = await driver.admin.journal(card_no=a.card_no)
    assert [e["step"] for e in entries] == [1, 2, 3]
    assert entries[0]["request"]["step"] == 1 and entries[0]["response"]["code"] == 200
    assert entries[0]["duration_ms"] > 0 and entries[0]["status"] == 200
    assert {e["session_id"] for e in entries} == {info["session_id"]}
    assert len(await driver.admin.journal(session_id=info["session_id"])) == 3
    assert len(await driver.admin.journal(operation="card-info", step=2)) == 2
    assert len(await driver.admin.journal(limit=1)) == 1
    assert await driver.admin.journal(operation="load-balance") == []
    await driver.admin.set_journal(False)
    await driver.card_info(a)
    assert len(await driver.admin.journal(card_no=a.card_no)) == 3
    await driver.admin.set_journal(True)
    await driver.admin.clear_journal()
    assert await driver.admin.journal() == []


# -- faults ----------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_delay_faults(driver: Driver) -> None:
    card = make_card(0)
    body = driver.base(card) | {"step": 1}
    fault = await driver.admin.add_fault(kind="delay", operation="card-info", step=1, delay_ms=200, times=1)
    assert fault["id"] and fault["kind"] == "delay"
    started = time.perf_counter()
    await driver.ok("card-info", body)
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    await driver.ok("card-info", body)
    assert time.perf_counter() - started < 0.2  # fired once only
    await driver.admin.add_fault(kind="delay", operation="card-info", delay_ms=50, delay_max_ms=80)
    started = time.perf_counter()
    await driver.ok("card-info", body)
    assert time.perf_counter() - started >= 0.05
    [entry] = await driver.admin.journal(limit=1)
    assert entry["fault"] is not None


@pytest.mark.asyncio
async def test_error_http500_empty_faults(driver: Driver) -> None:
    card = make_card(0)
    body = driver.base(card) | {"step": 1}
    await driver.admin.add_fault(kind="error", operation="card-info", code=426, nth=1)
    status, env = await driver.kci.raw("card-info", body)
    assert (status, env["code"], env["data"]) == (400, 426, None)
    await driver.admin.add_fault(kind="http500", operation="card-info", nth=1)
    status, raw = await post_raw(driver, "card-info", body)
    assert status == 500 and b"Internal Server Error" in raw
    await driver.admin.add_fault(kind="empty", operation="card-info", nth=1)
    assert await post_raw(driver, "card-info", body) == (200, b"")
    assert (await driver.kci.call("card-info", body))["code"] == 200


@pytest.mark.asyncio
async def test_reset_and_hang_faults(driver: Driver) -> None:
    card = make_card(0)
    body = driver.base(card) | {"step": 1}
    await driver.admin.add_fault(kind="reset", operation="card-info", nth=1)
    with pytest.raises(aiohttp.ClientError):
        await post_raw(driver, "card-info", body)
    await driver.admin.add_fault(kind="hang", operation="card-info", nth=1)
    with pytest.raises(TimeoutError):
        await post_raw(driver, "card-info", body, wait=0.3)
    assert (await driver.kci.call("card-info", body))["code"] == 200
    entries = await driver.admin.journal()
    assert [e["status"] for e in entries] == [None, None, 200]


@pytest.mark.asyncio
async def test_fault_targeting(driver: Driver) -> None:
    a, b = make_card(0), make_card(1)
    await driver.admin.add_fault(kind="error", code=500, operation="card-info", card_no=b.card_no, nth=2, times=2)
    await driver.admin.add_fault(kind="error", code=421, operation="reservation/create", probability=0.0)
    codes_b = [(await driver.call("card-info", driver.base(b) | {"step": 1}))["code"] for _ in range(4)]
    assert codes_b == [200, 500, 500, 200]
    codes_a = [(await driver.call("card-info", driver.base(a) | {"step": 1}))["code"] for _ in range(3)]
    assert codes_a == [200, 200, 200]
    await driver.reserve(a)  # probability 0 never fires
    faults = await driver.admin.faults()
    assert [(f["seen"], f["fired"]) for f in faults] == [(4, 2), (1, 0)]
    await driver.admin.remove_fault(faults[1]["id"])
    assert len(await driver.admin.faults()) == 1
    await driver.admin.clear_faults()
    assert await driver.admin.faults() == []
    for bad in (
        {"kind": "explode"},
        {"kind": "error"},
        {"kind": "delay"},
        {"kind": "reset", "operation": "x"},
        {"kind": "reset", "probability": 2},
        {"kind": "reset", "phase": "during"},
    ):
        with pytest.raises(AdminError):
            await driver.admin.add_fault(**bad)
    with pytest.raises(AdminError):
        await driver.admin.remove_fault("f999")


@pytest.mark.asyncio
async def test_after_phase_fault_loses_the_answer_of_work_done(driver: Driver) -> None:
    """KCI verifies the load (update 7) but the caller never hears of it: inquiry tells the truth."""
    card = make_card(0)
    res = await driver.reserve(card)
    await driver.admin.add_fault(kind="reset", operation="load-balance", step=7, phase="after")
    with pytest.raises(aiohttp.ClientError):
        await driver.load_steps(card)
    inquiry = await driver.ok("reservation/inquiry", {"reservation_number": res["reservation_number"]})
    assert inquiry["status"] == "LOADED" and card.balance == 70_000


# -- state across restarts ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sqlite_state_survives_a_restart(sim_factory: Any, tmp_path: Path) -> None:
    state = tmp_path / "kci.sqlite"
    card = make_card(0)
    sim = await sim_factory(state=state)
    async with (
        KciClient(sim.url, sim.partner.partner_id, sim.partner.secret) as kci,
        AdminClient(sim.admin_url) as admin,
    ):
        driver = Driver(kci, admin, sim)
        first = await driver.top_up(card, 20_000)
        await driver.reserve(card, 10_000, "KEEP")
        env, datas = await driver.load_steps(card, until=5)  # a write issued, then KCI "crashes"
        card.handle(bytes.fromhex(datas[-1]["command"]))
        await admin.advance_clock(10)
    sim2 = await sim_factory(state=state)
    async with (
        KciClient(sim2.url, sim2.partner.partner_id, sim2.partner.secret) as kci,
        AdminClient(sim2.admin_url) as admin,
    ):
        driver = Driver(kci, admin, sim2)
        assert (await admin.clock())["offset"] >= 10
        old = await driver.ok("reservation/inquiry", {"reservation_number": first["reservation_number"]})
        assert old["status"] == "SUCCESS"
        [open_] = (await driver.ok("reservation/check", driver.base(card)))["reservations"]
        assert open_["ref_no"] == "KEEP" and open_["status"] == "IN_PROGRESS"
        env, datas = await driver.load_steps(card)  # recovery after the restart: no second write
        assert env["code"] == 200 and card.balance == 80_000
        res = await driver.reserve(make_card(1), 10_000, "AFTER-RESTART")
        assert res["reservation_number"].endswith("000003")  # sequence continued
        assert datas[-1]["load_balance_number"].endswith("000002")
        report = await admin.reconcile([{"card_no": card.card_no, "balance": card.balance, "fares": 0}])
        assert report["ok"] is True
        events = [e["event"] for e in await admin.ledger(card.card_no)]
        assert events[4:] == ["RESERVED", "WRITE_ISSUED", "RECOVERED_APPLIED", "LOADED"]


@pytest.mark.asyncio
async def test_concurrent_admin_and_api_use(driver: Driver) -> None:
    cards = [make_card(i) for i in range(4)]
    results = await asyncio.gather(*(driver.top_up(c, 10_000) for c in cards))
    assert all(r["status"] == "SUCCESS" for r in results)
    report = await driver.admin.reconcile([{"card_no": c.card_no, "balance": c.balance, "fares": 0} for c in cards])
    assert report["ok"] is True and len(report["cards"]) == 4


@pytest.mark.asyncio
async def test_cli_describe_lists_credentials_and_cards(sim: Any) -> None:
    from simulator.cli import describe

    text = describe(sim)
    assert sim.url in text and sim.partner.secret in text and sim.partner.tid in text
    assert make_card(3).card_no in text


@pytest.mark.asyncio
async def test_a_hanging_request_does_not_hold_up_shutdown() -> None:
    from simulator.app import run_simulator
    from simulator.config import Config

    async with run_simulator(Config(seed=7, cards=1)) as sim, AdminClient(sim.admin_url) as admin:
        await admin.add_fault(kind="hang")
        kci = KciClient(sim.url, sim.partner.partner_id, sim.partner.secret)
        await kci.__aenter__()
        body = {"card_no": make_card(0).card_no, "tid": sim.partner.tid, "mid": sim.partner.mid, "step": 1}
        pending = asyncio.ensure_future(kci.call("card-info", body))
        await asyncio.sleep(0.1)
        started = time.perf_counter()
    assert time.perf_counter() - started < 2.0
    with pytest.raises(aiohttp.ClientError):
        await pending
    await kci.__aexit__(None, None, None)
