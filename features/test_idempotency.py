"""Idempotency (each step twice, confirm twice) and concurrency (two terminals, one card)."""

from __future__ import annotations

from pytest_bdd import parsers, scenarios, then, when

from features.conftest import POINT, rupiah
from features.driver import Driver, parse_point
from terminal.api import ApiRequest

scenarios("idempotency")


@when(parsers.re(rf"the frontend sends {POINT} twice"))
def send_twice(driver: Driver, point: str) -> None:
    """The same request twice in a row (as after a lost answer); the flow goes on with the second."""
    endpoint, step = parse_point(point)
    request = ApiRequest(endpoint, driver.body(endpoint, step), step)
    driver.send(request)
    second = driver.send(request)
    if second.ok:
        driver.absorb(endpoint, step, second)


@then("both answers are a success")
def both_ok(driver: Driver) -> None:
    first, second = driver.answers[-2:]
    assert first.ok and second.ok, (first, second)


@then("both answers are a success and the second repeats the first")
def both_same(driver: Driver) -> None:
    first, second = driver.answers[-2:]
    assert first.ok and second.ok, (first, second)
    assert second.data == first.data, (first.data, second.data)


@when("the frontend completes the step-by-step top-up")
def finish(driver: Driver) -> None:
    driver.finish()


@when(
    parsers.re(
        r"(?P<who>two terminals|the terminal) tops? up the card with (?P<first>Rp [0-9,]+) "
        r"and (?P<second>Rp [0-9,]+) at the same moment"
    ),
    converters={"first": rupiah, "second": rupiah},
)
def parallel(driver: Driver, who: str, first: int, second: int) -> None:
    profiles = [driver.main, driver.other_profile() if who == "two terminals" else driver.main]
    driver.topups_in_parallel([first, second], profiles)


@then("neither was loaded without KCI's word")
def loaded_as_kci_says(driver: Driver) -> None:
    """The card grew by exactly the reservations KCI holds as loaded (LOADED or SUCCESS)."""
    driver.settle()
    loaded = sum(int(r["amount"]) for r in driver.reservations() if r.get("status") in ("LOADED", "SUCCESS"))
    assert driver.grown_by() == loaded, [(r.outcome, r.amount, r.message) for r in driver.results]
