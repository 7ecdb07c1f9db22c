"""Every KCI error code the simulator produces, each provoked the way a caller would."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest
from sim_driver import Driver, make_card

from simulator.auth import sign_request
from virtual_card.card import KmtCard


async def code_of(driver: Driver, op: str, body: dict[str, Any]) -> int:
    env = await driver.call(op, body)
    assert env["data"] is None
    return int(env["code"])


async def start_load(driver: Driver, card: KmtCard, amount: int = 20_000) -> dict[str, Any]:
    await driver.reserve(card, amount)
    return await driver.ok("load-balance", driver.base(card) | {"step": 1, "prev_balance": card.balance})


def step_body(driver: Driver, card: KmtCard, step: int, data: dict[str, Any], answer: bytes) -> dict[str, Any]:
    return driver.base(card) | {
        "step": step,
        "balance": card.balance,
        "session_id": data["session_id"],
        "card_resp": answer.hex(),
        "sequence_data": data["sequence_data"],
    }


# -- 400 / 401 -------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tid": "T0000001", "mid": "M0000001", "step": 1}, "card_no is required"),
        ({"card_no": "12", "tid": "T0000001", "mid": "M0000001", "step": 1}, "card_no is malformed"),
        ({"card_no": "6032000700000000", "mid": "M0000001", "step": 1}, "tid is required"),
        ({"card_no": "6032000700000000", "tid": "T0000001", "mid": "M0000001", "step": 4}, "step must be 1..3"),
        ({"card_no": "6032000700000000", "tid": "T0000001", "mid": "M0000001", "step": "1"}, "step must be"),
    ],
)
async def test_bad_request_names_the_field(driver: Driver, body: dict[str, Any], field: str) -> None:
    status, env = await driver.kci.raw("card-info", body)
    assert (status, env["code"]) == (400, 400)
    assert field in env["message"]


@pytest.mark.asyncio
async def test_bad_request_for_missing_load_fields(driver: Driver) -> None:
    card = make_card(0)
    assert await code_of(driver, "load-balance", driver.base(card) | {"step": 1}) == 400  # prev_balance
    env = await driver.call("load-balance", driver.base(card) | {"step": 2, "balance": 1})
    assert env["code"] == 400 and "session_id" in env["message"]
    env = await driver.call("reservation/create", driver.base(card) | {"amount": 10_000})
    assert env["code"] == 400 and "ref_no" in env["message"]
    env = await driver.call("reservation/create", driver.base(card) | {"amount": 1.5, "ref_no": "x"})
    assert env["code"] == 400 and "amount" in env["message"]
    env = await driver.call("reservation/inquiry", {})
    assert env["code"] == 400


@pytest.mark.asyncio
async def test_body_must_be_a_json_object(driver: Driver) -> None:
    status, env = await driver.kci.raw("card-info", [1, 2])
    assert (status, env["code"]) == (400, 400)


async def post(driver: Driver, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{driver.sim.url}/card-info", data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


@pytest.mark.asyncio
async def test_authentication_failures_are_401(driver: Driver) -> None:
    p = driver.sim.partner
    body = json.dumps(driver.base("6032000700000000") | {"step": 1}).encode()
    path = "/kci/v1/card-info"
    cases = [
        {},
        sign_request(p.partner_id, "wrong-secret", "POST", path, body),
        sign_request(p.partner_id, p.secret, "POST", path, body, time.time() - 1000),
        sign_request(p.partner_id, p.secret, "POST", "/kci/v1/load-balance", body),
        sign_request("NOBODY", p.secret, "POST", path, body),
        {k: v for k, v in sign_request(p.partner_id, p.secret, "POST", path, body).items() if "Signature" not in k},
        sign_request(p.partner_id, p.secret, "POST", path, body) | {"X-KCI-Timestamp": "soon"},
    ]
    for headers in cases:
        status, env = await post(driver, headers, body)
        assert (status, env["code"]) == (401, 401), (headers, env)
    status, env = await post(driver, sign_request(p.partner_id, p.secret, "POST", path, body), body)
    assert (status, env["code"]) == (200, 200)


# -- 412 / 432 -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_terminal_and_merchant_checks(driver: Driver) -> None:
    card_no = make_card(0).card_no
    await driver.admin.seed(
        partners=[{"partner_id": "OTHER", "secret": "s"}],
        merchants=[
            {"mid": "M-OTHER", "partner_id": "OTHER"},
            {"mid": "M-OFF", "partner_id": driver.sim.partner.partner_id, "active": False},
            {"mid": "M-2", "partner_id": driver.sim.partner.partner_id},
        ],
        terminals=[
            {"tid": "T-OTHER", "mid": "M-OTHER"},
            {"tid": "T-OFF", "mid": "M-OFF"},
            {"tid": "T-DEAD", "mid": "M-2", "active": False},
        ],
    )
    body = {"card_no": card_no, "step": 1}
    assert await code_of(driver, "card-info", body | {"tid": "NOPE", "mid": driver.mid}) == 412
    assert await code_of(driver, "card-info", body | {"tid": "T-OTHER", "mid": "M-OTHER"}) == 412
    assert await code_of(driver, "card-info", body | {"tid": "T-OFF", "mid": driver.mid}) == 412  # wrong mid
    assert await code_of(driver, "card-info", body | {"tid": "T-DEAD", "mid": "M-2"}) == 412
    assert await code_of(driver, "card-info", body | {"tid": "T-OFF", "mid": "M-OFF"}) == 432


@pytest.mark.asyncio
async def test_inactive_partner_is_432(driver: Driver) -> None:
    p = driver.sim.partner
    await driver.admin.seed(partners=[{"partner_id": p.partner_id, "secret": p.secret, "active": False}])
    status, env = await driver.kci.raw("card-info", driver.base(make_card(0)) | {"step": 1})
    assert (status, env["code"]) == (400, 432)


# -- 413-423, 433: reservation rules -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_reservation_rules(driver: Driver) -> None:
    card = make_card(0)

    async def create(amount: int, ref: str, c: KmtCard | str = card) -> int:
        return await code_of(driver, "reservation/create", driver.base(c) | {"amount": amount, "ref_no": ref})

    assert await create(20_000, "A", "9999999999999999") == 413
    assert await create(0, "A") == 415
    assert await create(-5, "A") == 415
    assert await create(5_000, "A") == 418
    assert await create(1_500_000, "A") == 419
    await driver.admin.limits(max_balance=60_000)
    assert await create(20_000, "A") == 416
    await driver.admin.limits(max_balance=2_000_000)
    await driver.reserve(card, 20_000, "A")
    assert await create(20_000, "A", make_card(1)) == 433
    assert await create(20_000, "B") == 421
    env = await driver.call("reservation/validate", driver.base(card) | {"amount": 20_000, "ref_no": "B"})
    assert env["code"] == 421


@pytest.mark.asyncio
async def test_monthly_limit(driver: Driver) -> None:
    card = make_card(0)
    await driver.admin.limits(monthly_limit=30_000)
    await driver.top_up(card, 20_000)
    env = await driver.call("reservation/create", driver.base(card) | {"amount": 20_000, "ref_no": "M2"})
    assert env["code"] == 417
    await driver.admin.advance_clock(32 * 86_400)  # next month: the limit starts again
    await driver.reserve(card, 20_000)


@pytest.mark.asyncio
async def test_blocked_and_expired_cards(driver: Driver) -> None:
    card = make_card(0)
    await driver.admin.set_card(card.card_no, status="BLOCKED")
    env = await driver.call("reservation/create", driver.base(card) | {"amount": 20_000, "ref_no": "X"})
    assert env["code"] == 422
    info = await driver.card_info(card)
    assert info["account_status"] == "BLOCKED"
    await driver.admin.set_card(card.card_no, status="ACTIVE", expires="2020-01-01")
    env = await driver.call("reservation/create", driver.base(card) | {"amount": 20_000, "ref_no": "X"})
    assert env["code"] == 423
    assert (await driver.card_info(card))["account_status"] == "EXPIRED"


@pytest.mark.asyncio
async def test_card_blocked_after_reservation_stops_load(driver: Driver) -> None:
    card = make_card(0)
    await driver.reserve(card)
    await driver.admin.set_card(card.card_no, status="BLOCKED")
    env = await driver.call("load-balance", driver.base(card) | {"step": 1, "prev_balance": card.balance})
    assert env["code"] == 422


@pytest.mark.asyncio
async def test_unknown_reservation_is_414(driver: Driver) -> None:
    card = make_card(0)
    env = await driver.call("load-balance", driver.base(card) | {"step": 1, "prev_balance": 50_000})
    assert env["code"] == 414
    env = await driver.call(
        "load-balance",
        driver.base(card) | {"step": 1, "prev_balance": 50_000, "reservation_number": "RBLP43250101000999"},
    )
    assert env["code"] == 414
    env = await driver.call("reservation/inquiry", {"reservation_number": "RBLP43250101000999"})
    assert env["code"] == 414


@pytest.mark.asyncio
async def test_expired_reservation_is_429(driver: Driver) -> None:
    card = make_card(0)
    res = await driver.reserve(card)
    await driver.admin.advance_clock(15 * 60 + 1)
    env = await driver.call("load-balance", driver.base(card) | {"step": 1, "prev_balance": 50_000})
    assert env["code"] == 429
    inquiry = await driver.ok("reservation/inquiry", {"reservation_number": res["reservation_number"]})
    assert inquiry["status"] == "EXPIRED"
    await driver.reserve(card)  # an expired reservation no longer blocks the card


@pytest.mark.asyncio
async def test_reservation_expiring_mid_session_is_429(driver: Driver) -> None:
    card = make_card(0)
    await driver.admin.limits(session_ttl=3600)
    d1 = await start_load(driver, card)
    await driver.admin.advance_clock(15 * 60 + 1)
    answer = card.handle(bytes.fromhex(d1["command"]))
    assert answer is not None
    env = await driver.call("load-balance", step_body(driver, card, 2, d1, answer))
    assert env["code"] == 429


# -- 424-428, 434: sessions and card answers -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_session_rules(driver: Driver) -> None:
    card = make_card(0)
    d1 = await start_load(driver, card)
    polling = card.handle(bytes.fromhex(d1["command"]))
    assert polling is not None
    unknown = step_body(driver, card, 2, d1, polling) | {"session_id": "0" * 32}
    assert await code_of(driver, "load-balance", unknown) == 424
    assert await code_of(driver, "load-balance", step_body(driver, card, 3, d1, polling)) == 425
    other = step_body(driver, card, 2, d1, polling) | {"card_no": make_card(1).card_no}
    assert await code_of(driver, "load-balance", other) == 427
    moved = step_body(driver, card, 2, d1, polling) | {"tid": "T-ELSEWHERE"}
    assert await code_of(driver, "load-balance", moved) == 412
    d2 = await driver.ok("load-balance", step_body(driver, card, 2, d1, polling))
    auth1 = card.handle(bytes.fromhex(d2["command"]))
    assert auth1 is not None
    tampered = step_body(driver, card, 3, d2, auth1) | {"sequence_data": "00" + d2["sequence_data"][2:]}
    assert await code_of(driver, "load-balance", tampered) == 434
    missing = step_body(driver, card, 3, d2, auth1)
    del missing["sequence_data"]
    assert await code_of(driver, "load-balance", missing) == 400
    await driver.ok("load-balance", step_body(driver, card, 3, d2, auth1))


@pytest.mark.asyncio
async def test_sequence_data_of_another_step_is_434(driver: Driver) -> None:
    card = make_card(0)
    await driver.reserve(card)
    env, datas = await driver.load_steps(card, until=3)
    assert env["code"] == 200
    answer = card.handle(bytes.fromhex(datas[-1]["command"]))
    assert answer is not None
    replay = step_body(driver, card, 4, datas[-1], answer) | {"sequence_data": datas[-2]["sequence_data"]}
    assert await code_of(driver, "load-balance", replay) == 434


@pytest.mark.asyncio
async def test_session_expires(driver: Driver) -> None:
    card = make_card(0)
    d1 = await driver.ok("card-info", driver.base(card) | {"step": 1})
    await driver.admin.advance_clock(301)
    answer = card.handle(bytes.fromhex(d1["command"]))
    assert answer is not None
    body = driver.base(card) | {"step": 2, "session_id": d1["session_id"], "card_resp": answer.hex()}
    env = await driver.call("card-info", body)
    assert env["code"] == 424 and "expired" in env["message"]


@pytest.mark.asyncio
async def test_corrupted_card_answers_are_426(driver: Driver) -> None:
    card = make_card(0)
    d1 = await start_load(driver, card)
    polling = card.handle(bytes.fromhex(d1["command"]))
    assert polling is not None
    d2 = await driver.ok("load-balance", step_body(driver, card, 2, d1, polling))
    auth1 = card.handle(bytes.fromhex(d2["command"]))
    assert auth1 is not None
    bad = auth1[:-1] + bytes([auth1[-1] ^ 1])
    env = await driver.call("load-balance", step_body(driver, card, 3, d2, bad))
    assert env["code"] == 426 and "proof" in env["message"]
    # the failed session is closed; the reservation is still PENDING and a new run works
    assert await code_of(driver, "load-balance", step_body(driver, card, 3, d2, auth1)) == 424
    card.reset()
    env, _ = await driver.load_steps(card)
    assert env["code"] == 200


@pytest.mark.asyncio
async def test_garbage_and_other_cards_at_card_info(driver: Driver) -> None:
    card, other = make_card(0), make_card(1)
    for resp, expected in ((bytes.fromhex("0102"), 426), (other.handle(bytes.fromhex("00ffff0100")), 427)):
        d1 = await driver.ok("card-info", driver.base(card) | {"step": 1})
        assert resp is not None
        env = await driver.call(
            "card-info", driver.base(card) | {"step": 2, "session_id": d1["session_id"], "card_resp": resp.hex()}
        )
        assert env["code"] == expected, env
    d1 = await driver.ok("card-info", driver.base(card) | {"step": 1})
    env = await driver.call(
        "card-info", driver.base(card) | {"step": 2, "session_id": d1["session_id"], "card_resp": "zz"}
    )
    assert env["code"] == 400 and "card_resp" in env["message"]


@pytest.mark.asyncio
async def test_card_info_step3_answer_from_another_card_is_427(driver: Driver) -> None:
    card, other = make_card(0), make_card(1)
    d1 = await driver.ok("card-info", driver.base(card) | {"step": 1})
    polling = card.handle(bytes.fromhex(d1["command"]))
    assert polling is not None
    body = driver.base(card) | {"step": 2, "session_id": d1["session_id"], "card_resp": polling.hex()}
    d2 = await driver.ok("card-info", body)
    await driver.ok("card-info", driver.base(other) | {"step": 1})
    other_read = other.handle(bytes.fromhex(d2["command"]))  # IDm differs: the other card stays silent
    assert other_read is None
    forged = card.handle(bytes.fromhex(d2["command"]))
    assert forged is not None
    patched = forged[:2] + other.idm + forged[10:]
    env = await driver.call(
        "card-info",
        driver.base(card)
        | {"step": 3, "session_id": d1["session_id"], "card_resp": patched.hex(), "sequence_data": d2["sequence_data"]},
    )
    assert env["code"] == 427


@pytest.mark.asyncio
async def test_wrong_prev_balance_is_428_and_nothing_written(driver: Driver) -> None:
    card = make_card(0)
    await driver.reserve(card)
    env, _ = await driver.load_steps(card, prev_balance=49_000)
    assert env["code"] == 428
    assert card.balance == 50_000
    res = (await driver.admin.reservations(card.card_no))[0]
    assert res["status"] == "PENDING" and res["write"] is None


@pytest.mark.asyncio
async def test_max_balance_checked_against_the_real_purse(driver: Driver) -> None:
    card = make_card(0)
    await driver.reserve(card, 100_000)
    await driver.admin.limits(max_balance=120_000)
    env, _ = await driver.load_steps(card)
    assert env["code"] == 416 and card.balance == 50_000


# -- 430, 431, 435: confirm -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_confirm_rules(driver: Driver) -> None:
    card = make_card(0)
    await driver.reserve(card)
    env, datas = await driver.load_steps(card, until=5)
    assert env["code"] == 200
    confirm = driver.base(card) | {"session_id": datas[-1]["session_id"], "last_balance": 70_000}
    assert await code_of(driver, "load-balance/confirm", confirm) == 430
    assert await code_of(driver, "load-balance/confirm", confirm | {"session_id": "f" * 32}) == 424
    answer = card.handle(bytes.fromhex(datas[-1]["command"]))
    assert answer is not None
    d6 = await driver.ok("load-balance", step_body(driver, card, 6, datas[-1], answer))
    answer = card.handle(bytes.fromhex(d6["command"]))
    assert answer is not None
    await driver.ok("load-balance", step_body(driver, card, 7, d6, answer))
    number = datas[-1]["reservation_number"]
    again = driver.base(card) | {"step": 1, "prev_balance": 70_000, "reservation_number": number}
    assert await code_of(driver, "load-balance", again) == 425  # LOADED: confirm it, do not load again
    assert await code_of(driver, "load-balance/confirm", confirm | {"last_balance": 69_000}) == 435
    assert await code_of(driver, "load-balance/confirm", confirm | {"card_no": make_card(1).card_no}) == 427
    await driver.admin.seed(terminals=[{"tid": "T-2", "mid": driver.mid}])
    assert await code_of(driver, "load-balance/confirm", confirm | {"tid": "T-2"}) == 412
    await driver.ok("load-balance/confirm", confirm)
    assert await code_of(driver, "load-balance/confirm", confirm) == 431
    assert await code_of(driver, "load-balance", again) == 431
    env = await driver.call("load-balance", driver.base(card) | {"step": 1, "prev_balance": 70_000})
    assert env["code"] == 414  # nothing open any more
