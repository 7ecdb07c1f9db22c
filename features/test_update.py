"""Update: the seven steps with step/next_step, session and sequence data carried; confirm."""

from __future__ import annotations

from pytest_bdd import parsers, scenarios, then, when

from features.conftest import rupiah
from features.driver import Driver
from terminal.api import Endpoint
from virtual_card.frames import parse_command

scenarios("update")


@when("the frontend sends the update steps 1 to 7")
def update_steps(driver: Driver) -> None:
    """Each step built from the previous answer; every one must succeed."""
    for step in range(1, 8):
        response = driver.step(Endpoint.UPDATE, step)
        assert response.ok, f"update {step}: {response.code} {response.message}"


def _updates(driver: Driver) -> dict[str, dict[str, object]]:
    return {s.request.name: s.response.data for s in driver.sent if s.request.endpoint is Endpoint.UPDATE}


@then("the update answers were")
def update_answers(driver: Driver, datatable: list[list[str]]) -> None:
    """Per call: step, next_step, the FeliCa command it carries, whether sequence_data is set."""
    answers = _updates(driver)
    header, *rows = datatable
    for row in rows:
        expected = dict(zip(header, row, strict=True))
        data = answers[expected["call"]]
        next_step = int(expected["next_step"]) if expected["next_step"] else None
        assert (data.get("step"), data.get("next_step")) == (int(expected["step"]), next_step), data
        nested = data.get("data")
        assert isinstance(nested, dict), data
        command = str(nested.get("command") or "")
        kind = type(parse_command(bytes.fromhex(command))).__name__ if command else ""
        assert kind == expected["command"], f"{expected['call']}: command {command[:40]} is {kind or 'none'}"
        if expected["sequence_data"] == "set":
            assert nested.get("sequence_data"), f"{expected['call']}: sequence_data missing"


@then("every update answer kept the session of update 1")
def same_session(driver: Driver) -> None:
    sessions = {str(d["data"]["session_id"]) for d in _updates(driver).values()}  # type: ignore[index]
    assert len(sessions) == 1, sessions


@then(parsers.parse('update 7 reports the new balance, the load balance number and status "{status}"'))
def update_seven(driver: Driver, status: str) -> None:
    data = _updates(driver)["update 7"]
    assert int(str(data.get("balance"))) == driver.card.balance, data
    assert data.get("load_balance_number"), data
    assert data.get("status") == status, data


@then(
    parsers.parse(
        'the confirmation says status "{status}", activated balance {amount} and the card\'s balance as last balance'
    ),
    converters={"amount": rupiah},
)
def confirmation(driver: Driver, status: str, amount: int) -> None:
    assert driver.last is not None and driver.last.ok, driver.last
    data = driver.last.data
    assert data.get("status") == status, data
    assert int(str(data.get("activated_balance"))) == amount, data
    assert int(str(data.get("last_balance"))) == driver.card.balance, data
    assert data.get("load_balance_number") == _updates(driver)["update 7"]["load_balance_number"], data
