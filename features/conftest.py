"""Fixtures, tags and the shared steps of the Gherkin suite.

The stack comes from the ``kmt_harness`` pytest plugin (``--backend-url`` and friends); this file adds
the suite's own options, one :class:`~features.driver.Driver` per scenario (autouse: it undoes KCI
changes and checks the money invariant of every card the scenario touched), the tags that skip a
scenario where the system under test cannot support it, and the steps several features share.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from backend.config import TerminalCredential
from harness.pytest_plugin import CardPool
from harness.stack import Stack, StackConfig, SyncStack, terminal_secret
from terminal.api import Endpoint
from terminal.flow import Outcome, TopupResult
from terminal.terminal import Auth, AuthScheme
from virtual_card.faults import Fault, FaultKind

from .driver import CARD_COMMANDS, Driver, TerminalProfile, parse_point

EMBEDDED_KCI_TIMEOUT = 1.5
"""The embedded backend's KCI read timeout, short so that timeout scenarios stay quick."""

TAGS = {
    "embedded_only": "needs the reference backend in this process",
    "needs_auth": "needs the backend's credentials (--backend-auth)",
    "hmac_only": "needs HMAC request signing (--backend-auth hmac)",
    "other_terminal": "needs a second terminal (--kmt-other-terminal)",
    "kci_timeout": "waits for the backend's KCI timeout (--kmt-kci-timeout)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kmt-features", "kmt-harness Gherkin suite")
    group.addoption(
        "--kmt-other-terminal",
        default=None,
        metavar="KEY_ID:TID:MID:SECRET[:bearer|hmac]",
        help="a second terminal of the backend under test (another tid), for the cross-terminal scenarios",
    )
    group.addoption(
        "--kmt-kci-timeout",
        type=float,
        default=None,
        help="the backend's read timeout towards KCI in seconds (embedded backend: 1.5; external default 10)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for tag, meaning in TAGS.items():
        config.addinivalue_line("markers", f"{tag}: {meaning}")


POINT = r"(?P<point>card-check [1-3]|pending|update [1-7]|confirm)"
"""A backend call of the top-up in a step's text."""


NUMBERS = frozenset({"step", "amount", "prev_balance", "balance", "last_balance"})


def rupiah(text: str) -> int:
    """``"Rp 10,000"``, ``"10,000"`` or ``"10000"`` -> 10000 (integer rupiah)."""
    return int(text.strip().removeprefix("Rp").strip().replace(",", "").replace(".", ""))


def _other_terminal(option: str | None, config: StackConfig) -> TerminalProfile | None:
    if option is None:
        if config.backend_url is not None:
            return None
        extra = config.extra_terminals[0]
        return TerminalProfile(extra.tid, extra.mid, Auth.hmac(extra.key_id, extra.secret))
    parts = option.split(":")
    if len(parts) not in (4, 5):
        raise pytest.UsageError(f"--kmt-other-terminal {option!r}: expected KEY_ID:TID:MID:SECRET[:bearer|hmac]")
    key_id, tid, mid, secret = parts[:4]
    scheme = parts[4] if len(parts) == 5 else "hmac"
    auth = Auth.bearer(secret) if scheme == "bearer" else Auth.hmac(key_id, secret)
    return TerminalProfile(tid, mid, auth)


@pytest.fixture(scope="session")
def kmt_stack_config(pytestconfig: pytest.Config) -> StackConfig:
    """The plugin's stack; the embedded backend gets a short KCI timeout and a second terminal."""
    from harness.pytest_plugin import config_from_options  # noqa: PLC0415 - the plugin is loaded already

    config = config_from_options(pytestconfig)
    if config.backend_url is None:
        second = TerminalCredential("kmt-terminal-02", "T0000002", config.mid, terminal_secret(config.seed + 1_000_000))
        config = dataclasses.replace(config, backend_read_timeout=EMBEDDED_KCI_TIMEOUT, extra_terminals=(second,))
    return config


@pytest.fixture(scope="session")
def kmt_sync_stack(kmt_stack_config: StackConfig) -> Iterator[SyncStack]:
    """The suite's own stack (the plugin's fixtures of the same names are overridden here, so a session
    that also runs tests/ gives those tests their plain stack and the suite this one)."""
    sync = SyncStack(kmt_stack_config)
    with sync:
        yield sync


@pytest.fixture(scope="session")
def kmt_stack(kmt_sync_stack: SyncStack) -> Stack:
    """URLs, credentials, virtual cards and the simulator's admin client of the suite's stack."""
    assert kmt_sync_stack.stack is not None
    return kmt_sync_stack.stack


@pytest.fixture(scope="session")
def kmt_card_pool(kmt_stack: Stack) -> CardPool:
    """Each virtual card of the suite's stack, handed out once."""
    return CardPool(kmt_stack)


@pytest.fixture
def kmt_run(kmt_sync_stack: SyncStack) -> Callable[..., Any]:
    """The runner of the suite's stack: the one way steps run asynchronous work."""
    return kmt_sync_stack.run


@pytest.fixture(scope="session")
def kci_timeout(pytestconfig: pytest.Config, kmt_stack_config: StackConfig) -> float:
    option = pytestconfig.getoption("--kmt-kci-timeout")
    if option is not None:
        return float(option)
    return EMBEDDED_KCI_TIMEOUT if kmt_stack_config.backend_url is None else 10.0


@pytest.fixture
def driver(  # noqa: PLR0917 - a fixture's parameters are the fixtures it needs
    request: pytest.FixtureRequest,
    pytestconfig: pytest.Config,
    kmt_stack: Stack,
    kmt_stack_config: StackConfig,
    kmt_card_pool: CardPool,
    kmt_run: Callable[..., Any],
    kci_timeout: float,
) -> Iterator[Driver]:
    """The scenario's driver; afterwards KCI is put back and the money invariant is checked."""
    other = _other_terminal(pytestconfig.getoption("--kmt-other-terminal"), kmt_stack_config)
    skip = _skip_reason(request.node, kmt_stack_config, other)
    if skip:
        pytest.skip(skip)
    drv = Driver(kmt_stack, kmt_run, kmt_card_pool, other_terminal=other, kci_timeout=kci_timeout)
    try:
        yield drv
        drv.settle()
    finally:
        drv.close()
    if drv.cards:
        report = drv.reconcile()
        assert report["ok"], f"money invariant broken: {report['findings']}"


@pytest.fixture(autouse=True)
def _every_scenario_has_a_driver(driver: Driver) -> None:
    """Every scenario gets the driver, so its money check runs even if no step asks for it."""


def _skip_reason(node: pytest.Item, config: StackConfig, other: TerminalProfile | None) -> str | None:
    external = config.backend_url is not None
    auth = config.auth.scheme if config.auth is not None else (AuthScheme.NONE if external else config.auth_scheme)
    rules = {
        "embedded_only": external,
        "needs_auth": auth is AuthScheme.NONE,
        "hmac_only": auth is not AuthScheme.HMAC,
        "other_terminal": other is None,
    }
    for tag, applies in rules.items():
        if applies and node.get_closest_marker(tag) is not None:
            return f"@{tag}: {TAGS[tag]}"
    return None


# -- Given --------------------------------------------------------------------------------------------


@given("a fresh card")
def fresh_card(driver: Driver) -> None:
    """A virtual card registered at KCI that no other scenario has used."""
    driver.new_card()


@given("another fresh card")
def another_card(driver: Driver) -> None:
    """A second card; it becomes the current card, the first stays touched (and reconciled)."""
    driver.new_card()


@given(parsers.re(rf"the frontend has done every step before {POINT}"))
def done_before(driver: Driver, point: str) -> None:
    """Run the top-up (card-check, pending, update, confirm) up to that call, each step succeeding."""
    driver.run_until(*parse_point(point))


@given(parsers.parse("the top-up amount is {amount}"), converters={"amount": rupiah})
def amount_is(driver: Driver, amount: int) -> None:
    """The amount the step-by-step flow reserves at pending."""
    driver.state.amount = amount


@given(parsers.parse("the card was topped up with {amount}"), converters={"amount": rupiah})
def topped_up(driver: Driver, amount: int) -> None:
    """A whole successful top-up through the terminal library."""
    result = driver.topup(amount)
    assert result.ok, f"{result.failed_step}: {result.code} {result.message}"


@given(parsers.re(rf"the card leaves the field (?P<when>before|after) the command of {POINT}"))
@when(parsers.re(rf"the card leaves the field (?P<when>before|after) the command of {POINT}"))
def card_leaves(driver: Driver, when: str, point: str) -> None:
    """Arm a removal on the card: before the command runs ("before") or after, losing its answer."""
    kinds = {"before": FaultKind.NO_ANSWER, "after": FaultKind.LOSE_ANSWER}
    driver.card.faults.add(Fault(kinds[when], nth=CARD_COMMANDS.index(point) + 1))


@given(parsers.re(r"KCI answers (?P<operation>[a-z/-]+)(?: step (?P<kci_step>[1-7]))? with a fault (?P<kind>.+)"))
def kci_fault_given(driver: Driver, operation: str, kci_step: str | None, kind: str) -> None:
    """A fault at the simulator on the first matching KCI call for this card (see :func:`kci_fault`)."""
    kci_fault(driver, operation, kind, int(kci_step) if kci_step else None)


def kci_fault(driver: Driver, operation: str, kind: str, step: int | None) -> None:
    """``kind``: "delay past the timeout", "hang", "http500", "reset", "empty", "error 432", and
    "reset after" (KCI does the work, then the connection drops)."""
    fault: dict[str, Any] = {"operation": operation, "nth": 1}
    if step is not None:
        fault["step"] = step
    words = kind.split()
    if kind == "delay past the timeout":
        fault |= {"kind": "delay", "delay_ms": int((driver.kci_timeout + 0.5) * 1000)}
    elif words[0] == "error":
        fault |= {"kind": "error", "code": int(words[1])}
    else:
        fault["kind"] = words[0]
    if words[-1] == "after":
        fault["phase"] = "after"
    driver.add_fault(**fault)


# -- When ---------------------------------------------------------------------------------------------


@when(parsers.re(rf"the frontend sends {POINT} without (?P<param>\w+)"))
def send_without(driver: Driver, point: str, param: str) -> None:
    """That step's correct request with one parameter left out."""
    driver.step(*parse_point(point), omit=param)


@when(parsers.re(rf'the frontend sends {POINT} with (?P<param>\w+) set to "(?P<value>[^"]*)"'))
def send_with(driver: Driver, point: str, param: str, value: str) -> None:
    """That step's correct request with one parameter replaced (money and steps are sent as numbers)."""
    numeric = param in NUMBERS and value.lstrip("-").isdigit()
    driver.step(*parse_point(point), changes={param: int(value) if numeric else value})


@given(parsers.re(rf"the frontend sends {POINT}"))
@when(parsers.re(rf"the frontend sends {POINT}"))
def send_step(driver: Driver, point: str) -> None:
    """That step's request built from the answers so far; a card command in the answer is run."""
    driver.step(*parse_point(point))


@when("the frontend checks the card")
def check_card(driver: Driver) -> None:
    """card-check 1, 2 and 3, each of which must succeed."""
    driver.state.done.clear()
    driver.run_until(Endpoint.PENDING, None)


@given(parsers.parse("the terminal tops up {amount}"), converters={"amount": rupiah})
@when(parsers.parse("the terminal tops up {amount}"), converters={"amount": rupiah})
def terminal_topup(driver: Driver, amount: int) -> None:
    """A whole top-up through the terminal library (as a frontend runs it)."""
    driver.topup(amount)


@when(
    parsers.parse("the card is put back and the frontend completes the top-up of {amount}"),
    converters={"amount": rupiah},
)
@when(parsers.parse("the frontend completes the top-up of {amount}"), converters={"amount": rupiah})
def complete_topup(driver: Driver, amount: int) -> None:
    """Finish an interrupted top-up: confirm again when loaded, else run the top-up again (resumption)."""
    driver.clear_faults()
    driver.put_card_back()
    driver.complete(amount)


# -- Then ---------------------------------------------------------------------------------------------


def _last(driver: Driver) -> str:
    last = driver.last
    return "no answer yet" if last is None else f"code {last.code} ({last.message!r}), data {last.data}"


@then(parsers.parse("the answer is code {code:d} naming {param}"))
def answer_code_naming(driver: Driver, code: int, param: str) -> None:
    """The envelope's code, and the message names the parameter."""
    assert driver.last is not None and driver.last.code == code, _last(driver)
    assert param in driver.last.message, f"the message does not name {param!r}: {driver.last.message!r}"


@then(parsers.parse("the answer is code {code:d}"))
def answer_code(driver: Driver, code: int) -> None:
    """The envelope's ``response.code`` of the last answer."""
    assert driver.last is not None and driver.last.code == code, _last(driver)


@then("the answer is a success")
def answer_ok(driver: Driver) -> None:
    """``response.code`` 200."""
    answer_code(driver, 200)


def _result(driver: Driver) -> TopupResult:
    assert driver.results, "no top-up was run"
    return driver.results[-1]


def _describe(result: TopupResult) -> str:
    return f"{result.outcome.value} at {result.failed_step}: code {result.code} {result.message}"


@then("the top-up succeeds")
def topup_succeeds(driver: Driver) -> None:
    """The last top-up ended with a confirmed SUCCESS."""
    result = _result(driver)
    assert result.outcome is Outcome.SUCCESS, _describe(result)


@then(parsers.parse("the top-up ends with code {code:d}"))
def topup_ends(driver: Driver, code: int) -> None:
    """200: success; otherwise refused with that code before anything was written."""
    result = _result(driver)
    if code == 200:
        assert result.outcome is Outcome.SUCCESS, _describe(result)
    else:
        assert (result.outcome, result.code) == (Outcome.FAILED, code), _describe(result)


@then(parsers.re(rf"the top-up stops at {POINT} with code (?P<code>\d+)"), converters={"code": int})
def topup_stops(driver: Driver, point: str, code: int) -> None:
    """The backend refused that call with that code (the outcome may be failed, suspect or unconfirmed)."""
    result = _result(driver)
    assert (result.failed_step, result.code) == (point, code), _describe(result)
    assert result.outcome is not Outcome.SUCCESS


@given(parsers.re(rf"the top-up stops at {POINT} because the card left"))
@then(parsers.re(rf"the top-up stops at {POINT} because the card left"))
def topup_card_left(driver: Driver, point: str) -> None:
    """The card did not answer that call's command."""
    result = _result(driver)
    assert result.failed_step == point, _describe(result)
    assert result.outcome in (Outcome.CARD_REMOVED, Outcome.SUSPECT), _describe(result)


@then(parsers.parse("the card's balance has grown by {amount}"), converters={"amount": rupiah})
def grown_by(driver: Driver, amount: int) -> None:
    """The card's purse (on the virtual card itself) against its balance when the scenario took it."""
    assert driver.grown_by() == amount, f"grew by {driver.grown_by()}, expected {amount}"


@then("the card's balance is unchanged")
def unchanged(driver: Driver) -> None:
    """Nothing was loaded on the card."""
    assert driver.grown_by() == 0, f"the card grew by {driver.grown_by()}"


@then(parsers.parse("KCI counts {count:d} successful top-up of the card"))
@then(parsers.parse("KCI counts {count:d} successful top-ups of the card"))
def kci_successes(driver: Driver, count: int) -> None:
    """Reservations of the card that KCI holds as SUCCESS, and loads in its ledger."""
    done = [r for r in driver.reservations() if r.get("status") == "SUCCESS"]
    assert len(done) == count, f"KCI holds {len(done)} successful reservations: {done}"


@then("no money was created or lost")
def money_holds(driver: Driver) -> None:
    """The simulator's reconciliation of every card of the scenario, now (it runs again at the end)."""
    report = driver.reconcile()
    assert report["ok"], report["findings"]
