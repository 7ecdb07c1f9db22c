"""``kmt card serve --vpcd``: the admin API and the signals, against a real pcscd."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from terminal.errors import CardRemoved
from terminal.pcsc_reader import PcscReader
from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image
from virtual_card.image import CardImage
from virtual_card.pcsc_serve import AdminConfig, CardServer, create_app
from virtual_card.vpcd import READER_NAMES, VpcdSlot

pytestmark = [pytest.mark.pcsc]

H = bytes.fromhex
ROOT = Path(__file__).resolve().parents[2]
READER1 = READER_NAMES[35964]


def test_admin_api_removes_and_inserts_the_card(pcscd: None, new_card: Callable[..., KmtCard]) -> None:
    card = new_card(3)
    server = CardServer(card, VpcdSlot(35964), timeout=0.1)

    async def scenario() -> None:
        runner = web.AppRunner(create_app(AdminConfig(server)))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        reader = await asyncio.to_thread(PcscReader, READER1)
        try:
            await asyncio.to_thread(server.insert)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/card") as resp:
                    status = await resp.json()
                assert status["present"] is True
                assert status["idm"] == card.idm.hex()
                assert status["card_no"] == card.card_no
                assert await asyncio.to_thread(reader.wait_for_card, 3.0)
                assert await asyncio.to_thread(reader.idm) == card.idm

                async with http.post(f"{base}/card/remove") as resp:
                    assert resp.status == 200
                    assert (await resp.json())["close_reason"] == "removed"
                assert await asyncio.to_thread(reader.wait_for_removal, 3.0)

                async with http.post(f"{base}/card/insert") as resp:
                    assert resp.status == 200
                    assert (await resp.json())["present"] is True
                async with http.post(f"{base}/card/insert") as resp:
                    assert resp.status == 409
                assert await asyncio.to_thread(reader.wait_for_card, 3.0)
        finally:
            await asyncio.to_thread(server.remove)
            await asyncio.to_thread(reader.close)
            await runner.cleanup()

    asyncio.run(scenario())
    time.sleep(0.6)


CLI = (
    "import argparse, sys\n"
    "from virtual_card import cli_pcsc\n"
    "p = argparse.ArgumentParser(prog='kmt')\n"
    "cli_pcsc.register(p.add_subparsers(dest='command', required=True))\n"
    "a = p.parse_args(sys.argv[1:])\n"
    "sys.exit(a.func(a))\n"
)


def test_cli_serve_keeps_the_card_until_sigint_and_obeys_usr1_usr2(pcscd: None, tmp_path: Path) -> None:
    image = make_card_image(7, 4)
    path = tmp_path / "card.json"
    image.save(path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "card", "serve", "--vpcd", "127.0.0.1:35964", "--card", str(path), "--save"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    reader = PcscReader(READER1)
    try:
        assert reader.wait_for_card(10.0), "kmt card serve did not insert the card"
        assert reader.transceive(H("00ffff0100"), timeout=0.5)[2:10] == image.idm
        proc.send_signal(signal.SIGUSR1)
        assert reader.wait_for_removal(3.0)
        proc.send_signal(signal.SIGUSR2)
        assert reader.wait_for_card(3.0)
        with pytest.raises(CardRemoved):  # the handle opened before the removal is dead
            reader.idm()
        assert reader.idm() == image.idm
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        reader.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert f"card {image.card_no} (IDm {image.idm.hex()}) -> vpcd 127.0.0.1:35964" in out
    assert CardImage.load(path).card_no == image.card_no
    time.sleep(0.6)
