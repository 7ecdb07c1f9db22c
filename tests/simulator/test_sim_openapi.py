"""Every answer of a varied session validates against docs/kci-openapi.yaml (openapi-core)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from sim_driver import Driver, make_card

SPEC = Path(__file__).resolve().parents[2] / "docs" / "kci-openapi.yaml"


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC))


def validate(openapi: OpenAPI, operation: str, request: Any, status: int, response: Any) -> None:
    req = MockRequest("http://127.0.0.1:8470", "post", f"/kci/v1/{operation}", data=json.dumps(request).encode())
    openapi.validate_response(req, MockResponse(json.dumps(response).encode(), status_code=status))


@pytest.mark.asyncio
async def test_every_journaled_answer_matches_the_spec(driver: Driver, openapi: OpenAPI) -> None:
    card, other = make_card(0), make_card(1)
    await driver.card_info(card)
    await driver.top_up(card, 20_000)
    res = await driver.reserve(other, 10_000)
    await driver.load_steps(other, until=5)  # IN_PROGRESS, suspect after expiry
    await driver.admin.advance_clock(301)
    await driver.call("reservation/check", driver.base(other))
    await driver.call("reservation/inquiry", {"reservation_number": res["reservation_number"]})
    await driver.call("reservation/validate", driver.base(make_card(2)) | {"amount": 10_000, "ref_no": "V"})
    await driver.call("reservation/validate", driver.base(other) | {"amount": 10_000, "ref_no": "V"})  # 420
    await driver.call("card-info", driver.base("9999999999999999") | {"step": 1})  # 413
    await driver.call("card-info", {"step": 1})  # 400
    await driver.call("load-balance/confirm", driver.base(card) | {"session_id": "a" * 32, "last_balance": 1})
    entries = await driver.admin.journal()
    assert len(entries) > 20
    codes = set()
    for e in entries:
        validate(openapi, e["operation"], e["request"], e["status"], e["response"])
        codes.add(e["code"])
    assert {200, 400, 413, 420, 424} <= codes
    assert {e["operation"] for e in entries} == {
        "card-info",
        "reservation/check",
        "reservation/validate",
        "reservation/create",
        "reservation/inquiry",
        "load-balance",
        "load-balance/confirm",
    }


def test_the_spec_rejects_a_malformed_answer(openapi: OpenAPI) -> None:
    bad = {"code": 200, "message": "OK", "data": {"reservation_number": "RB1", "status": "PENDING"}}
    with pytest.raises(Exception, match="nvalid"):
        validate(openapi, "reservation/create", {}, 200, bad)
