"""The whole top-up as a Scenario Outline over amounts and KCI's limits."""

from __future__ import annotations

from pytest_bdd import given, parsers, scenarios

from features.conftest import rupiah
from features.driver import Driver

scenarios("topup")

LIMITS = {
    "minimum top-up": "min_topup",
    "per-transaction maximum": "max_per_transaction",
    "monthly limit": "monthly_limit",
}


@given(
    parsers.re(r"KCI's (?P<name>minimum top-up|per-transaction maximum|monthly limit) is (?P<amount>Rp [0-9,]+)"),
    converters={"amount": rupiah},
)
def kci_limit(driver: Driver, name: str, amount: int) -> None:
    """Set one of KCI's limits (admin ``limits``); the driver puts it back after the scenario."""
    driver.set_limits(**{LIMITS[name]: amount})


@given(parsers.parse("KCI's maximum balance is the card's balance plus {amount}"), converters={"amount": rupiah})
def kci_max_balance(driver: Driver, amount: int) -> None:
    driver.set_limits(max_balance=driver.card.balance + amount)
