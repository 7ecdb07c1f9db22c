"""The embedded stack (KCI simulator + reference backend) in a process of its own, for load runs.

    python -m loadtests.stack_server [--seed N] [--host 127.0.0.1] [--bare]

Prints one JSON line on stdout once everything listens::

    {"backend_url": ..., "kci_url": ..., "kci_admin_url": ..., "auth": {"scheme": "hmac", "key_id": ...,
     "secret": ...}, "tid": ..., "mid": ..., "seed": N, "bare_url": ... or null, "pid": ...}

then serves until stdin closes (its parent ended) or SIGTERM/SIGINT. The simulator's top-up limits
are raised (``--keep-limits`` keeps KCI's defaults) because a load run tops the same cards up
hundreds of times. The cards themselves are registered by the load generator (one per user).
``--bare`` adds an aiohttp endpoint answering every ``POST /topup-kci/*`` with a fixed success
envelope: the baseline of ``bench/load.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from harness.stack import StackConfig, embedded_stack

HIGH_LIMIT = 2_000_000_000


@asynccontextmanager
async def bare_endpoint(host: str) -> AsyncIterator[str]:
    body = b'{"response":{"code":200,"message":"OK","latency":0.0},"data":{}}'

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/topup-kci/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    try:
        yield f"http://{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def _wait_for_end() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    def watch_stdin() -> None:
        # stdin at EOF means the parent is gone: never outlive the load run
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    await stop.wait()


async def serve(args: argparse.Namespace) -> None:
    config = StackConfig(seed=args.seed, cards=0, host=args.host, journal=False)
    async with embedded_stack(config) as stack, contextlib.AsyncExitStack() as exits:
        if not args.keep_limits:
            await stack.require_admin().limits(max_balance=HIGH_LIMIT, monthly_limit=HIGH_LIMIT)
        bare_url = await exits.enter_async_context(bare_endpoint(args.host)) if args.bare else None
        info = {
            "backend_url": stack.backend_url,
            "kci_url": stack.kci_url,
            "kci_admin_url": stack.kci_admin_url,
            "auth": {"scheme": stack.auth.scheme.value, "key_id": stack.auth.key_id, "secret": stack.auth.secret},
            "tid": stack.tid,
            "mid": stack.mid,
            "seed": args.seed,
            "bare_url": bare_url,
            "pid": os.getpid(),
        }
        print(json.dumps(info), flush=True)
        await _wait_for_end()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.stack_server", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="seed of the virtual cards (default 1)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1); ports are ephemeral")
    parser.add_argument("--keep-limits", action="store_true", help="keep KCI's default top-up limits")
    parser.add_argument("--bare", action="store_true", help="also serve a bare /topup-kci/* endpoint (benchmarks)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
