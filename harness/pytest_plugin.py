"""pytest plugin of kmt-harness (entry point ``kmt_harness``): the stack, cards and terminals as fixtures.

Installed with the package, so any project can ``pip install kmt-harness`` and write::

    def test_topup(kmt_card, kmt_terminal, kmt_reconcile):
        result = kmt_terminal(kmt_card.card_no).topup(kmt_card.card_no, 10_000)
        assert result.ok
        assert kmt_reconcile([kmt_card.card_no])["ok"]

By default the fixtures start the embedded stack (KCI simulator + reference backend, loopback,
ephemeral ports) once per session. ``--backend-url`` tests another backend instead; it must use a
KCI simulator whose admin API the suite can reach (``--kci-url``/``--kci-admin-url``), where the
session registers its virtual cards.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from terminal.terminal import Auth, AuthScheme, TopupTerminal
from virtual_card.card import KmtCard

from .errors import HarnessError
from .stack import Stack, StackConfig, SyncStack

T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kmt", "kmt-harness: the system under test")
    group.addoption("--backend-url", default=None, help="backend to test (default: the embedded reference backend)")
    group.addoption("--kci-url", default=None, help="root URL of the KCI simulator the backend uses")
    group.addoption("--kci-admin-url", default=None, help="that simulator's admin API (default: KCI URL + /__admin)")
    group.addoption("--kci-partner-id", default=None, help="partner id at an external KCI (embedded backend only)")
    group.addoption("--kci-partner-secret", default=None, help="partner secret at an external KCI")
    group.addoption("--backend-auth", default=None, choices=["none", "bearer", "hmac"], help="auth scheme")
    group.addoption("--backend-api-key", default=None, help="bearer API key or HMAC secret of the terminal")
    group.addoption("--backend-key-id", default=None, help="HMAC key id of the terminal")
    group.addoption(
        "--backend-header", action="append", default=[], metavar="NAME:VALUE", help="extra header on every request"
    )
    group.addoption("--kmt-tid", default="T0000001", help="terminal id the suite uses (default T0000001)")
    group.addoption("--kmt-mid", default="M0000001", help="merchant id the suite uses (default M0000001)")
    group.addoption("--kmt-seed", type=int, default=1, help="seed of the virtual cards (default 1)")
    group.addoption("--kmt-cards", type=int, default=300, help="virtual cards registered per session (default 300)")
    group.addoption("--kmt-balance", type=int, default=50_000, help="balance of each virtual card at issue")


def config_from_options(config: pytest.Config) -> StackConfig:
    opt = config.getoption
    extra: dict[str, str] = {}
    for header in opt("--backend-header"):
        name, sep, value = str(header).partition(":")
        if not sep:
            raise pytest.UsageError(f"--backend-header {header!r}: expected NAME:VALUE")
        extra[name.strip()] = value.strip()
    auth: Auth | None = None
    if opt("--backend-auth") or extra:
        scheme = AuthScheme(opt("--backend-auth") or "none")
        auth = Auth(scheme, opt("--backend-key-id") or "", opt("--backend-api-key") or "", extra)
    return StackConfig(
        seed=opt("--kmt-seed"),
        cards=opt("--kmt-cards"),
        card_balance=opt("--kmt-balance"),
        backend_url=opt("--backend-url"),
        kci_url=opt("--kci-url"),
        kci_admin_url=opt("--kci-admin-url"),
        kci_partner_id=opt("--kci-partner-id"),
        kci_partner_secret=opt("--kci-partner-secret"),
        tid=opt("--kmt-tid"),
        mid=opt("--kmt-mid"),
        auth=auth,
    )


class CardPool:
    """Hands out each virtual card of the session once, so tests never share a card by accident."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._next = itertools.count()
        self._lock = threading.Lock()

    def take(self) -> KmtCard:
        with self._lock:
            index = next(self._next)
        numbers = self._stack.card_nos
        if index >= len(numbers):
            raise HarnessError(f"all {len(numbers)} virtual cards are used: raise --kmt-cards")
        return self._stack.card(numbers[index])


@pytest.fixture(scope="session")
def kmt_stack_config(pytestconfig: pytest.Config) -> StackConfig:
    """The stack the command line asks for."""
    return config_from_options(pytestconfig)


@pytest.fixture(scope="session")
def kmt_sync_stack(kmt_stack_config: StackConfig) -> Iterator[SyncStack]:
    """The running stack of this session with its event loop (``kmt_sync_stack.run(coro)``)."""
    sync = SyncStack(kmt_stack_config)
    with sync:
        yield sync


@pytest.fixture(scope="session")
def kmt_stack(kmt_sync_stack: SyncStack) -> Stack:
    """URLs, credentials, virtual cards and the simulator's admin client of this session."""
    assert kmt_sync_stack.stack is not None
    return kmt_sync_stack.stack


@pytest.fixture(scope="session")
def kmt_card_pool(kmt_stack: Stack) -> CardPool:
    return CardPool(kmt_stack)


@pytest.fixture
def kmt_card(kmt_card_pool: CardPool) -> KmtCard:
    """A virtual card no other test of this session has used."""
    return kmt_card_pool.take()


@pytest.fixture
def kmt_run(kmt_sync_stack: SyncStack) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a coroutine (e.g. an admin call) on the stack's loop and return its result."""
    return kmt_sync_stack.run


@pytest.fixture
def kmt_terminal(kmt_stack: Stack) -> Iterator[Callable[..., TopupTerminal]]:
    """``kmt_terminal(card_no, **options)``: a terminal in front of that card's reader; closed afterwards."""
    made: list[TopupTerminal] = []

    def make(card_no: str, **kwargs: Any) -> TopupTerminal:
        terminal = kmt_stack.terminal(card_no, **kwargs)
        made.append(terminal)
        return terminal

    yield make
    for terminal in made:
        terminal.close()


@pytest.fixture
def kmt_reconcile(kmt_stack: Stack, kmt_sync_stack: SyncStack) -> Callable[[list[str]], dict[str, Any]]:
    """``kmt_reconcile(card_nos)``: the simulator's money-invariant report for those cards."""

    def reconcile(card_nos: list[str]) -> dict[str, Any]:
        return kmt_sync_stack.run(kmt_stack.reconcile(card_nos))

    return reconcile
