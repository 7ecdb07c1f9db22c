"""Security: auth missing, wrong or replayed; sessions bound to terminal and card; forged answers."""

from __future__ import annotations

from pytest_bdd import parsers, scenarios, then, when

from features.conftest import rupiah
from features.driver import Driver
from terminal.api import Endpoint
from terminal.terminal import Auth
from virtual_card.faults import Fault, FaultKind

scenarios("security")


@when("the frontend sends card-check 1 without credentials")
def no_credentials(driver: Driver) -> None:
    driver.step(Endpoint.CARD_CHECK, 1, auth=Auth())


@when("the frontend sends card-check 1 with a wrong secret")
def wrong_secret(driver: Driver) -> None:
    driver.step(Endpoint.CARD_CHECK, 1, auth=driver.wrong_auth())


@when("the same signed request is sent again")
def replay(driver: Driver) -> None:
    """Byte for byte, with the same timestamp, nonce and signature."""
    driver.replay_last()


@when("another terminal sends update 2 with this terminal's session")
def other_terminal_session(driver: Driver) -> None:
    driver.step(Endpoint.UPDATE, 2, profile=driver.other_profile())


@when("the frontend sends update 2 for this card with the first card's session")
def other_card_session(driver: Driver) -> None:
    """The second card's number and reader, the first card's update session and command answer."""
    driver.state = driver.previous_state
    driver.step(Endpoint.UPDATE, 2, changes={"card_no": driver.card.card_no})


@when(
    parsers.parse("the frontend sends update 5 with the purse balance raised by {amount} in the card's answer"),
    converters={"amount": rupiah},
)
def forged_purse(driver: Driver, amount: int) -> None:
    driver.step(Endpoint.UPDATE, 5, changes={"card_resp": driver.forge_purse_balance(amount)})


@when("the frontend sends update 7 with the card's answer corrupted")
def corrupted_answer(driver: Driver) -> None:
    """Run update 6's command again on a card that flips a bit of its answer (the MAC no longer fits)."""
    driver.card.faults.add(Fault(FaultKind.CORRUPT))
    driver.run_command()
    driver.step(Endpoint.UPDATE, 7)


@when("the frontend sends card-check 3 with the first card's number in the card's answer")
def forged_card_number(driver: Driver) -> None:
    driver.step(Endpoint.CARD_CHECK, 3, changes={"card_resp": driver.forge_card_number(driver.card_named(0))})


@when("the frontend sends update 2 with the confirmed session")
def reuse_session(driver: Driver) -> None:
    """A new update 2 on the finished session, with a fresh Polling answer from the card."""
    first = next(s.response for s in driver.sent if s.request.name == "update 1")
    driver.state.command = bytes.fromhex(first.data["data"]["command"])
    driver.run_command()
    driver.step(Endpoint.UPDATE, 2, run_command=False)


@then("the answer is an error")
def an_error(driver: Driver) -> None:
    assert driver.last is not None and driver.last.code != 200, driver.last
