"""A full top-up through the backend and a real simulator: every endpoint and step, exact envelopes."""

from __future__ import annotations

import re
from collections.abc import Callable

import aiohttp
import pytest
from backend_helpers import START_BALANCE, TERMINAL, Frontend, card_check, full_topup, run_on_card, update_steps

from backend.app import RunningBackend
from backend.store import Status
from simulator.app import Simulator
from virtual_card.card import KmtCard

CardFor = Callable[[int], tuple[KmtCard, str]]


@pytest.mark.asyncio
async def test_full_topup_follows_the_seed(
    frontend: Frontend, backend: RunningBackend, sim: Simulator, card_for: CardFor
) -> None:
    card, card_no = card_for(0)
    result = await full_topup(frontend, card, card_no, 10_000)

    first, second, done = result.card_check
    assert first.message == "Inquiry Step 1 Success"
    assert first.data["provider"] == "KCI-KMT"
    assert first.data["step"] == 1 and first.data["next_step"] == 2
    assert first.data["data"]["command"] == "00ffff0100" and first.data["data"]["command_len"] == 5
    assert first.data["data"]["sequence_data"] == ""
    assert re.fullmatch(r"[0-9a-f]{32}", first.data["data"]["session_id"])
    assert second.message == "Inquiry Step 2 Success" and second.data["next_step"] == 3
    assert second.data["data"]["sequence_data"] != ""
    assert done.message == "Inquiry Done"
    assert done.data["step"] == 3 and done.data["next_step"] is None
    assert done.data["account_status"] == "ACTIVE"
    assert done.data["card_info_data"]["balance"] == str(START_BALANCE)
    assert done.data["card_info_data"]["card_number"] == card_no
    assert isinstance(done.data["card_info_data"]["history"], list)

    pending = result.pending
    assert pending.message == "Pending Balance Success"
    reff_no = pending.data["reff_no"]
    assert re.fullmatch(r"20[0-9]{6}[0-9]{6}", reff_no)
    assert pending.data["amount"] == 10_000 and pending.data["pending_balance"] == 10_000
    assert pending.data["suspect_status"] is False and pending.data["resumed"] is False
    assert pending.data["paymentId1"] == card_no and pending.data["paymentId2"] == reff_no
    assert pending.data["reservation_number"].startswith("RBLP")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", pending.data["trx_time"])

    for step, answer in enumerate(result.updates, start=1):
        assert answer.message == f"Update Balance Step {step} Success"
        assert answer.data["step"] == step
        assert answer.data["next_step"] == (step + 1 if step < 7 else None)
        assert answer.data["reff_no"] == reff_no and answer.data["amount"] == 10_000
        assert answer.data["reservation_number"] == pending.data["reservation_number"]
        assert answer.data["card_no"] == card_no
    assert result.updates[0].data["data"]["command"] == "00ffff0100"
    assert result.updates[0].data["balance"] == START_BALANCE
    seventh = result.updates[-1].data
    assert seventh["balance"] == START_BALANCE + 10_000 and seventh["prev_balance"] == START_BALANCE
    assert seventh["load_balance_number"].startswith("LBLP") and seventh["status"] == "LOADED"
    assert seventh["data"]["command"] == "" and seventh["data"]["command_len"] == 0

    confirm = result.confirm
    assert confirm.message == "Confirm Topup Success"
    assert confirm.data == {
        "provider": "KCI-KMT",
        "amount": 10_000,
        "card_no": card_no,
        "last_balance": START_BALANCE + 10_000,
        "prev_balance": START_BALANCE,
        "activated_balance": 10_000,
        "reservation_number": pending.data["reservation_number"],
        "load_balance_number": seventh["load_balance_number"],
        "reff_no": reff_no,
        "status": "SUCCESS",
    }
    for _, _, answer in frontend.calls:
        assert answer.status == 200
        assert 0 <= answer.body["response"]["latency"] < 5

    # The card really holds the money, and both books agree.
    assert card.image().balance == START_BALANCE + 10_000
    [transaction] = await backend.store.transactions(card_no)
    assert transaction.status is Status.SUCCESS and not transaction.suspect
    assert transaction.reff_no == reff_no and transaction.step == 7
    assert (transaction.prev_balance, transaction.balance, transaction.last_balance) == (50_000, 60_000, 60_000)
    assert transaction.load_balance_number == seventh["load_balance_number"]
    [reservation] = [r for r in sim.kci.store.reservations.values() if r.card_no == card_no]
    assert reservation.status == "SUCCESS" and reservation.ref_no == reff_no


@pytest.mark.asyncio
async def test_form_encoded_and_hmac_signed_topup(
    http: aiohttp.ClientSession, backend: RunningBackend, card_for: CardFor
) -> None:
    frontend = Frontend(http, backend.url, TERMINAL, scheme="hmac", form=True)
    card, card_no = card_for(1)
    result = await full_topup(frontend, card, card_no, 25_000)
    assert result.confirm.data["last_balance"] == START_BALANCE + 25_000
    assert card.image().balance == START_BALANCE + 25_000


