"""Full top-ups per second through the terminal on the embedded stack (KCI simulator + reference
backend in one process on loopback, virtual cards in process), beside a baseline measured in the same
run: the same 12 HTTP calls per "top-up" made through the same client to a bare aiohttp handler.

Run: .venv/bin/python -P bench/flow.py [--seconds S] [--concurrency N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from harness.stack import StackConfig, SyncStack, embedded_stack
from terminal.api import ApiRequest, Endpoint
from terminal.terminal import HttpTransport

CALLS_PER_TOPUP = 12


@asynccontextmanager
async def bare_server() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"response": {"code": 200, "message": "ok", "latency": 0.0}, "data": {}})

    app = web.Application()
    app.router.add_post("/topup-kci/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def sync_rates(seconds: float) -> tuple[float, float, list[float]]:
    sync = SyncStack(StackConfig(seed=77, cards=1, card_balance=0, journal=False))
    with sync as stack:
        card_no = stack.card_nos[0]
        sync.run(stack.require_admin().limits(max_balance=2_000_000_000, monthly_limit=2_000_000_000))
        terminal = stack.terminal(card_no)
        durations: list[float] = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            start = time.perf_counter()
            result = terminal.topup(card_no, 10_000)
            durations.append(time.perf_counter() - start)
            if not result.ok:
                raise SystemExit(f"top-up failed: {result.failed_step} {result.code} {result.message}")
        terminal.close()
        per_step: dict[str, list[float]] = {}
        for call in terminal.calls:
            if call.kind == "api":
                per_step.setdefault(call.step, []).append(call.latency)
        medians = [statistics.median(v) * 1000 for v in per_step.values()]

        bare = sync.run(_bare_rate(seconds))
    return len(durations) / sum(durations), bare, medians


async def _bare_rate(seconds: float) -> float:
    async with bare_server() as url:
        return await asyncio.to_thread(_bare_loop, url, seconds)


def _bare_loop(url: str, seconds: float) -> float:
    transport = HttpTransport(url)
    request = ApiRequest(Endpoint.UPDATE, {"card_no": "6032000100000000", "step": 1})
    body = b'{"card_no":"6032000100000000","tid":"T0000001","mid":"M0000001","step":1}'
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(CALLS_PER_TOPUP):
            transport.post(request, body, {"Content-Type": "application/json"})
        n += 1
    transport.close()
    return n / (time.perf_counter() - start)


async def concurrent_rate(seconds: float, concurrency: int) -> float:
    async with embedded_stack(StackConfig(seed=78, cards=concurrency, card_balance=0, journal=False)) as stack:
        await stack.require_admin().limits(max_balance=2_000_000_000, monthly_limit=2_000_000_000)
        done = 0
        end = time.perf_counter() + seconds

        async def worker(card_no: str) -> None:
            nonlocal done
            async with stack.async_terminal(card_no) as terminal:
                while time.perf_counter() < end:
                    result = await terminal.topup(card_no, 10_000)
                    if not result.ok:
                        raise SystemExit(f"top-up failed: {result.failed_step} {result.code} {result.message}")
                    terminal.calls.clear()
                    done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in stack.card_nos))
        return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    sequential, bare, medians = sync_rates(args.seconds)
    concurrent = asyncio.run(concurrent_rate(args.seconds, args.concurrency))
    print(f"baseline: {CALLS_PER_TOPUP} calls to a bare aiohttp handler, same client: {bare:8.1f} sequences/s")
    print(
        f"sequential top-ups, one sync terminal:            {sequential:8.1f} /s   {sequential / bare:.3f} x baseline"
    )
    print(
        f"concurrent top-ups, {args.concurrency} async terminals (one loop): {concurrent:8.1f} /s   "
        f"{concurrent / bare:.3f} x baseline"
    )
    print(
        f"median latency per backend call (sequential run): {statistics.median(medians):.2f} ms "
        f"(steps from {min(medians):.2f} to {max(medians):.2f} ms)"
    )


if __name__ == "__main__":
    main()
