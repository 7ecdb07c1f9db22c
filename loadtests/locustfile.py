"""Locust users that play KMT frontends, each with a virtual card of its own.

    locust -f loadtests/locustfile.py --headless -u 20 -r 5 -t 60s            # embedded stack, started here
    locust -f loadtests/locustfile.py --kmt-stack-info stack.json ...          # a running stack_server
    locust -f loadtests/locustfile.py -H http://backend:8080 --kmt-admin-url http://kci:8090/__admin \\
        --kmt-auth bearer --kmt-secret KEY ...                                  # your backend, our KCI

One task = one top-up through :func:`terminal.flow.topup` (the protocol lives there once), driven by a
:class:`~terminal.terminal.TopupTerminal` whose transport is the user's FastHttp client: every backend
call is a Locust request named by its step (``card-check 1`` ... ``update 7``, ``confirm``), failed when
``response.code`` is not 200 (which also ends the top-up), and the whole top-up is one more event
(``TOPUP topup``). Card commands run on a :class:`~virtual_card.card.KmtCard` in this process through
:class:`~terminal.readers.InProcessReader`.

Cards: user n of worker w gets card index ``w * --kmt-block-size + n`` of seed ``--kmt-seed``, registered
in the KCI simulator over its admin API when the user starts, so no two users share a card.

At the end of a run (``test_stopping`` on the master): each worker stops its users, resumes any top-up
left suspect or unconfirmed, and sends the master its remaining samples and its cards' balances
(custom message ``kmt_final``); samples also travel with every ``report_to_master``. The master then
reconciles all cards through the simulator (the money invariant), writes the reports
(:mod:`loadtests.report`), checks the SLO file and sets the exit status: 3 when an SLO is broken, 4
when the money invariant is (or cannot be checked), 0 when an SLO file is given and met.
"""

from __future__ import annotations

import json
import logging
import math
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests.admin_http import AdminHttp
from loadtests.errors import CardBlockExhausted, LoadTestError, StackInfoError
from loadtests.report import summary_table, write_reports
from loadtests.shapes import shape_from_env
from loadtests.slo import Slo
from loadtests.stats import TOPUP, StepSamples
from terminal.api import ApiRequest
from terminal.errors import BackendUnreachable, ProtocolViolation
from terminal.flow import Outcome, TopupResult
from terminal.readers import InProcessReader
from terminal.terminal import Auth, AuthScheme, HttpTransport, TopupTerminal
from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image

log = logging.getLogger("loadtests")

EXIT_SLO_BREACH = 3
EXIT_MONEY = 4
MONEY_AT_RISK = (Outcome.SUSPECT, Outcome.UNCONFIRMED)
FINISH_TIMEOUT = 60.0
"""Seconds the master waits for the workers' final reports."""


class TopupFailed(Exception):  # noqa: N818 - named after the event, shown in Locust's failure table
    """A top-up that did not end in SUCCESS: the step, the code and the message."""


def listen(hook: Any, handler: Callable[..., None]) -> None:
    """``hook.add_listener(handler)``; Locust's EventHook is untyped, the handlers here are not."""
    hook.add_listener(handler)


# -- command line ---------------------------------------------------------------------------------


def _add_options(parser: Any) -> None:
    group = parser  # Locust's own parser: groups do not take include_in_web_ui/is_secret
    group.add_argument("--kmt-stack-info", default="", help="JSON line of `python -m loadtests.stack_server`")
    group.add_argument("--kmt-admin-url", default="", help="KCI simulator admin API (seeds cards, reconciles)")
    group.add_argument("--kmt-auth", default="", choices=["", "none", "bearer", "hmac"], help="backend auth")
    group.add_argument("--kmt-key-id", default="", help="HMAC key id")
    group.add_argument("--kmt-secret", default="", is_secret=True, help="bearer API key or HMAC secret")
    group.add_argument("--kmt-tid", default="T0000001", help="terminal id")
    group.add_argument("--kmt-mid", default="M0000001", help="merchant id")
    group.add_argument("--kmt-seed", type=int, default=0, help="card seed (0: the stack's, or random)")
    group.add_argument("--kmt-block-size", type=int, default=100_000, help="card indexes per worker")
    group.add_argument("--kmt-card-balance", type=int, default=50_000, help="balance of each new card (rupiah)")
    group.add_argument("--kmt-amount", type=int, default=10_000, help="top-up amount (rupiah)")
    group.add_argument("--kmt-pacing", type=float, default=0.0, help="seconds between a user's top-up starts")
    group.add_argument("--kmt-report-dir", default="kmt-load-report", help="where the reports go")
    group.add_argument("--kmt-slo", default="", help="SLO file (TOML or JSON); a breach exits with 3")


