"""Reference backend throughput and per-step latency on loopback, beside the KCI simulator alone.

Both runs drive the same flow with in-process virtual cards, one frontend at a time and then several
at once: through the backend with the terminal library (12 calls: card-check 1-3, pending, update 1-7,
confirm) and directly against KCI (card-info 1-3, reservation check/validate/create, load-balance 1-7,
confirm; signed with the same partner credentials). Prints top-ups/s and the median latency of each step, with ratios.
Simulator, backend (SQLite file, synchronous=FULL) and client share one process and one event loop, so
the figures compare costs on one core rather than what separate processes would reach.

    .venv/bin/python -P bench/backend.py [--topups N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# This file is named like the package it measures: drop its own folder from the path so that
# ``import backend`` finds the package, not this script.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import aiohttp

from backend.app import run_backend
from backend.config import BackendConfig, TerminalCredential
from backend.kci_client import KciClient
from simulator.app import run_simulator
from simulator.config import Config
from terminal.readers import InProcessReader
from terminal.terminal import AsyncTopupTerminal, Auth
from virtual_card.card import KmtCard
from virtual_card.factory import DEFAULT_MASTER_KEY, make_card_image

SEED = 99
BALANCE = 50_000
AMOUNT = 10_000
TERMINAL = TerminalCredential("bench-01", "T0000001", "M0000001", "bench-terminal-secret-01")

Timings = dict[str, list[float]]
Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def run_card(card: KmtCard, command: str) -> str:
    answer = card.handle(bytes.fromhex(command))
    if answer is None:
        raise RuntimeError(f"card did not answer {command}")
    return answer.hex()


async def timed(timings: Timings, name: str, call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    result = await call
    timings[name].append(time.perf_counter() - started)
    return result


async def topup_via_backend(
    session: aiohttp.ClientSession, url: str, card: KmtCard, card_no: str, timings: Timings
) -> None:
    """One top-up as a frontend does it: the terminal library over the shared HTTP session."""
    terminal = AsyncTopupTerminal(
        url,
        InProcessReader(card),
        tid=TERMINAL.tid,
        mid=TERMINAL.mid,
        auth=Auth.bearer(TERMINAL.secret),
        session=session,
        reader_in_thread=False,
    )
    result = await terminal.topup(card_no, AMOUNT)
    if not result.ok:
        raise RuntimeError(f"{result.failed_step}: {result.code} {result.message}")
    for call in terminal.calls:
        if call.kind == "api":
            timings[call.step].append(call.latency)


async def topup_via_kci(kci: KciClient, card: KmtCard, card_no: str, timings: Timings, ref: str) -> None:
    base = {"card_no": card_no, "tid": TERMINAL.tid, "mid": TERMINAL.mid}
    data = await timed(timings, "card-check 1", kci.call("card-info", {**base, "step": 1}))
    for step in (2, 3):
        params = {**base, "step": step, "card_resp": run_card(card, data["command"]), "session_id": data["session_id"]}
        if step == 3:
            params["sequence_data"] = data["sequence_data"]
        data = await timed(timings, f"card-check {step}", kci.call("card-info", params))
    balance = int(data["balance"])

    async def pending() -> dict[str, Any]:
        await kci.call("reservation/check", base)
        await kci.call("reservation/validate", {**base, "amount": AMOUNT, "ref_no": ref})
        return await kci.call("reservation/create", {**base, "amount": AMOUNT, "ref_no": ref})

    await timed(timings, "pending", pending())
    data = await timed(timings, "update 1", kci.call("load-balance", {**base, "step": 1, "prev_balance": balance}))
    for step in range(2, 8):
        params = {
            **base,
            "step": step,
            "balance": balance,
            "card_resp": run_card(card, data["command"]),
            "session_id": data["session_id"],
        }
        if step >= 3:
            params["sequence_data"] = data["sequence_data"]
        data = await timed(timings, f"update {step}", kci.call("load-balance", params))
    await timed(
        timings,
        "confirm",
        kci.call("load-balance/confirm", {**base, "last_balance": data["balance"], "session_id": data["session_id"]}),
    )


async def drive(topups: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Run ``topups`` top-ups, ``concurrency`` at a time (each worker on its own cards); top-ups/s."""
    counter = iter(range(topups))

    async def worker() -> None:
        for index in counter:
            await one(index)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return topups / (time.perf_counter() - started)


