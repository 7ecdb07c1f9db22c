"""The reference backend's own records, checked in process (@embedded_only)."""

from __future__ import annotations

from pytest_bdd import parsers, scenarios, then

from backend.store import Transaction
from features.driver import Driver

scenarios("records")


def _transaction(driver: Driver) -> Transaction:
    backend = driver.stack.backend
    assert backend is not None, "@embedded_only scenario without the embedded backend"
    number = driver.results[0].reservation_number
    assert number, driver.results[0]
    found: Transaction | None = driver.run(backend.store.find_transaction("reservation_number", number))
    assert found is not None, f"the backend has no transaction for {number}"
    return found


@then(
    parsers.re(r"the backend records the top-up as (?P<status>[A-Z_]+), (?P<suspect>not suspect|suspect)(?P<rest>.*)")
)
def backend_record(driver: Driver, status: str, suspect: str, rest: str) -> None:
    """Status and suspect flag; for a finished one also KCI's numbers and the balances."""
    t = _transaction(driver)
    assert (t.status.value, t.suspect) == (status, suspect == "suspect"), t
    if rest:
        reservations = {r["reservation_number"]: r for r in driver.reservations()}
        kci = reservations[str(t.reservation_number)]
        assert t.load_balance_number == kci["load_balance_number"], (t, kci)
        assert (t.prev_balance, t.last_balance) == (driver.issued[t.card_no], driver.card.balance), t
