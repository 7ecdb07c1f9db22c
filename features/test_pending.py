"""Pending: a new reservation's fields; an open or suspect reservation returned for resumption."""

from __future__ import annotations

from pytest_bdd import given, parsers, scenarios, then, when

from features.conftest import rupiah
from features.driver import Driver
from terminal.api import Endpoint

scenarios("pending")


@given("KCI's session of the interrupted top-up has expired")
def session_expired(driver: Driver) -> None:
    """Move KCI's clock past its session lifetime (put back after the scenario)."""
    driver.advance_clock(driver.limits()["session_ttl"] + 1)


@when("the card is put back and the frontend sends pending")
def back_and_pending(driver: Driver) -> None:
    """Put the card back, check it again, then ask for a reservation."""
    driver.put_card_back()
    driver.state.done.clear()
    driver.run_until(Endpoint.PENDING, None)
    driver.step(Endpoint.PENDING, None)


def _reservation(driver: Driver) -> dict[str, object]:
    assert driver.last is not None and driver.last.ok, driver.last
    return driver.last.data


@then(parsers.parse("the reservation is new, for {amount}, not suspect"), converters={"amount": rupiah})
def new_reservation(driver: Driver, amount: int) -> None:
    """The seed's success fields: card, amount, reff_no, reservation number, time, suspect flag."""
    data = _reservation(driver)
    assert data.get("card_no") == driver.card.card_no, data
    assert int(str(data.get("amount"))) == amount, data
    assert data.get("reservation_number") and data.get("reff_no") and data.get("trx_time"), data
    assert data.get("suspect_status") is False, data
    assert [r["reservation_number"] for r in driver.reservations()] == [data["reservation_number"]]


@then(
    parsers.re(
        r"the reservation is the one of the (?P<which>first pending|interrupted top-up), "
        r"for (?P<amount>Rp [0-9,]+?)(?:, (?P<suspect>not suspect|suspect))?"
    ),
    converters={"amount": rupiah},
)
def same_reservation(driver: Driver, which: str, amount: int, suspect: str | None) -> None:
    """The earlier reservation (same number, its own amount) with the right suspect flag."""
    data = _reservation(driver)
    if which == "first pending":
        first = next(s.response for s in driver.sent if s.request.endpoint is Endpoint.PENDING)
        number = first.data["reservation_number"]
    else:
        number = driver.results[-1].reservation_number
    assert data.get("reservation_number") == number, data
    assert int(str(data.get("amount"))) == amount, data
    if suspect:
        assert data.get("suspect_status") is (suspect == "suspect"), data
    assert len(driver.reservations()) == 1, driver.reservations()
