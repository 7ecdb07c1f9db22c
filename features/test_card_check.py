"""Card check: the three steps, what step 3 reports, blocked and expired cards."""

from __future__ import annotations

from pytest_bdd import given, parsers, scenarios, then

from features.conftest import rupiah
from features.driver import Driver
from virtual_card.frames import parse_command

scenarios("card_check")


@given(parsers.parse("KCI marks the card {change}"))
def kci_marks_card(driver: Driver, change: str) -> None:
    """Change the card's record at KCI (admin ``set_card``): blocked, inactive or expired."""
    changes = {
        "blocked": {"status": "BLOCKED"},
        "inactive": {"status": "INACTIVE"},
        "expired": {"expires": "2020-01-31"},
    }
    driver.set_card(**changes[change])


@then(parsers.parse("the answer is step {step:d} with next step {next_step:d} and a {command} command"))
def step_with_command(driver: Driver, step: int, next_step: int, command: str) -> None:
    """``step``/``next_step`` of the answer and the kind of FeliCa command it carries."""
    assert driver.last is not None and driver.last.ok, driver.last
    data = driver.last.data
    assert (data.get("step"), data.get("next_step")) == (step, next_step), data
    nested = data["data"]
    frame = parse_command(bytes.fromhex(nested["command"]))
    assert type(frame).__name__ == command, f"command {nested['command']} is a {type(frame).__name__}"
    assert nested.get("command_len") in (None, len(bytes.fromhex(nested["command"])))


@then(parsers.parse("the answer is step {step:d} with no next step"))
def last_step(driver: Driver, step: int) -> None:
    assert driver.last is not None and driver.last.ok, driver.last
    assert driver.last.data.get("step") == step and driver.last.data.get("next_step") is None, driver.last.data


@then(parsers.parse("the answer keeps the session of {point} and carries sequence data"))
def same_session(driver: Driver, point: str) -> None:
    """The session id of that earlier answer, and a non-empty ``sequence_data`` to send back."""
    first = next(s.response for s in driver.sent if s.request.name == point)
    nested = driver.last.data["data"] if driver.last is not None else {}
    assert nested.get("session_id") == first.data["data"]["session_id"], nested
    assert nested.get("sequence_data"), nested


@then(parsers.parse('the card check reports the card\'s number, its balance and account status "{status}"'))
def card_check_report(driver: Driver, status: str) -> None:
    """card_info_data: the card number, the purse balance exactly as on the card; account_status."""
    assert driver.last is not None and driver.last.ok, driver.last
    data = driver.last.data
    info = data["card_info_data"]
    assert info.get("card_number") == driver.card.card_no, info
    assert int(info["balance"]) == driver.card.balance, info
    assert data.get("account_status") == status, data


@then(parsers.parse("the card check history holds a top-up of {amount}"), converters={"amount": rupiah})
def history_has(driver: Driver, amount: int) -> None:
    assert driver.last is not None
    history = driver.last.data["card_info_data"].get("history", [])
    assert any(int(h.get("amount", 0)) == amount for h in history), history
