"""Malformed requests (400 naming the parameter) and authentication (401, 412): nothing reaches KCI."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from backend_helpers import HMAC_ONLY, OTHER_TERMINAL, TERMINAL, Frontend, backend_config

from backend.app import RunningBackend, run_backend
from backend.auth import bearer_headers, sign_request
from simulator.app import Simulator

CARD = "6032000100000000"
BASE = {"card_no": CARD, "tid": TERMINAL.tid, "mid": TERMINAL.mid}
SESSION = "0123456789abcdef0123456789abcdef"

BAD_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("card-check", {"tid": "T0000001", "mid": "M0000001"}, "card_no"),
    ("card-check", {**BASE, "card_no": "123456789012345"}, "card_no"),
    ("card-check", {**BASE, "card_no": "12345678901234567"}, "card_no"),
    ("card-check", {**BASE, "card_no": "60320001000000AB"}, "card_no"),
    ("card-check", {**BASE, "card_no": 6032000100000000}, "card_no"),
    ("card-check", {"card_no": CARD, "mid": "M0000001"}, "tid"),
    ("card-check", {**BASE, "mid": "M 1"}, "mid"),
    ("card-check", {**BASE, "step": 0}, "step"),
    ("card-check", {**BASE, "step": 4}, "step"),
    ("card-check", {**BASE, "step": "two"}, "step"),
    ("card-check", {**BASE, "step": True}, "step"),
    ("card-check", {**BASE, "step": 2.0}, "step"),
    ("card-check", {**BASE, "step": 2, "session_id": SESSION}, "card_resp"),
    ("card-check", {**BASE, "step": 2, "card_resp": "0101"}, "session_id"),
    ("card-check", {**BASE, "step": 2, "card_resp": "0g01", "session_id": SESSION}, "card_resp"),
    ("card-check", {**BASE, "step": 2, "card_resp": "010", "session_id": SESSION}, "card_resp"),
    ("card-check", {**BASE, "step": 2, "card_resp": "0101", "session_id": "abc"}, "session_id"),
    ("card-check", {**BASE, "step": 3, "card_resp": "0101", "session_id": SESSION}, "sequence_data"),
    ("pending", BASE, "amount"),
    ("pending", {**BASE, "amount": 0}, "amount"),
    ("pending", {**BASE, "amount": -10_000}, "amount"),
    ("pending", {**BASE, "amount": 10_000.5}, "amount"),
    ("pending", {**BASE, "amount": "10k"}, "amount"),
    ("pending", {**BASE, "amount": 10_000, "invoice_no": "x" * 65}, "invoice_no"),
    ("update", BASE, "prev_balance"),
    ("update", {**BASE, "prev_balance": -1}, "prev_balance"),
    ("update", {**BASE, "step": 8, "prev_balance": 1}, "step"),
    ("update", {**BASE, "step": 2, "card_resp": "0101", "session_id": SESSION}, "balance"),
    ("update", {**BASE, "step": 2, "balance": 5, "session_id": SESSION}, "card_resp"),
    ("update", {**BASE, "step": 2, "balance": 5, "card_resp": "0101"}, "session_id"),
    ("update", {**BASE, "step": 3, "balance": 5, "card_resp": "0101", "session_id": SESSION}, "sequence_data"),
    ("update", {**BASE, "step": 7, "balance": 5, "card_resp": "01", "session_id": SESSION}, "sequence_data"),
    ("update", {**BASE, "prev_balance": 5, "reservation_number": "RB-1"}, "reservation_number"),
    ("confirm", {**BASE, "session_id": SESSION}, "last_balance"),
    ("confirm", {**BASE, "last_balance": 10}, "session_id"),
    ("confirm", {**BASE, "last_balance": "ten", "session_id": SESSION}, "last_balance"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("endpoint", "params", "parameter"), BAD_REQUESTS)
async def test_malformed_parameter_is_400_naming_it(
    frontend: Frontend, sim: Simulator, endpoint: str, params: dict[str, Any], parameter: str
) -> None:
    before = len(sim.kci.journal.entries)
    answer = await frontend.post(endpoint, params)
    assert (answer.status, answer.code, answer.data) == (400, 400, None)
    assert answer.message.startswith(f"{parameter}:"), answer.message
    assert len(sim.kci.journal.entries) == before


@pytest.mark.asyncio
async def test_form_fields_are_validated_the_same_way(http: aiohttp.ClientSession, backend: RunningBackend) -> None:
    frontend = Frontend(http, backend.url, TERMINAL, form=True)
    answer = await frontend.post("pending", {**BASE, "amount": "-5"})
    assert (answer.status, answer.code) == (400, 400)
    assert answer.message.startswith("amount:")


@pytest.mark.asyncio
@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
async def test_undecodable_body_is_400_body(frontend: Frontend, raw: bytes) -> None:
    answer = await frontend.post("card-check", {}, raw=raw, headers=bearer_headers(TERMINAL.secret))
    assert (answer.status, answer.code) == (400, 400)
    assert answer.message.startswith("body:")


@pytest.mark.asyncio
async def test_empty_body_names_the_first_missing_parameter(frontend: Frontend) -> None:
    answer = await frontend.post("confirm", {}, raw=b"", headers=bearer_headers(TERMINAL.secret))
    assert (answer.status, answer.code) == (400, 400)
    assert answer.message.startswith("card_no:")


def _signed(body: bytes, path: str = "/topup-kci/card-check", **kwargs: Any) -> dict[str, str]:
    return sign_request(TERMINAL.key_id, TERMINAL.secret, "POST", path, body, **kwargs)


BODY = json.dumps({**BASE, "step": 1}).encode()

AUTH_FAILURES: list[tuple[str, Callable[[], dict[str, str]]]] = [
    ("no credentials", lambda: {}),
    ("wrong bearer key", lambda: bearer_headers("not-a-configured-key-000")),
    ("basic scheme", lambda: {"Authorization": "Basic dGVybTp4"}),
    ("empty bearer", lambda: {"Authorization": "Bearer "}),
    ("bearer for an hmac-only terminal", lambda: bearer_headers(HMAC_ONLY.secret)),
    ("unknown key id", lambda: {**_signed(BODY), "X-KMT-Key-Id": "term-99"}),
    ("wrong signature", lambda: {**_signed(BODY), "X-KMT-Signature": "0" * 64}),
    ("signature of another body", lambda: _signed(b'{"card_no":"6032000100000001"}')),
    ("signature of another path", lambda: _signed(BODY, path="/topup-kci/pending")),
    (
        "signed with another secret",
        lambda: sign_request(TERMINAL.key_id, OTHER_TERMINAL.secret, "POST", "/topup-kci/card-check", BODY),
    ),
    ("stale timestamp", lambda: _signed(BODY, now=time.time() - 301)),
    ("future timestamp", lambda: _signed(BODY, now=time.time() + 400)),
    ("short nonce", lambda: _signed(BODY, nonce="abc")),
    ("missing nonce", lambda: {k: v for k, v in _signed(BODY).items() if k != "X-KMT-Nonce"}),
    ("bad timestamp", lambda: {**_signed(BODY), "X-KMT-Timestamp": "yesterday"}),
    ("both schemes", lambda: {**_signed(BODY), **bearer_headers(TERMINAL.secret)}),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("case", "headers"), AUTH_FAILURES, ids=[c for c, _ in AUTH_FAILURES])
async def test_authentication_failures_are_401_and_never_reach_kci(
    frontend: Frontend, sim: Simulator, case: str, headers: Callable[[], dict[str, str]]
) -> None:
    before = len(sim.kci.journal.entries)
    answer = await frontend.post("card-check", {}, raw=BODY, headers=headers())
    assert (answer.status, answer.code, answer.data) == (401, 401, None), case
    assert len(sim.kci.journal.entries) == before


@pytest.mark.asyncio
async def test_signed_request_is_accepted_once_and_its_replay_refused(frontend: Frontend, sim: Simulator) -> None:
    headers = _signed(BODY)
    first = await frontend.post("card-check", {}, raw=BODY, headers=headers)
    assert first.code == 413  # authenticated and sent to KCI, which does not know this card
    calls = len(sim.kci.journal.entries)
    replay = await frontend.post("card-check", {}, raw=BODY, headers=headers)
    assert (replay.status, replay.code) == (401, 401)
    assert "nonce already used" in replay.message
    assert len(sim.kci.journal.entries) == calls


@pytest.mark.asyncio
async def test_nonce_replay_is_refused_after_a_restart(
    sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    headers = _signed(BODY)
    config = backend_config(sim, tmp_path / "nonces.sqlite3")
    async with run_backend(config) as first_backend:
        first = await Frontend(http, first_backend.url, TERMINAL).post("card-check", {}, raw=BODY, headers=headers)
        assert first.code == 413
    async with run_backend(config) as second_backend:
        replay = await Frontend(http, second_backend.url, TERMINAL).post("card-check", {}, raw=BODY, headers=headers)
        assert (replay.status, replay.code) == (401, 401)


@pytest.mark.asyncio
async def test_hmac_only_terminal_may_sign(http: aiohttp.ClientSession, backend: RunningBackend) -> None:
    frontend = Frontend(http, backend.url, HMAC_ONLY, scheme="hmac")
    answer = await frontend.post("card-check", {**BASE, "card_no": "9999999999999999"})
    assert answer.code == 413


@pytest.mark.asyncio
@pytest.mark.parametrize("scheme", ["bearer", "hmac"])
async def test_credentials_cannot_act_for_another_terminal(
    http: aiohttp.ClientSession, backend: RunningBackend, sim: Simulator, scheme: str
) -> None:
    frontend = Frontend(http, backend.url, OTHER_TERMINAL, scheme=scheme)
    before = len(sim.kci.journal.entries)
    answer = await frontend.post("pending", {**BASE, "amount": 10_000})
    assert (answer.status, answer.code, answer.data) == (400, 412, None)
    assert "T0000002" in answer.message
    assert len(sim.kci.journal.entries) == before


@pytest.mark.asyncio
async def test_health_needs_no_credentials(http: aiohttp.ClientSession, backend: RunningBackend) -> None:
    async with http.get(backend.url + "/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


@pytest.mark.asyncio
async def test_json_labelled_as_form_is_read_as_json(
    http: aiohttp.ClientSession, backend: RunningBackend, sim: Simulator
) -> None:
    body = json.dumps({**BASE, "card_no": "9999999999999999", "step": 1}).encode()
    headers = {**bearer_headers(TERMINAL.secret), "Content-Type": "application/x-www-form-urlencoded"}
    async with http.post(backend.url + "/topup-kci/card-check", data=body, headers=headers) as response:
        answer = await response.json()
    assert answer["response"]["code"] == 413  # parsed, authenticated and asked of KCI
