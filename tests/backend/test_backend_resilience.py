"""Retries, restarts, KCI down/slow/erroring, and the suspect path: money is never lost nor doubled."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from backend_helpers import (
    START_BALANCE,
    TERMINAL,
    Answer,
    Frontend,
    StartBackend,
    backend_config,
    card_check,
    next_params,
    run_on_card,
    update_steps,
)

from backend.app import RunningBackend, run_backend
from backend.store import Status
from simulator.admin_client import AdminClient
from simulator.app import Simulator
from virtual_card.card import KmtCard

CardFor = Callable[[int], tuple[KmtCard, str]]


def kci_calls(sim: Simulator) -> int:
    return len(sim.kci.journal.entries)


async def twice(frontend: Frontend, sim: Simulator, endpoint: str, params: dict[str, Any]) -> Answer:
    """Post, then post the same again (a retry after a lost answer): same answer, KCI not called again."""
    first = await frontend.post(endpoint, params)
    assert first.code == 200, first.body
    calls = kci_calls(sim)
    again = await frontend.post(endpoint, params)
    assert again.code == 200 and again.replayed and not first.replayed
    assert again.data == first.data and again.message == first.message
    assert kci_calls(sim) == calls
    return first


@pytest.mark.asyncio
async def test_every_step_retried_gets_the_same_answer_and_kci_works_once(
    frontend: Frontend, sim: Simulator, backend: RunningBackend, card_for: CardFor
) -> None:
    card, card_no = card_for(0)
    base = frontend.base(card_no)
    answer = await twice(frontend, sim, "card-check", {**base, "step": 1})
    for step in (2, 3):
        block = answer.data["data"]
        params = {
            **base,
            "step": step,
            "card_resp": run_on_card(card, block["command"]),
            "session_id": block["session_id"],
        }
        if step == 3:
            params["sequence_data"] = block["sequence_data"]
        answer = await twice(frontend, sim, "card-check", params)
    pending = await twice(frontend, sim, "pending", {**base, "amount": 10_000})
    answer = await twice(frontend, sim, "update", {**base, "step": 1, "prev_balance": START_BALANCE})
    for step in range(2, 8):
        answer = await twice(frontend, sim, "update", next_params(frontend, card, card_no, answer, step))
    confirm_params = {**base, "last_balance": START_BALANCE + 10_000, "session_id": answer.data["data"]["session_id"]}
    confirm = await twice(frontend, sim, "confirm", confirm_params)
    assert confirm.data["status"] == "SUCCESS"
    # Confirmed once more, form-encoded: the same success, still no second activation.
    form = Frontend(frontend.session, frontend.base_url, TERMINAL, form=True)
    third = await form.post("confirm", confirm_params)
    assert third.replayed and third.data == confirm.data
    assert card.image().balance == START_BALANCE + 10_000
    ledger = [r for r in sim.kci.store.reservations.values() if r.card_no == card_no]
    assert [(r.status, r.amount) for r in ledger] == [("SUCCESS", 10_000)]
    [transaction] = await backend.store.transactions(card_no)
    assert transaction.reservation_number == pending.data["reservation_number"]


@pytest.mark.asyncio
async def test_concurrent_duplicates_wait_for_the_original(
    frontend: Frontend, sim: Simulator, card_for: CardFor
) -> None:
    _, card_no = card_for(1)
    params = {**frontend.base(card_no), "amount": 15_000}
    first, second = await asyncio.gather(frontend.post("pending", params), frontend.post("pending", params))
    assert first.code == second.code == 200
    assert first.data == second.data
    assert first.replayed != second.replayed
    assert len([r for r in sim.kci.store.reservations.values() if r.card_no == card_no]) == 1


@pytest.mark.asyncio
async def test_step_one_is_not_replayed_after_the_replay_window(
    start_backend: StartBackend, http: aiohttp.ClientSession, sim: Simulator, card_for: CardFor
) -> None:
    backend = await start_backend(replay_window=0)
    frontend = Frontend(http, backend.url, TERMINAL)
    _, card_no = card_for(2)
    first = await frontend.post("card-check", {**frontend.base(card_no), "step": 1})
    await asyncio.sleep(0.01)
    second = await frontend.post("card-check", {**frontend.base(card_no), "step": 1})
    assert not second.replayed
    assert second.data["data"]["session_id"] != first.data["data"]["session_id"]


@pytest.mark.asyncio
async def test_a_pending_reservation_is_returned_for_resumption(
    frontend: Frontend, sim: Simulator, card_for: CardFor
) -> None:
    card, card_no = card_for(3)
    created = await frontend.post("pending", {**frontend.base(card_no), "amount": 10_000, "invoice_no": "INV-1"})
    assert created.data["paymentId2"] == "INV-1"
    other = await frontend.post("pending", {**frontend.base(card_no), "amount": 30_000})
    assert (other.code, other.message) == (200, "Pending Reservation Exists")
    assert other.data["resumed"] is True and other.data["suspect_status"] is False
    assert other.data["reservation_number"] == created.data["reservation_number"]
    assert other.data["reff_no"] == created.data["reff_no"] and other.data["amount"] == 10_000
    assert [r["reservation_number"] for r in other.data["reservations"]] == [created.data["reservation_number"]]
    # The frontend resumes it with update and gets the reserved amount.
    updates = await update_steps(frontend, card, card_no, START_BALANCE)
    assert updates[-1].data["balance"] == START_BALANCE + 10_000


@pytest.mark.asyncio
async def test_restart_in_the_middle_of_a_topup(
    sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path, card_for: CardFor
) -> None:
    card, card_no = card_for(4)
    config = backend_config(sim, tmp_path / "restart.sqlite3")
    async with run_backend(config) as first:
        frontend = Frontend(http, first.url, TERMINAL)
        await card_check(frontend, card, card_no)
        pending = await frontend.post("pending", {**frontend.base(card_no), "amount": 20_000})
        answers = await update_steps(frontend, card, card_no, START_BALANCE, last=3)
        step4_params = next_params(frontend, card, card_no, answers[-1], 4)
        step4 = await frontend.post("update", step4_params)
    # The answer to step 4 was lost; the backend restarts; the frontend retries, then goes on.
    async with run_backend(config) as second:
        frontend = Frontend(http, second.url, TERMINAL)
        retried = await frontend.post("update", step4_params)
        assert retried.replayed and retried.data == step4.data
        step5_params = next_params(frontend, card, card_no, retried, 5)
        step5 = await frontend.post("update", step5_params)
        assert step5.code == 200
        [transaction] = await second.store.transactions(card_no)
        assert (transaction.status, transaction.suspect, transaction.step) == (Status.IN_PROGRESS, True, 5)
    # Restart again between the write and its verification.
    async with run_backend(config) as third:
        frontend = Frontend(http, third.url, TERMINAL)
        rest = await update_steps(frontend, card, card_no, START_BALANCE, first=6, previous=step5)
        confirm = await frontend.post(
            "confirm",
            {
                **frontend.base(card_no),
                "last_balance": rest[-1].data["balance"],
                "session_id": rest[-1].data["data"]["session_id"],
            },
        )
        assert confirm.code == 200 and confirm.data["reff_no"] == pending.data["reff_no"]
        [transaction] = await third.store.transactions(card_no)
        assert (transaction.status, transaction.suspect) == (Status.SUCCESS, False)
    assert card.image().balance == START_BALANCE + 20_000


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.asyncio
async def test_kci_down_is_502_at_once(
    start_backend: StartBackend, http: aiohttp.ClientSession, card_for: CardFor
) -> None:
    backend = await start_backend(kci_url=f"http://127.0.0.1:{closed_port()}")
    frontend = Frontend(http, backend.url, TERMINAL)
    _, card_no = card_for(5)
    started = time.perf_counter()
    answer = await frontend.post("card-check", {**frontend.base(card_no), "step": 1})
    assert (answer.status, answer.code, answer.data) == (502, 502, None)
    assert "cannot connect" in answer.message
    assert time.perf_counter() - started < 1.0
    pending = await frontend.post("pending", {**frontend.base(card_no), "amount": 10_000})
    assert pending.code == 502
    assert await backend.store.transactions(card_no) == []


@pytest.mark.asyncio
async def test_lost_reservation_answer_is_found_again_by_reff_no(
    frontend: Frontend, sim: Simulator, backend: RunningBackend, card_for: CardFor
) -> None:
    _, card_no = card_for(11)
    async with AdminClient(sim.admin_url) as admin:
        await admin.add_fault(kind="reset", operation="reservation/create", phase="after", times=1)
    lost = await frontend.post("pending", {**frontend.base(card_no), "amount": 10_000})
    assert lost.code == 502
    [transaction] = await backend.store.transactions(card_no)
    assert (transaction.status, transaction.last_code, transaction.reservation_number) == (Status.NEW, 502, None)
    again = await frontend.post("pending", {**frontend.base(card_no), "amount": 10_000})
    assert (again.code, again.message) == (200, "Pending Reservation Exists")
    assert again.data["reff_no"] == transaction.reff_no
    [adopted] = await backend.store.transactions(card_no)
    assert adopted.status is Status.PENDING and adopted.reservation_number == again.data["reservation_number"]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["delay", "hang"])
async def test_kci_slow_is_504_within_the_read_timeout(
    start_backend: StartBackend, http: aiohttp.ClientSession, sim: Simulator, card_for: CardFor, kind: str
) -> None:
    backend = await start_backend(read_timeout=0.3)
    frontend = Frontend(http, backend.url, TERMINAL)
    _, card_no = card_for(6)
    async with AdminClient(sim.admin_url) as admin:
        await admin.add_fault(kind=kind, operation="card-info", step=1, delay_ms=3000, times=1)
    started = time.perf_counter()
    answer = await frontend.post("card-check", {**frontend.base(card_no), "step": 1})
    elapsed = time.perf_counter() - started
    assert (answer.status, answer.code, answer.data) == (504, 504, None)
    assert 0.25 < elapsed < 2.0
    assert 0.25 < answer.body["response"]["latency"] < 2.0
    # The next call goes through.
    again = await frontend.post("card-check", {**frontend.base(card_no), "step": 1})
    assert again.code == 200


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"kind": "error", "code": 426}, (400, 426)),
        ({"kind": "error", "code": 500}, (500, 500)),
        ({"kind": "http500"}, (502, 502)),
        ({"kind": "empty"}, (502, 502)),
        ({"kind": "reset"}, (502, 502)),
    ],
)
async def test_kci_errors(
    frontend: Frontend, sim: Simulator, card_for: CardFor, fault: dict[str, Any], expected: tuple[int, int]
) -> None:
    card, card_no = card_for(7)
    await frontend.post("pending", {**frontend.base(card_no), "amount": 10_000})
    [first, second] = await update_steps(frontend, card, card_no, START_BALANCE, last=2)
    async with AdminClient(sim.admin_url) as admin:
        await admin.add_fault(operation="load-balance", step=3, **fault, times=1)
    answer = await frontend.post("update", next_params(frontend, card, card_no, second, 3))
    assert (answer.status, answer.code, answer.data) == (*expected, None)
    assert first.code == 200


@pytest.mark.asyncio
async def test_kci_refusing_the_partner_signature_is_502(
    start_backend: StartBackend, http: aiohttp.ClientSession, card_for: CardFor
) -> None:
    backend = await start_backend(kci_partner_secret="not-the-partner-secret")
    frontend = Frontend(http, backend.url, TERMINAL)
    _, card_no = card_for(8)
    answer = await frontend.post("card-check", {**frontend.base(card_no), "step": 1})
    assert (answer.status, answer.code) == (502, 502)
    assert "partner credentials" in answer.message


@pytest.mark.asyncio
async def test_unknown_write_outcome_is_suspect_and_recovered_exactly_once(
    frontend: Frontend, sim: Simulator, backend: RunningBackend, card_for: CardFor
) -> None:
    card, card_no = card_for(9)
    await card_check(frontend, card, card_no)
    pending = await frontend.post("pending", {**frontend.base(card_no), "amount": 40_000})
    answers = await update_steps(frontend, card, card_no, START_BALANCE, last=5)
    # The card executes the write; KCI does step 6's work but its answer is lost.
    async with AdminClient(sim.admin_url) as admin:
        await admin.add_fault(kind="reset", operation="load-balance", step=6, phase="after", times=1)
        lost = await frontend.post("update", next_params(frontend, card, card_no, answers[-1], 6))
        assert (lost.status, lost.code) == (502, 502)
        [transaction] = await backend.store.transactions(card_no)
        assert (transaction.status, transaction.suspect) == (Status.IN_PROGRESS, True)
        assert transaction.last_code == 502
        assert card.image().balance == START_BALANCE + 40_000
        # The frontend is gone; KCI's session expires; the card comes back for another top-up.
        await admin.limits(clock_skew=100_000)
        await admin.advance_clock(KCI_SESSION_TTL + 1)
    resumed = await frontend.post("pending", {**frontend.base(card_no), "amount": 10_000})
    assert (resumed.code, resumed.message) == (200, "Pending Reservation Exists")
    assert resumed.data["suspect_status"] is True
    assert resumed.data["reservation_number"] == pending.data["reservation_number"]
    assert resumed.data["amount"] == 40_000
    # Recovery: update again from step 1 with the card's real balance; KCI must not write twice.
    balance_now = card.image().balance
    recovered = await update_steps(frontend, card, card_no, balance_now)
    final = recovered[-1].data
    assert final["balance"] == START_BALANCE + 40_000
    confirm = await frontend.post(
        "confirm",
        {**frontend.base(card_no), "last_balance": final["balance"], "session_id": final["data"]["session_id"]},
    )
    assert confirm.code == 200, confirm.body
    assert card.image().balance == START_BALANCE + 40_000
    [transaction] = await backend.store.transactions(card_no)
    assert (transaction.status, transaction.suspect) == (Status.SUCCESS, False)


KCI_SESSION_TTL = 300


@pytest.mark.asyncio
async def test_refused_write_request_lifts_the_suspect_mark(
    frontend: Frontend, sim: Simulator, backend: RunningBackend, card_for: CardFor
) -> None:
    card, card_no = card_for(10)
    await frontend.post("pending", {**frontend.base(card_no), "amount": 10_000})
    answers = await update_steps(frontend, card, card_no, START_BALANCE, last=4)
    async with AdminClient(sim.admin_url) as admin:
        await admin.add_fault(kind="error", code=428, operation="load-balance", step=5, times=1)
    refused = await frontend.post("update", next_params(frontend, card, card_no, answers[-1], 5))
    assert refused.code == 428
    [transaction] = await backend.store.transactions(card_no)
    assert (transaction.status, transaction.suspect, transaction.last_code) == (Status.LOADING, False, 428)


@pytest.mark.asyncio
async def test_frontend_gone_during_the_write_step_then_retrying(
    frontend: Frontend, sim: Simulator, backend: RunningBackend, card_for: CardFor
) -> None:
    card, card_no = card_for(11)
    await frontend.post("pending", {**frontend.base(card_no), "amount": 10_000})
    answers = await update_steps(frontend, card, card_no, START_BALANCE, last=4)
    params = next_params(frontend, card, card_no, answers[-1], 5)
    async with AdminClient(sim.admin_url) as admin:
        await admin.add_fault(kind="delay", delay_ms=300, operation="load-balance", step=5, times=1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await frontend.post("update", params)
    [transaction] = await backend.store.transactions(card_no)
    assert (transaction.status, transaction.suspect) == (Status.IN_PROGRESS, True)
    await asyncio.sleep(0.4)  # the backend finishes the KCI call although nobody waits for it
    calls = kci_calls(sim)
    retried = await frontend.post("update", params)
    assert retried.code == 200 and retried.replayed and kci_calls(sim) == calls
    rest = await update_steps(frontend, card, card_no, START_BALANCE, first=6, previous=retried)
    assert rest[-1].data["balance"] == START_BALANCE + 10_000
