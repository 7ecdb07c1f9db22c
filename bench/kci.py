"""KCI simulator throughput through HTTP: card-info steps/s and full load-balance sessions/s, beside a
bare aiohttp handler (read JSON, answer an envelope) measured in the same run with the same client.

Run: .venv/bin/python bench/kci.py [--seconds S] [--concurrency N]
Goal (issue): a card-info step at >= 50% of the bare handler's rate.
Client and servers share one event loop (and so one core): the ratios are what compare.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from simulator.app import Simulator, run_simulator
from simulator.client import KciClient
from simulator.config import Config
from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image

SEED = 3
CARDS = 64


async def bare_handler(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    return web.json_response({"code": 200, "message": "OK", "data": {"step": body.get("step")}})


async def measure(work: Callable[[int], Awaitable[object]], seconds: float, concurrency: int) -> float:
    """Operations per second of ``work(worker)`` run by ``concurrency`` workers for ``seconds``."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await work(i)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.perf_counter() - start)


async def full_top_up(kci: KciClient, sim: Simulator, card: KmtCard, ref: str) -> None:
    base = {"card_no": card.card_no, "tid": sim.partner.tid, "mid": sim.partner.mid}
    env = await kci.call("reservation/create", base | {"amount": 10_000, "ref_no": ref})
    assert env["code"] == 200, env
    env = await kci.call("load-balance", base | {"step": 1, "prev_balance": card.balance})
    for step in range(2, 8):
        assert env["code"] == 200, env
        data = env["data"]
        answer = card.handle(bytes.fromhex(data["command"]))
        assert answer is not None
        env = await kci.call(
            "load-balance",
            base
            | {
                "step": step,
                "balance": card.balance,
                "session_id": data["session_id"],
                "card_resp": answer.hex(),
                "sequence_data": data["sequence_data"],
            },
        )
    assert env["code"] == 200, env
    env = await kci.call(
        "load-balance/confirm", base | {"session_id": env["data"]["session_id"], "last_balance": card.balance}
    )
    assert env["code"] == 200, env


async def bench_simulator(journal: bool, bare_url: str, seconds: float, concurrency: int) -> dict[str, float]:
    results: dict[str, float] = {}
    config = Config(seed=SEED, cards=CARDS, card_balance=50_000, journal=journal)
    async with run_simulator(config) as sim, aiohttp.ClientSession() as http:
        kci = KciClient(sim.url, sim.partner.partner_id, sim.partner.secret, session=http)
        card_no = make_card_image(SEED, 0).card_no
        body = {"card_no": card_no, "tid": sim.partner.tid, "mid": sim.partner.mid, "step": 1}
        raw = json.dumps(body).encode()

        async def bare_call(_: int) -> None:
            async with http.post(bare_url, data=raw, headers={"Content-Type": "application/json"}) as r:
                await r.json()

        async def card_info_step(_: int) -> None:
            env = await kci.call("card-info", body)
            assert env["code"] == 200

        tag = "journal on" if journal else "journal off"
        results[f"bare handler ({tag} run)"] = await measure(bare_call, seconds, concurrency)
        results[f"card-info step 1 ({tag})"] = await measure(card_info_step, seconds, concurrency)
        cards = [KmtCard(make_card_image(SEED, i, balance=50_000)) for i in range(CARDS)]
        refs = itertools.count()
        per_worker = [cards[i::concurrency] for i in range(concurrency)]
        cursor = [0] * concurrency

        async def top_up(i: int) -> None:
            mine = per_worker[i]
            card = mine[cursor[i] % len(mine)]
            cursor[i] += 1
            await full_top_up(kci, sim, card, f"B{next(refs)}")

        results[f"full load-balance sessions ({tag})"] = await measure(top_up, seconds, concurrency)
    return results


async def run(seconds: float, concurrency: int) -> dict[str, float]:
    bare = web.Application()
    bare.router.add_post("/bare", bare_handler)
    runner = web.AppRunner(bare, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    bare_url = f"http://127.0.0.1:{runner.addresses[0][1]}/bare"
    results: dict[str, float] = {}
    try:
        for journal in (False, True):
            results |= await bench_simulator(journal, bare_url, seconds, concurrency)
    finally:
        await runner.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    results: dict[str, Any] = asyncio.run(run(args.seconds, args.concurrency))
    for tag in ("journal off", "journal on"):
        base = results[f"bare handler ({tag} run)"]
        step = results[f"card-info step 1 ({tag})"]
        full = results[f"full load-balance sessions ({tag})"]
        print(f"[{tag}] bare aiohttp handler      {base:9.0f} req/s")
        print(f"[{tag}] card-info step 1          {step:9.0f} steps/s   {step / base:6.1%} of bare  (goal >= 50%)")
        print(
            f"[{tag}] full load-balance session {full:9.0f} sessions/s  (9 calls each: {full * 9:.0f} calls/s, "
            f"{full * 9 / base:.1%} of bare)"
        )


if __name__ == "__main__":
    main()