# -- per-process state ----------------------------------------------------------------------------


@dataclass(slots=True)
class Settings:
    admin_url: str
    auth: Auth
    tid: str
    mid: str
    seed: int
    block_size: int
    card_balance: int
    amount: int
    pacing: float
    report_dir: Path
    slo: str

    @classmethod
    def from_options(cls, options: Any) -> Settings:
        scheme = AuthScheme(options.kmt_auth or "none")
        return cls(
            options.kmt_admin_url,
            Auth(scheme, options.kmt_key_id, options.kmt_secret),
            options.kmt_tid,
            options.kmt_mid,
            options.kmt_seed,
            options.kmt_block_size,
            options.kmt_card_balance,
            options.kmt_amount,
            options.kmt_pacing,
            Path(options.kmt_report_dir),
            options.kmt_slo,
        )


@dataclass(slots=True)
class LoadRun:
    """What one Locust process knows about the run; hangs off the Environment (no module state)."""

    env: Environment
    samples: StepSamples = field(default_factory=StepSamples)
    cards: dict[str, KmtCard] = field(default_factory=dict)
    at_risk: dict[str, int] = field(default_factory=dict)
    """Cards whose last top-up left money in doubt (suspect/unconfirmed/interrupted) -> its amount."""
    users_started: int = 0
    finals: dict[str, dict[str, Any]] = field(default_factory=dict)
    stack: subprocess.Popen[str] | None = None

    @property
    def settings(self) -> Settings:
        return Settings.from_options(self.env.parsed_options)

    def reset(self) -> None:
        self.samples = StepSamples()
        self.cards = {}
        self.at_risk = {}
        self.finals = {}

    # cards

    def new_card(self) -> KmtCard:
        settings = self.settings
        worker = max(0, getattr(self.env.runner, "worker_index", 0))
        n = self.users_started
        if n >= settings.block_size:
            raise CardBlockExhausted(
                f"worker {worker} started {n + 1} users but --kmt-block-size is {settings.block_size}"
            )
        self.users_started += 1
        image = make_card_image(settings.seed, worker * settings.block_size + n, balance=settings.card_balance)
        if settings.admin_url:
            AdminHttp(settings.admin_url).seed_cards(
                [{"card_no": image.card_no, "idm": bytes(image.idm).hex(), "balance": image.issued_balance}]
            )
        card = KmtCard(image)
        self.cards[card.card_no] = card
        return card

    def card_reports(self) -> list[dict[str, Any]]:
        return [
            {"card_no": c.card_no, "balance": c.balance, "fares": c.image().fares_total} for c in self.cards.values()
        ]

    def resume_at_risk(self) -> list[dict[str, Any]]:
        """Run interrupted top-ups to their end (the seed's frontend duty); outside Locust's statistics."""
        settings = self.settings
        done: list[dict[str, Any]] = []
        for card_no, amount in list(self.at_risk.items()):
            card = self.cards[card_no]
            terminal = TopupTerminal(
                HttpTransport(self.env.host or ""),
                InProcessReader(card),
                tid=settings.tid,
                mid=settings.mid,
                auth=settings.auth,
            )
            with terminal:
                result = terminal.topup(card_no, amount)
                for _ in range(2):
                    if result.outcome not in MONEY_AT_RISK:
                        break
                    result = terminal.topup(card_no, amount)
            if result.outcome not in MONEY_AT_RISK:
                del self.at_risk[card_no]
            done.append({"card_no": card_no, "outcome": result.outcome.value, "code": result.code})
        return done

    def finish_local(self) -> dict[str, Any]:
        """After this process's users stopped: resume, then hand over samples and card balances."""
        resumed = self.resume_at_risk()
        return {
            "samples": self.samples.drain(),
            "cards": self.card_reports(),
            "resumed": resumed,
            "unresolved": list(self.at_risk),
            "worker_index": getattr(self.env.runner, "worker_index", 0),
        }


