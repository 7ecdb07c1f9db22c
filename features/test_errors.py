"""Error codes with the requests that cause them; 400 for each missing parameter at each step."""

from __future__ import annotations

from pytest_bdd import given, parsers, scenarios, when

from features.conftest import rupiah
from features.driver import Driver
from terminal.api import Endpoint

scenarios("errors")


@when(
    parsers.parse("the frontend sends update 5 with the purse balance raised by {amount} in the card's answer"),
    converters={"amount": rupiah},
)
def forged_purse(driver: Driver, amount: int) -> None:
    """update 5 carrying update 4's authenticated purse read with a higher balance (MAC no longer fits)."""
    driver.step(Endpoint.UPDATE, 5, changes={"card_resp": driver.forge_purse_balance(amount)})


@when("the frontend sends card-check 3 with the first card's number in the card's answer")
def forged_card_number(driver: Driver) -> None:
    """card-check 3 carrying the card's read answer with the other card's number in block 300B#0."""
    driver.step(Endpoint.CARD_CHECK, 3, changes={"card_resp": driver.forge_card_number(driver.card_named(0))})


@given("KCI's clock moves past the reservation's lifetime")
def reservation_expires(driver: Driver) -> None:
    """Advance KCI's clock (put back after the scenario)."""
    driver.advance_clock(driver.limits()["reservation_ttl"] + 1)


@given("KCI marks the terminal's merchant inactive")
def merchant_inactive(driver: Driver) -> None:
    """Through the admin API; the merchant is made active again after the scenario."""
    driver.set_merchant_active(False)