@pytest.mark.asyncio
async def test_second_topup_after_the_first(frontend: Frontend, backend: RunningBackend, card_for: CardFor) -> None:
    card, card_no = card_for(2)
    first = await full_topup(frontend, card, card_no, 10_000)
    second = await full_topup(frontend, card, card_no, 20_000)
    assert second.card_check[-1].data["card_info_data"]["balance"] == str(START_BALANCE + 10_000)
    assert int(second.pending.data["reff_no"]) == int(first.pending.data["reff_no"]) + 1
    assert second.confirm.data["last_balance"] == START_BALANCE + 30_000
    assert [t.status for t in await backend.store.transactions(card_no)] == [Status.SUCCESS, Status.SUCCESS]


@pytest.mark.asyncio
async def test_card_check_of_a_wrong_card_passes_kci_code_through(frontend: Frontend, card_for: CardFor) -> None:
    card, _ = card_for(3)
    _, other_card_no = card_for(4)
    first = await frontend.post("card-check", {**frontend.base(other_card_no), "step": 1})
    block = first.data["data"]
    answer = await frontend.post(
        "card-check",
        {
            **frontend.base(other_card_no),
            "step": 2,
            "card_resp": run_on_card(card, block["command"]),
            "session_id": block["session_id"],
        },
    )
    assert (answer.status, answer.code, answer.data) == (400, 427, None)
    assert "KCI card-info: 427" in answer.message


@pytest.mark.asyncio
async def test_kci_business_codes_pass_through(frontend: Frontend, card_for: CardFor) -> None:
    _, card_no = card_for(5)
    below = await frontend.post("pending", {**frontend.base(card_no), "amount": 500})
    assert (below.status, below.code) == (400, 418)
    unknown = await frontend.post("pending", {**frontend.base("9999999999999999"), "amount": 10_000})
    assert (unknown.status, unknown.code) == (400, 413)
    too_much = await frontend.post("pending", {**frontend.base(card_no), "amount": 1_990_000})
    assert too_much.code in (416, 419)


@pytest.mark.asyncio
async def test_update_without_reservation_and_confirm_too_early(frontend: Frontend, card_for: CardFor) -> None:
    card, card_no = card_for(6)
    none = await frontend.post("update", {**frontend.base(card_no), "step": 1, "prev_balance": START_BALANCE})
    assert (none.status, none.code) == (400, 414)
    await card_check(frontend, card, card_no)
    assert (await frontend.post("pending", {**frontend.base(card_no), "amount": 10_000})).code == 200
    first = await frontend.post("update", {**frontend.base(card_no), "step": 1, "prev_balance": START_BALANCE})
    session_id = first.data["data"]["session_id"]
    early = await frontend.post(
        "confirm", {**frontend.base(card_no), "last_balance": START_BALANCE + 10_000, "session_id": session_id}
    )
    assert (early.status, early.code) == (400, 430)


@pytest.mark.asyncio
async def test_unknown_and_foreign_sessions_are_refused_locally(
    frontend: Frontend, sim: Simulator, card_for: CardFor
) -> None:
    card, card_no = card_for(7)
    _, other_no = card_for(8)
    await frontend.post("pending", {**frontend.base(card_no), "amount": 10_000})
    first = await frontend.post("update", {**frontend.base(card_no), "step": 1, "prev_balance": START_BALANCE})
    block = first.data["data"]
    calls_before = len(sim.kci.journal.entries)
    stranger = await frontend.post(
        "update",
        {**frontend.base(card_no), "step": 2, "balance": 1, "card_resp": "00", "session_id": "ab" * 16},
    )
    assert (stranger.status, stranger.code) == (400, 424)
    assert stranger.message.startswith("session_id:")
    other_card = await frontend.post(
        "update",
        {
            **frontend.base(other_no),
            "step": 2,
            "balance": START_BALANCE,
            "card_resp": run_on_card(card, block["command"]),
            "session_id": block["session_id"],
        },
    )
    assert (other_card.status, other_card.code) == (400, 427)
    assert len(sim.kci.journal.entries) == calls_before


@pytest.mark.asyncio
async def test_loaded_but_unconfirmed_topup_comes_back_from_pending(frontend: Frontend, card_for: CardFor) -> None:
    """A frontend that stopped after update 7 gets that load back from /pending, to confirm, not a new one."""
    card, card_no = card_for(0)
    await card_check(frontend, card, card_no)
    reserved = await frontend.post("pending", {**frontend.base(card_no), "amount": 10_000})
    updates = await update_steps(frontend, card, card_no, START_BALANCE)
    assert card.balance == START_BALANCE + 10_000

    again = await frontend.post("pending", {**frontend.base(card_no), "amount": 20_000})  # validated: OpenAPI
    assert again.code == 200 and again.message == "Loaded Topup Awaits Confirmation"
    assert again.data["reservation_number"] == reserved.data["reservation_number"]
    assert again.data["status"] == "LOADED" and again.data["resumed"] is True
    assert again.data["session_id"] == updates[-1].data["data"]["session_id"]
    assert again.data["balance"] == START_BALANCE + 10_000
    done = await frontend.post(
        "confirm",
        {**frontend.base(card_no), "session_id": again.data["session_id"], "last_balance": again.data["balance"]},
    )
    assert done.code == 200 and done.data["status"] == "SUCCESS"
    fresh = await frontend.post("pending", {**frontend.base(card_no), "amount": 30_000})
    assert fresh.message == "Pending Balance Success"  # confirmed: a new top-up may start
