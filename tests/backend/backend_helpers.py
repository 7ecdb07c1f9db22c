"""Test helpers for the backend: a frontend that signs its calls, the card loop, OpenAPI validation."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from backend.app import RunningBackend
from backend.auth import bearer_headers, sign_request
from backend.config import AuthScheme, BackendConfig, TerminalCredential
from simulator.app import Simulator
from virtual_card.card import KmtCard

SEED = 4242
CARDS = 12
START_BALANCE = 50_000

TERMINAL = TerminalCredential("term-01", "T0000001", "M0000001", "terminal-one-secret-0001")
OTHER_TERMINAL = TerminalCredential("term-02", "T0000002", "M0000001", "terminal-two-secret-0002")
HMAC_ONLY = TerminalCredential("term-03", "T0000001", "M0000001", "terminal-hmac-secret-003", AuthScheme.HMAC)


def backend_config(sim: Simulator, db_path: Path | None, **changes: Any) -> BackendConfig:
    config = BackendConfig(
        kci_url=sim.url,
        kci_partner_id=sim.partner.partner_id,
        kci_partner_secret=sim.partner.secret,
        terminals=(TERMINAL, OTHER_TERMINAL, HMAC_ONLY),
        db_path=db_path,
        db_synchronous="NORMAL",
        connect_timeout=1.0,
        read_timeout=1.0,
    )
    return replace(config, **changes)


StartBackend = Callable[..., Awaitable[RunningBackend]]


OPENAPI_PATH = Path(__file__).resolve().parents[2] / "docs" / "backend-openapi.yaml"
_OPENAPI: list[OpenAPI] = []


def openapi() -> OpenAPI:
    if not _OPENAPI:
        _OPENAPI.append(OpenAPI.from_file_path(str(OPENAPI_PATH)))
    return _OPENAPI[0]


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def code(self) -> int:
        code: int = self.body["response"]["code"]
        return code

    @property
    def message(self) -> str:
        message: str = self.body["response"]["message"]
        return message

    @property
    def data(self) -> Any:
        return self.body["data"]

    @property
    def replayed(self) -> bool:
        return self.headers.get("X-KMT-Replayed") == "true"


@dataclass
class Frontend:
    """Plays the frontend: posts to the backend with a terminal's credentials, validates every answer."""

    session: aiohttp.ClientSession
    base_url: str
    terminal: TerminalCredential
    scheme: str = "bearer"
    form: bool = False
    calls: list[tuple[str, dict[str, Any], Answer]] = field(default_factory=list)

    async def post(
        self,
        endpoint: str,
        params: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        path = f"/topup-kci/{endpoint}"
        if raw is not None:
            body, content_type = raw, "application/json"
        elif self.form:
            body, content_type = (
                urlencode({k: str(v) for k, v in params.items()}).encode(),
                ("application/x-www-form-urlencoded"),
            )
        else:
            body, content_type = json.dumps(params).encode(), "application/json"
        if headers is None:
            if self.scheme == "bearer":
                headers = bearer_headers(self.terminal.secret)
            else:
                headers = sign_request(self.terminal.key_id, self.terminal.secret, "POST", path, body)
        async with self.session.post(
            self.base_url + path,
            data=body,
            headers={**headers, "Content-Type": content_type},
        ) as response:
            raw_answer = await response.read()
            answer = Answer(response.status, json.loads(raw_answer), dict(response.headers))
            validate(path, body, content_type, response.status, raw_answer)
        self.calls.append((endpoint, params, answer))
        return answer

    def base(self, card_no: str) -> dict[str, Any]:
        return {"card_no": card_no, "tid": self.terminal.tid, "mid": self.terminal.mid}


def validate(path: str, body: bytes, content_type: str, status: int, raw: bytes) -> None:
    """Check one answer against docs/backend-openapi.yaml (raises on any mismatch)."""
    request = MockRequest("http://127.0.0.1:8080", "post", path, data=body, content_type=content_type)
    response = MockResponse(raw, status_code=status, content_type="application/json")
    openapi().validate_response(request, response)


def run_on_card(card: KmtCard, command: str) -> str:
    """Execute a command (hex, no LEN) on the virtual card and return its answer as hex."""
    answer = card.handle(bytes.fromhex(command))
    assert answer is not None, f"card gave no answer to {command}"
    return answer.hex()


@dataclass
class TopupResult:
    card_check: list[Answer]
    pending: Answer
    updates: list[Answer]
    confirm: Answer


async def card_check(frontend: Frontend, card: KmtCard, card_no: str) -> list[Answer]:
    answers = [await frontend.post("card-check", {**frontend.base(card_no), "step": 1})]
    assert answers[-1].code == 200, answers[-1].body
    for step in (2, 3):
        previous = answers[-1].data["data"]
        params = {
            **frontend.base(card_no),
            "step": step,
            "card_resp": run_on_card(card, previous["command"]),
            "session_id": previous["session_id"],
        }
        if step == 3:
            params["sequence_data"] = previous["sequence_data"]
        answers.append(await frontend.post("card-check", params))
        assert answers[-1].code == 200, answers[-1].body
    return answers


def next_params(
    frontend: Frontend, card: KmtCard, card_no: str, previous: Answer, step: int, balance: int = START_BALANCE
) -> dict[str, Any]:
    """The parameters of update ``step`` (2-7): the card's answer to the previous step's command."""
    block = previous.data["data"]
    params = {
        **frontend.base(card_no),
        "step": step,
        "balance": balance,
        "card_resp": run_on_card(card, block["command"]),
        "session_id": block["session_id"],
    }
    if step >= 3:
        params["sequence_data"] = block["sequence_data"]
    return params


async def update_steps(
    frontend: Frontend,
    card: KmtCard,
    card_no: str,
    balance: int,
    *,
    first: int = 1,
    last: int = 7,
    previous: Answer | None = None,
) -> list[Answer]:
    """Run update steps ``first``..``last`` (continuing from ``previous`` when first > 1)."""
    answers: list[Answer] = []
    for step in range(first, last + 1):
        if step == 1:
            params: dict[str, Any] = {**frontend.base(card_no), "step": 1, "prev_balance": balance}
        else:
            assert previous is not None
            params = next_params(frontend, card, card_no, previous, step, balance)
        answer = await frontend.post("update", params)
        assert answer.code == 200, (step, answer.body)
        answers.append(answer)
        previous = answer
    return answers


async def full_topup(frontend: Frontend, card: KmtCard, card_no: str, amount: int) -> TopupResult:
    """The seed's 13 calls: card-check 1-3, pending, update 1-7, confirm."""
    checks = await card_check(frontend, card, card_no)
    balance = int(checks[-1].data["card_info_data"]["balance"])
    pending = await frontend.post("pending", {**frontend.base(card_no), "amount": amount})
    assert pending.code == 200, pending.body
    updates = await update_steps(frontend, card, card_no, balance)
    last = updates[-1].data
    confirm = await frontend.post(
        "confirm", {**frontend.base(card_no), "last_balance": last["balance"], "session_id": last["data"]["session_id"]}
    )
    assert confirm.code == 200, confirm.body
    return TopupResult(checks, pending, updates, confirm)
