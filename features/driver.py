"""The scenario driver: speaks the backend's API step by step so the Gherkin steps stay one-liners.

A :class:`Driver` lives for one scenario. It hands out fresh virtual cards (remembering each card it
touched, for the money check at the end), builds each step's request from what the previous answers
carried (``session_id``, ``sequence_data``, the card's answer), lets a step leave a parameter out or
replace it, sends requests with a chosen authentication, runs card commands on the virtual card, and
changes KCI's limits and faults through the simulator's admin API, undoing them afterwards.

Everything asynchronous (admin calls) goes through ``run``, the stack's runner (``kmt_run``).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from harness.pytest_plugin import CardPool
from harness.stack import Stack
from simulator.admin_client import AdminClient
from terminal.api import ApiRequest, ApiResponse, CardCommand, Confirmation, Endpoint
from terminal.flow import Outcome, TopupResult
from terminal.terminal import Auth, AuthScheme, TopupTerminal
from virtual_card.card import KmtCard
from virtual_card.frames import AuthReadResponse, ReadWithoutEncryptionResponse, parse_response
from virtual_card.profile import PurseBlock, encode_card_number
from virtual_card.types import CardNo

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, T]], T]

FLOW: tuple[tuple[Endpoint, int | None], ...] = (
    (Endpoint.CARD_CHECK, 1),
    (Endpoint.CARD_CHECK, 2),
    (Endpoint.CARD_CHECK, 3),
    (Endpoint.PENDING, None),
    *((Endpoint.UPDATE, n) for n in range(1, 8)),
    (Endpoint.CONFIRM, None),
)
"""Every backend call of one top-up, in order."""

CARD_COMMANDS = ("card-check 1", "card-check 2", "update 1", "update 2", "update 3", "update 4", "update 5", "update 6")
"""The backend calls whose answer carries a command for the card (update 5's is the write)."""


class ScenarioError(Exception):
    """A scenario used the driver in a way that cannot work (a programming error in a step)."""


def parse_point(text: str) -> tuple[Endpoint, int | None]:
    """``"update 5"`` -> (UPDATE, 5); ``"pending"`` -> (PENDING, None)."""
    name, _, step = text.strip().partition(" ")
    try:
        endpoint = Endpoint(name)
    except ValueError as exc:
        raise ScenarioError(f"unknown backend call {text!r}: one of card-check N, pending, update N, confirm") from exc
    point = (endpoint, int(step) if step else None)
    if point not in FLOW:
        raise ScenarioError(f"{text!r} is not a step of the top-up")
    return point


def point_name(endpoint: Endpoint, step: int | None) -> str:
    return endpoint.value if step is None else f"{endpoint.value} {step}"


@dataclass(frozen=True, slots=True)
class TerminalProfile:
    """Who a terminal is to the backend: tid, mid and credentials."""

    tid: str
    mid: str
    auth: Auth


@dataclass(slots=True)
class FlowState:
    """What the answers so far carried forward, as a frontend keeps it between calls."""

    session_id: str = ""
    sequence_data: str = ""
    command: bytes = b""
    answer: bytes = b""
    balance: int | None = None
    amount: int = 10_000
    last_balance: int | None = None
    done: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Sent:
    """One raw request as it went out (for replays) and its answer."""

    request: ApiRequest
    body: bytes
    headers: dict[str, str]
    response: ApiResponse


class Driver:
    """One scenario's view of the system under test (see the module docstring)."""

    def __init__(
        self,
        stack: Stack,
        run: Runner[Any],
        pool: CardPool,
        *,
        other_terminal: TerminalProfile | None,
        kci_timeout: float,
    ) -> None:
        self.stack = stack
        self.run = run
        self.pool = pool
        self.main = TerminalProfile(stack.tid, stack.mid, stack.auth)
        self.other = other_terminal
        self.kci_timeout = kci_timeout
        self.cards: list[KmtCard] = []
        self.issued: dict[str, int] = {}
        self.state = FlowState()
        self.previous_state = FlowState()
        self.last: ApiResponse | None = None
        self.sent: list[Sent] = []
        self.answers: list[ApiResponse] = []
        self.results: list[TopupResult] = []
        self._terminals: list[TopupTerminal] = []
        self._limits: dict[str, int] | None = None
        self._faults = False
        self._clock = 0.0
        self._merchant: dict[str, Any] | None = None

    # -- cards ------------------------------------------------------------------------------------

    @property
    def admin(self) -> AdminClient:
        return self.stack.require_admin()

    def new_card(self) -> KmtCard:
        """A virtual card no other scenario has used; it becomes the scenario's current card."""
        card = self.pool.take()
        self.cards.append(card)
        self.issued[card.card_no] = card.balance
        self.previous_state, self.state = self.state, FlowState()
        return card

    @property
    def card(self) -> KmtCard:
        if not self.cards:
            raise ScenarioError("the scenario has no card yet: start with 'Given a fresh card'")
        return self.cards[-1]

    def card_named(self, index: int) -> KmtCard:
        return self.cards[index]

    def grown_by(self, card: KmtCard | None = None) -> int:
        card = card or self.card
        return card.balance - self.issued[card.card_no]

    def put_card_back(self) -> None:
        self.stack.reader(self.card.card_no).insert(self.card)

    # -- terminals and raw requests ------------------------------------------------------------------

    def terminal(self, profile: TerminalProfile | None = None, card: KmtCard | None = None) -> TopupTerminal:
        profile = profile or self.main
        card = card or self.card
        terminal = TopupTerminal(
            self.stack.backend_url, self.stack.reader(card.card_no), tid=profile.tid, mid=profile.mid, auth=profile.auth
        )
        self._terminals.append(terminal)
        return terminal

    def other_profile(self) -> TerminalProfile:
        if self.other is None:
            raise ScenarioError("no second terminal configured (--kmt-other-terminal)")
        return self.other

    def wrong_auth(self) -> Auth:
        """The configured credentials with a wrong secret (same scheme and key id)."""
        auth = self.main.auth
        if auth.scheme is AuthScheme.NONE:
            raise ScenarioError("the backend is tested without credentials (--backend-auth)")
        return dataclasses.replace(auth, secret=auth.secret + "-wrong")

    def send(
        self,
        request: ApiRequest,
        *,
        auth: Auth | None = None,
        profile: TerminalProfile | None = None,
    ) -> ApiResponse:
        """Send one request as it is; the answer becomes ``last``."""
        profile = profile or self.main
        terminal = self.terminal(profile)
        body = json.dumps(request.body, separators=(",", ":")).encode()
        headers = (auth or profile.auth).headers("POST", request.path, body)
        return self._post(terminal, request, body, headers)

    def _post(self, terminal: TopupTerminal, request: ApiRequest, body: bytes, headers: dict[str, str]) -> ApiResponse:
        status, payload = terminal.transport.post(request, body, headers)
        response = ApiResponse.parse(status, payload, request.name)
        self.sent.append(Sent(request, body, headers, response))
        self.last = response
        self.answers.append(response)
        return response

    def replay_last(self) -> ApiResponse:
        """Send the last request again byte for byte, headers (signature, nonce) included."""
        if not self.sent:
            raise ScenarioError("nothing was sent yet")
        first = self.sent[-1]
        return self._post(self.terminal(), first.request, first.body, first.headers)

    # -- the protocol step by step --------------------------------------------------------------------

    def body(self, endpoint: Endpoint, step: int | None, profile: TerminalProfile | None = None) -> dict[str, Any]:
        """The request of that step built from the scenario's state, as a correct frontend sends it."""
        profile = profile or self.main
        s = self.state
        body: dict[str, Any] = {"card_no": self.card.card_no, "tid": profile.tid, "mid": profile.mid}
        if endpoint is Endpoint.CARD_CHECK:
            body["step"] = step
            if step and step >= 2:
                body |= {"card_resp": s.answer.hex(), "session_id": s.session_id}
            if step == 3:
                body["sequence_data"] = s.sequence_data
        elif endpoint is Endpoint.PENDING:
            body["amount"] = s.amount
        elif endpoint is Endpoint.UPDATE:
            body["step"] = step
            balance = s.balance if s.balance is not None else self.card.balance
            if step == 1:
                body["prev_balance"] = balance
            else:
                body |= {"balance": balance, "card_resp": s.answer.hex(), "session_id": s.session_id}
                if step and step >= 3:
                    body["sequence_data"] = s.sequence_data
        else:
            last = s.last_balance if s.last_balance is not None else self.card.balance
            body |= {"last_balance": last, "session_id": s.session_id}
        return body

    def step(
        self,
        endpoint: Endpoint,
        step: int | None,
        *,
        omit: str | None = None,
        changes: dict[str, Any] | None = None,
        auth: Auth | None = None,
        profile: TerminalProfile | None = None,
        run_command: bool = True,
    ) -> ApiResponse:
        """Send one step (optionally without ``omit`` or with ``changes``); on success carry its data
        forward and run its card command on the card."""
        body = self.body(endpoint, step, profile)
        if omit is not None:
            if omit not in body:
                raise ScenarioError(f"{point_name(endpoint, step)} has no parameter {omit!r}")
            del body[omit]
        body |= changes or {}
        response = self.send(ApiRequest(endpoint, body, step), auth=auth, profile=profile)
        if response.ok:
            self.absorb(endpoint, step, response, run_command=run_command)
        return response

    def absorb(self, endpoint: Endpoint, step: int | None, response: ApiResponse, *, run_command: bool = True) -> None:
        """Keep what a successful answer carries; run its card command."""
        name = point_name(endpoint, step)
        self.state.done.append(name)
        nested = response.data.get("data")
        if isinstance(nested, dict) and nested.get("command"):
            cmd = CardCommand.from_response(response, name)
            self.state.session_id, self.state.sequence_data, self.state.command = (
                cmd.session_id,
                cmd.sequence_data,
                cmd.command,
            )
            if run_command:
                self.run_command()
        if endpoint is Endpoint.CARD_CHECK and step == 3:
            info = response.data.get("card_info_data") or {}
            self.state.balance = int(str(info.get("balance")))
        if endpoint is Endpoint.UPDATE and step == 7:
            self.state.last_balance = int(response.data["balance"])

    def run_command(self) -> bytes:
        """Run the last command on the current card through its reader; keep the answer."""
        self.state.answer = self.stack.reader(self.card.card_no).transceive(self.state.command)
        return self.state.answer

    def run_until(self, endpoint: Endpoint, step: int | None, *, profile: TerminalProfile | None = None) -> None:
        """Do every step of a top-up before that one, each of which must succeed."""
        for point in FLOW:
            if point == (endpoint, step):
                return
            if point_name(*point) in self.state.done:
                continue
            response = self.step(*point, profile=profile)
            if not response.ok:
                raise AssertionError(f"{point_name(*point)} failed: {response.code} {response.message}")
        if endpoint is not Endpoint.CONFIRM or step is not None:
            raise ScenarioError(f"{point_name(endpoint, step)} is not a step of the top-up")

    def finish(self, *, profile: TerminalProfile | None = None) -> None:
        """Do the remaining steps of the top-up up to and including confirm."""
        self.run_until(Endpoint.CONFIRM, None, profile=profile)
        response = self.step(Endpoint.CONFIRM, None, profile=profile)
        if not response.ok:
            raise AssertionError(f"confirm failed: {response.code} {response.message}")

    # -- forged card answers (through virtual_card's codec) --------------------------------------------

    def forge_card_number(self, other: KmtCard) -> str:
        """The card-check read answer with another card's number in block 300B#0."""
        read = parse_response(self.state.answer, ReadWithoutEncryptionResponse)
        blocks = (encode_card_number(CardNo(other.card_no)), *read.blocks[1:])
        return dataclasses.replace(read, blocks=blocks).to_bytes().hex()

    def forge_purse_balance(self, extra: int) -> str:
        """The authenticated purse read with ``extra`` rupiah more in the purse and the card's MAC kept."""
        read = parse_response(self.state.answer, AuthReadResponse)
        purse = PurseBlock.from_bytes(read.blocks[0])
        forged = PurseBlock(purse.balance + extra, purse.last_amount, purse.counter).to_bytes()
        return dataclasses.replace(read, blocks=(forged, *read.blocks[1:])).to_bytes().hex()

    # -- whole top-ups through the terminal library --------------------------------------------------

    def topup(self, amount: int, profile: TerminalProfile | None = None) -> TopupResult:
        result = self.terminal(profile).topup(self.card.card_no, amount)
        self.results.append(result)
        return result

    def complete(self, amount: int) -> TopupResult:
        """Finish an interrupted top-up as a frontend must.

        Loaded but unconfirmed: confirm again. Update 7 unanswered after the card answered update 6's
        read (KCI may have verified the load): confirm the session with the card's balance, and only
        if KCI says the load is not finished, resume. Anything else: run the top-up again (pending
        returns the open reservation, update recovers it).
        """
        last = self.results[-1] if self.results else None
        if last is not None and last.outcome is Outcome.UNCONFIRMED and last.progress.update is not None:
            update = last.progress.update
            if self._confirm(last, update.session_id, update.balance).ok:
                return last
            raise AssertionError(f"confirming the loaded top-up again failed: {self.last}")
        if (
            last is not None
            and last.outcome is Outcome.SUSPECT
            and last.failed_step == "update 7"
            and last.progress.session_id
            and self._confirm(last, last.progress.session_id, self.card.balance).ok
        ):
            return last
        return self.topup(amount)

    def _confirm(self, result: TopupResult, session_id: str, last_balance: int) -> ApiResponse:
        """Confirm ``result``'s session; on success the result becomes a confirmed SUCCESS."""
        body = {"card_no": result.card_no, "tid": self.main.tid, "mid": self.main.mid}
        response = self.send(
            ApiRequest(Endpoint.CONFIRM, body | {"last_balance": last_balance, "session_id": session_id})
        )
        if response.ok:
            result.progress.confirmation = Confirmation.from_response(response)
            result.outcome, result.failed_step, result.code, result.message = Outcome.SUCCESS, None, None, ""
        return response

    def topups_in_parallel(self, amounts: list[int], profiles: list[TerminalProfile]) -> list[TopupResult]:
        """Several terminals start a top-up of the same card at the same moment."""
        terminals = [self.terminal(p) for p in profiles]
        results: list[TopupResult | None] = [None] * len(amounts)
        barrier = threading.Barrier(len(amounts))

        def go(i: int) -> None:
            barrier.wait()
            results[i] = terminals[i].topup(self.card.card_no, amounts[i])

        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(amounts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        done = [r for r in results if r is not None]
        if len(done) != len(amounts):
            raise AssertionError("a parallel top-up did not finish within 60 s")
        self.results.extend(done)
        return done

    # -- KCI: limits, faults, clock, records ---------------------------------------------------------

    def limits(self) -> dict[str, int]:
        result: dict[str, int] = self.run(self.admin.limits())
        return result

    def set_limits(self, **changes: int) -> None:
        if self._limits is None:
            self._limits = self.limits()
        self.run(self.admin.limits(**changes))

    def set_merchant_active(self, active: bool) -> None:
        """Mark this terminal's merchant (in)active at KCI; put back after the scenario."""
        merchants: list[dict[str, Any]] = self.run(self.admin.request("GET", "merchants"))
        merchant = next(m for m in merchants if m["mid"] == self.main.mid)
        if self._merchant is None:
            self._merchant = dict(merchant)
        self.run(self.admin.seed(merchants=[merchant | {"active": active}]))

    def add_fault(self, **fault: Any) -> None:
        self._faults = True
        self.run(self.admin.add_fault(card_no=self.card.card_no, **fault))

    def clear_faults(self) -> None:
        if self._faults:
            self.run(self.admin.clear_faults())
            self._faults = False

    def advance_clock(self, seconds: float) -> None:
        self._clock += seconds
        self.run(self.admin.advance_clock(seconds))

    def set_card(self, **changes: Any) -> None:
        self.run(self.admin.set_card(self.card.card_no, **changes))

    def reservations(self, card: KmtCard | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.run(self.admin.reservations((card or self.card).card_no))
        return result

    def ledger(self, card: KmtCard | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.run(self.admin.ledger((card or self.card).card_no))
        return result

    def reconcile(self) -> dict[str, Any]:
        return self.stack_reconcile([c.card_no for c in self.cards])

    def stack_reconcile(self, card_nos: list[str]) -> dict[str, Any]:
        result: dict[str, Any] = self.run(self.stack.reconcile(card_nos))
        return result

    # -- end of scenario -------------------------------------------------------------------------------

    def settle(self) -> None:
        """Finish, as the card's next frontend would, any load the scenario left in progress at KCI
        (a write issued, its outcome not verified), so the money check judges a settled card."""
        self.clear_faults()
        for card in self.cards:
            if not any(r.get("status") == "IN_PROGRESS" for r in self.reservations(card)):
                continue
            self.stack.reader(card.card_no).insert(card)
            result = self.terminal(card=card).topup(card.card_no, self.state.amount)
            if result.outcome not in (Outcome.SUCCESS, Outcome.FAILED):
                raise AssertionError(f"resuming the load left in progress on {card.card_no}: {result.message}")

    def close(self) -> None:
        """Undo what the scenario changed at KCI and close its terminals."""
        try:
            self.clear_faults()
            if self._limits is not None:
                self.run(self.admin.limits(**self._limits))
                self._limits = None
            if self._merchant is not None:
                self.run(self.admin.seed(merchants=[self._merchant]))
                self._merchant = None
            if self._clock:
                self.run(self.admin.advance_clock(-self._clock))
                self._clock = 0.0
            for card in self.cards:
                reader = self.stack.reader(card.card_no)
                if reader.card is None:
                    reader.insert(card)
        finally:
            for terminal in self._terminals:
                terminal.close()
            self._terminals.clear()