def run_of(env: Environment) -> LoadRun:
    run = vars(env).get("kmt_run")
    if not isinstance(run, LoadRun):
        raise LoadTestError("loadtests.locustfile: the init event did not run for this environment")
    return run


# -- the user -------------------------------------------------------------------------------------


_DECODE = json.JSONDecoder().decode


class LocustTransport:
    """terminal.Transport over the FastHttp client: one Locust request per backend call, named by step."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def post(self, request: ApiRequest, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        with self.client.post(request.path, data=body, headers=headers, name=request.name, catch_response=True) as resp:
            if not resp.status_code:
                resp.failure(f"no answer: {resp.error}")
                raise BackendUnreachable(f"{request.name}: cannot reach the backend ({resp.error})")
            try:
                payload = _DECODE((resp.content or b"").decode())
            except ValueError:
                resp.failure(f"HTTP {resp.status_code}, body is not JSON")
                raise ProtocolViolation(f"{request.name}: HTTP {resp.status_code}, body is not JSON") from None
            envelope = payload.get("response") if isinstance(payload, dict) else None
            code = envelope.get("code") if isinstance(envelope, dict) else None
            if code == 200:
                resp.success()
            else:
                message = envelope.get("message", "") if isinstance(envelope, dict) else "no response envelope"
                resp.failure(f"code {code}: {message}")
            return resp.status_code, payload


class KmtFrontend(FastHttpUser):
    """A frontend with an NFC reader and its own virtual KMT card; one task = one top-up."""

    host = ""
    insecure = False

    def wait_time(self) -> float:
        pacing: float = self.environment.parsed_options.kmt_pacing
        if pacing <= 0:
            return 0.0
        return max(0.0, pacing - (time.monotonic() - self._task_started))

    def on_start(self) -> None:
        self.load_run = run_of(self.environment)
        settings = self.load_run.settings
        self.amount = settings.amount
        self.card = self.load_run.new_card()
        self.terminal = TopupTerminal(
            LocustTransport(self.client),
            InProcessReader(self.card),
            tid=settings.tid,
            mid=settings.mid,
            auth=settings.auth,
            max_calls=0,  # Locust's events carry every call; a terminal log would only grow
        )
        self._task_started = time.monotonic()

    @task
    def topup(self) -> None:
        self._task_started = time.monotonic()
        card_no = self.card.card_no
        self.load_run.at_risk.setdefault(card_no, self.amount)  # until the top-up ends cleanly
        start = time.perf_counter()
        result = self.terminal.topup(card_no, self.load_run.at_risk[card_no])
        elapsed = (time.perf_counter() - start) * 1000
        if result.outcome not in MONEY_AT_RISK:
            self.load_run.at_risk.pop(card_no, None)
        self.environment.events.request.fire(
            request_type="TOPUP",
            name=TOPUP,
            response_time=elapsed,
            response_length=0,
            response=None,
            context={"card_no": card_no},
            exception=None if result.ok else TopupFailed(_describe(result)),
        )


def _describe(result: TopupResult) -> str:
    where = f" at {result.failed_step}" if result.failed_step else ""
    code = f" code {result.code}" if result.code is not None else ""
    return f"{result.outcome.value}{where}{code}: {result.message}"[:200]


# -- events ---------------------------------------------------------------------------------------


def _on_init(environment: Environment, **_: Any) -> None:
    run = LoadRun(environment)
    vars(environment)["kmt_run"] = run
    runner = environment.runner
    options = environment.parsed_options

    def on_request(name: str, response_time: float, exception: BaseException | None = None, **__: Any) -> None:
        run.samples.add(name, response_time, time.time(), exception is not None)

    listen(environment.events.request, on_request)

    if isinstance(runner, WorkerRunner):

        def on_report(client_id: str, data: dict[str, Any]) -> None:
            data["kmt_samples"] = run.samples.drain()

        def on_finish(environment: Environment, msg: Any, **__: Any) -> None:
            runner.stop()
            runner.send_message("kmt_final", run.finish_local())

        listen(environment.events.report_to_master, on_report)
        listen(environment.events.test_start, lambda **__: run.reset())
        runner.register_message("kmt_finish", on_finish, concurrent=True)
        return

    if options is not None:
        _prepare(run, options)
    listen(environment.events.quitting, lambda **__: _stop_stack(run))
    listen(environment.events.test_start, lambda **__: run.reset())
    if isinstance(runner, MasterRunner):

        def on_worker_report(client_id: str, data: dict[str, Any]) -> None:
            if "kmt_samples" in data:
                run.samples.merge(data["kmt_samples"])

        def on_final(environment: Environment, msg: Any, **__: Any) -> None:
            run.finals[msg.node_id] = msg.data

        listen(environment.events.worker_report, on_worker_report)
        runner.register_message("kmt_final", on_final)
        listen(environment.events.test_stopping, lambda **__: _collect_finals(run))
    else:
        listen(environment.events.test_stop, lambda **__: _finals_local(run))
    listen(environment.events.test_stop, lambda **__: _conclude(run))


def _prepare(run: LoadRun, options: Any) -> None:
    """Master or standalone: find (or start) the stack, fix the seed, validate the SLO file early."""
    env = run.env
    if options.kmt_slo:
        Slo.load(Path(options.kmt_slo))
    info: dict[str, Any] | None = None
    if options.kmt_stack_info:
        try:
            info = json.loads(Path(options.kmt_stack_info).read_text(encoding="utf-8").strip().splitlines()[-1])
        except (OSError, ValueError, IndexError) as exc:
            raise StackInfoError(f"--kmt-stack-info {options.kmt_stack_info}: {exc}") from exc
    elif not (env.host or options.host):
        seed = options.kmt_seed or random.randrange(1000, 10_000)
        run.stack = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "loadtests.stack_server", "--seed", str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert run.stack.stdout is not None
        line = run.stack.stdout.readline()
        try:
            info = json.loads(line)
        except ValueError as exc:
            raise StackInfoError(f"the embedded stack did not start (it said {line!r})") from exc
        log.info("embedded stack: backend %s, KCI %s", info.get("backend_url"), info.get("kci_url"))
    if info is not None:
        try:
            env.host = options.host = info["backend_url"]
            options.kmt_admin_url = options.kmt_admin_url or info["kci_admin_url"]
            auth = info["auth"]
            if not options.kmt_auth:
                options.kmt_auth, options.kmt_key_id, options.kmt_secret = (
                    auth["scheme"],
                    auth["key_id"],
                    auth["secret"],
                )
            options.kmt_tid, options.kmt_mid = info["tid"], info["mid"]
            options.kmt_seed = options.kmt_seed or int(info["seed"])
        except (KeyError, TypeError) as exc:
            raise StackInfoError(f"stack info lacks {exc}") from exc
    if not options.kmt_seed:
        options.kmt_seed = random.randrange(1000, 10_000)  # fresh cards for an external KCI


def _stop_stack(run: LoadRun) -> None:
    if run.stack is not None and run.stack.poll() is None:
        assert run.stack.stdin is not None
        run.stack.stdin.close()
        try:
            run.stack.wait(10)
        except subprocess.TimeoutExpired:
            run.stack.terminate()
            run.stack.wait(5)
    run.stack = None


def _finals_local(run: LoadRun) -> None:
    run.finals["local"] = run.finish_local()


def _collect_finals(run: LoadRun) -> None:
    """Master: ask every worker to stop, resume and report; wait for all of them (or time out)."""
    runner = run.env.runner
    assert isinstance(runner, MasterRunner)
    workers = {c.id for c in runner.clients.all}
    run.finals.clear()
    runner.send_message("kmt_finish")
    deadline = time.monotonic() + FINISH_TIMEOUT + (run.env.stop_timeout or 0)
    while not workers <= set(run.finals) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    missing = workers - set(run.finals)
    if missing:
        log.error("no final report from worker(s) %s", ", ".join(sorted(missing)))
        run.finals["__missing__"] = {"missing": sorted(missing)}


def _conclude(run: LoadRun) -> None:
    """Merge what the workers sent, check the money invariant and the SLO, write reports, set the exit status."""
    env = run.env
    settings = run.settings
    cards: list[dict[str, Any]] = []
    unresolved: list[str] = []
    missing: list[str] = []
    resumed = 0
    per_worker: dict[str, int] = {}
    for node, final in run.finals.items():
        if node == "__missing__":
            missing = final["missing"]
            continue
        run.samples.merge(final["samples"])
        cards.extend(final["cards"])
        unresolved.extend(final["unresolved"])
        resumed += len(final["resumed"])
        per_worker[str(final["worker_index"])] = len(final["cards"])
    money: dict[str, Any] = {"checked": False, "ok": False, "cards": len(cards), "resumed": resumed}
    duplicates = len(cards) - len({c["card_no"] for c in cards})
    if missing:
        money["reason"] = f"no final report from {len(missing)} worker(s)"
    elif duplicates:
        money["reason"] = f"{duplicates} card(s) used by more than one user"
    elif not settings.admin_url:
        money["reason"] = "no --kmt-admin-url: cannot reconcile"
    elif cards:
        report = AdminHttp(settings.admin_url).reconcile(cards)
        errors = [f for f in report["findings"] if f.get("severity") == "error"]
        money.update(checked=True, ok=bool(report["ok"]) and not unresolved, findings=report["findings"][:50])
        if unresolved:
            money["reason"] = f"{len(unresolved)} card(s) still suspect after resuming: {unresolved[:5]}"
        elif errors:
            money["reason"] = f"{len(errors)} finding(s), e.g. {errors[0].get('message', errors[0])}"
    else:
        money.update(checked=True, ok=True, reason="no cards were used")

    slo_doc: dict[str, Any] | None = None
    breaches: list[str] = []
    if settings.slo:
        breaches = [str(b) for b in Slo.load(Path(settings.slo)).check(run.samples.summaries())]
        slo_doc = {"file": settings.slo, "ok": not breaches, "breaches": breaches}
    doc = write_reports(
        settings.report_dir,
        run.samples,
        extra={"money_invariant": money, "slo": slo_doc, "cards_per_worker": per_worker, "seed": settings.seed},
    )
    topups = doc["topups"]
    rate = topups["per_second"]
    lines = [
        "",
        summary_table(run.samples.summaries()),
        f"top-ups: {topups['succeeded']} succeeded, {topups['failed']} failed"
        + (f", {rate:.1f}/s" if rate is not None and not math.isnan(rate) else ""),
        "money invariant: "
        + ("holds" if money["ok"] else f"BROKEN or unchecked: {money.get('reason', '')}")
        + f" ({money['cards']} cards, {resumed} interrupted top-up(s) resumed)",
    ]
    if slo_doc is not None:
        lines.append("SLO: met" if not breaches else "SLO: BREACHED\n  " + "\n  ".join(breaches))
    lines.append(f"reports: {settings.report_dir}/ (steps.json, steps.csv, timeline.csv, summary.txt, latency.png)")
    print("\n".join(lines), file=sys.stderr, flush=True)
    if not money["ok"]:
        env.process_exit_code = EXIT_MONEY
    elif breaches:
        env.process_exit_code = EXIT_SLO_BREACH
    elif slo_doc is not None:
        env.process_exit_code = 0


listen(events.init_command_line_parser, _add_options)
listen(events.init, _on_init)

_shape = shape_from_env()
if _shape is not None:
    LoadShape = _shape  # Locust runs the first LoadTestShape class it finds in this module

__all__ = ["KmtFrontend", "LocustTransport"]