def via_kci(
    kci: KciClient, cards: list[KmtCard], numbers: list[str], offset: int, timings: Timings
) -> Callable[[int], Awaitable[None]]:
    async def one(i: int) -> None:
        n = offset + i
        await topup_via_kci(kci, cards[n], numbers[n], timings, f"BENCH{n:08d}")

    return one


def via_backend(
    session: aiohttp.ClientSession, url: str, cards: list[KmtCard], numbers: list[str], *, offset: int, timings: Timings
) -> Callable[[int], Awaitable[None]]:
    async def one(i: int) -> None:
        n = offset + i
        await topup_via_backend(session, url, cards[n], numbers[n], timings)

    return one


async def bench(topups: int, concurrency: int) -> None:
    cards_needed = 2 * topups
    config = Config(seed=SEED, cards=cards_needed, card_balance=BALANCE, journal=False)
    async with run_simulator(config) as sim:
        cards = [make_card_image(SEED, i, DEFAULT_MASTER_KEY, balance=BALANCE) for i in range(cards_needed)]
        virtual = [KmtCard(image) for image in cards]
        numbers = [str(image.card_no) for image in cards]
        with tempfile.TemporaryDirectory() as tmp:
            backend_config = BackendConfig(
                kci_url=sim.url,
                kci_partner_id=sim.partner.partner_id,
                kci_partner_secret=sim.partner.secret,
                terminals=(TERMINAL,),
                db_path=Path(tmp) / "bench.sqlite3",
            )
            kci = KciClient(sim.url, sim.partner.partner_id, sim.partner.secret, connect_timeout=3, read_timeout=10)
            await kci.open()
            results: dict[str, tuple[float, Timings]] = {}
            try:
                async with run_backend(backend_config) as backend, aiohttp.ClientSession() as session:
                    for label, conc in (("sequential", 1), (f"concurrency {concurrency}", concurrency)):
                        offset = 0 if conc == 1 else topups // 2
                        half = topups // 2
                        kci_t: Timings = defaultdict(list)
                        be_t: Timings = defaultdict(list)
                        kci_rate = await drive(half, conc, via_kci(kci, virtual, numbers, offset, kci_t))
                        be_rate = await drive(
                            half,
                            conc,
                            via_backend(session, backend.url, virtual, numbers, offset=offset + topups, timings=be_t),
                        )
                        results[f"KCI alone, {label}"] = (kci_rate, kci_t)
                        results[f"backend, {label}"] = (be_rate, be_t)
            finally:
                await kci.close()
    report(results, topups // 2, concurrency)


def report(results: dict[str, tuple[float, Timings]], per_run: int, concurrency: int) -> None:
    print(f"bench/backend.py: {per_run} full top-ups per run, loopback, virtual cards in process")
    print()
    print(f"{'run':32} {'top-ups/s':>10}")
    for name, (rate, _) in results.items():
        print(f"{name:32} {rate:10.1f}")
    for label in ("sequential", f"concurrency {concurrency}"):
        be_rate, kci_rate = results[f"backend, {label}"][0], results[f"KCI alone, {label}"][0]
        print(f"ratio backend/KCI-alone throughput ({label}): {be_rate / kci_rate:.2f}")
    print()
    be_t = results["backend, sequential"][1]
    kci_t = results["KCI alone, sequential"][1]
    print("median latency per step, sequential (ms); KCI-alone 'pending' = check + validate + create")
    print(f"{'step':14} {'backend':>9} {'KCI alone':>10} {'overhead':>9} {'ratio':>6}")
    for step in be_t:
        be = statistics.median(be_t[step]) * 1000
        kc = statistics.median(kci_t[step]) * 1000
        print(f"{step:14} {be:9.2f} {kc:10.2f} {be - kc:9.2f} {be / kc:6.2f}")
    total_be = sum(statistics.median(v) for v in be_t.values()) * 1000
    total_kci = sum(statistics.median(v) for v in kci_t.values()) * 1000
    print(f"{'sum':14} {total_be:9.2f} {total_kci:10.2f} {total_be - total_kci:9.2f} {total_be / total_kci:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--topups", type=int, default=120, help="top-ups per path, split over the two runs")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(bench(args.topups, args.concurrency))


if __name__ == "__main__":
    main()
