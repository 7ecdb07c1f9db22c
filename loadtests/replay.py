"""Recorded backend answers (for ``bench/load.py``): a server fast enough to saturate the generator.

The reference backend serves far fewer top-ups than one Locust core can drive, so a generator
measured against it idles. To measure the real user at saturation, ``record`` runs one top-up
against the reference stack with a card whose challenges come from a seeded generator, and keeps
each step's answer (the bytes the backend sent). ``serve`` answers ``POST /topup-kci/<endpoint>``
with the recorded answer of the request's step. A copy of the same card with the same seeded
generator (:mod:`loadtests.replay_user` makes one before every top-up) receives exactly the
commands it would get from the live backend, checks their MACs and answers them, and the write
really moves its balance: the generator's work per top-up is the live work, plus that copy.

    python -m loadtests.replay record STACK_JSON ANSWERS_JSON
    python -m loadtests.replay serve ANSWERS_JSON      # prints {"url": ...}, serves until stdin closes

Only for measuring the generator: the answers are one top-up's, valid for that card only.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from aiohttp import web

from terminal.api import ApiRequest
from terminal.readers import InProcessReader
from terminal.terminal import Auth, AuthScheme, TopupTerminal
from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image
from virtual_card.image import CardImage

from .admin_http import AdminHttp

CARD_RNG_SEED = 1
AMOUNT = 10_000
BALANCE = 50_000


def replay_image(seed: int) -> CardImage:
    """The recorded card's image (index 0 of ``seed``) as it was before the recorded top-up."""
    return make_card_image(seed, 0, balance=BALANCE)


def replay_card(image: CardImage) -> KmtCard:
    """A fresh card from the recorded image, drawing the same card challenges as the recorded one."""
    rng = random.Random(CARD_RNG_SEED)
    return KmtCard(image, rng=rng.randbytes)


class _Recorder:
    """A transport that keeps each step's answer exactly as the backend sent it."""

    def __init__(self, base_url: str) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=15)
        self.answers: dict[str, str] = {}

    def post(self, request: ApiRequest, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        self.conn.request("POST", request.path, body=body, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        self.answers[request.name] = raw.decode()
        return resp.status, json.loads(raw)


def record(stack_json: Path, out: Path) -> None:
    info = json.loads(stack_json.read_text())
    seed = 1000 + int(time.time()) % 9000
    card = replay_card(replay_image(seed))
    AdminHttp(info["kci_admin_url"]).seed_cards(
        [{"card_no": card.card_no, "idm": bytes(card.idm).hex(), "balance": BALANCE}]
    )
    a = info["auth"]
    recorder = _Recorder(info["backend_url"])
    auth = Auth(AuthScheme(a["scheme"]), a["key_id"], a["secret"])
    with TopupTerminal(recorder, InProcessReader(card), tid=info["tid"], mid=info["mid"], auth=auth) as terminal:
        result = terminal.topup(card.card_no, AMOUNT)
    recorder.conn.close()
    if not result.ok or len(recorder.answers) != 12:
        raise SystemExit(f"recording failed: {result.outcome.value} at {result.failed_step}: {result.message}")
    out.write_text(json.dumps({"seed": seed, "amount": AMOUNT, "answers": recorder.answers}))


async def _serve(answers: dict[str, bytes]) -> None:

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        endpoint = request.match_info["endpoint"]
        name = endpoint if body.get("step") is None else f"{endpoint} {body['step']}"
        answer = answers.get(name)
        if answer is None:
            return web.json_response({"response": {"code": 404, "message": f"no answer for {name}"}, "data": {}})
        return web.Response(body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_post("/topup-kci/{endpoint}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(json.dumps({"url": f"http://127.0.0.1:{runner.addresses[0][1]}"}), flush=True)
    loop, stop = asyncio.get_running_loop(), asyncio.Event()

    def watch_stdin() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("stack_json", type=Path)
    rec.add_argument("answers_json", type=Path)
    srv = sub.add_parser("serve")
    srv.add_argument("answers_json", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        record(args.stack_json, args.answers_json)
    else:
        recorded = json.loads(args.answers_json.read_text())["answers"]
        asyncio.run(_serve({name: answer.encode() for name, answer in recorded.items()}))


if __name__ == "__main__":
    main()
