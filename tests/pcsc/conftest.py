"""Fixtures for the PC/SC tests: a running pcscd with vpcd, vpcd slots that clean up, fresh cards.

pcscd is one per machine: when it already runs (scripts/with-pcscd.sh, a developer's own) it is
used as it is; otherwise the session starts it with scripts/pcscd.sh and stops it at the end.
Missing packages skip the PC/SC tests with an install hint, or fail them when KMT_REQUIRE_PCSC=1.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image
from virtual_card.reader import SlotCard, VirtualReader
from virtual_card.vpcd import VpcdSlot

ROOT = Path(__file__).resolve().parents[2]
PCSCD_SH = ROOT / "scripts" / "pcscd.sh"
VPCD_LIB = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
INSTALL_HINT = "apt-get install pcscd vsmartcard-vpcd libpcsclite-dev; pip install pyscard"


def _unavailable(reason: str) -> None:
    message = f"{reason}: {INSTALL_HINT}"
    if os.environ.get("KMT_REQUIRE_PCSC") == "1":
        pytest.fail(f"KMT_REQUIRE_PCSC=1 but {message}", pytrace=False)
    pytest.skip(message)


def _port_listening(port: int) -> bool:
    needle = f":{port:04X} "
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(needle.strip()) and fields[3] == "0A":
                return True
    return False


@pytest.fixture(scope="session")
def pcscd() -> Iterator[None]:
    """A running pcscd with vpcd slots; never probes 35963 with a connect (vpcd takes it as a card)."""
    if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
        _unavailable("pcscd is not installed")
    if not VPCD_LIB.exists():
        _unavailable(f"vsmartcard's vpcd driver ({VPCD_LIB}) is not installed")
    if importlib.util.find_spec("smartcard") is None:
        _unavailable("pyscard is not installed")
    status = subprocess.run([PCSCD_SH, "status"], capture_output=True, text=True, check=False)
    started = False
    if status.returncode != 0:
        run = subprocess.run([PCSCD_SH, "start"], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            _unavailable(f"scripts/pcscd.sh start failed: {run.stdout}{run.stderr}")
        started = True
    try:
        yield
    finally:
        if started:
            subprocess.run([PCSCD_SH, "stop"], capture_output=True, check=False)


@pytest.fixture
def new_card() -> Callable[..., KmtCard]:
    """Factory of reproducible cards: ``new_card(index=0, seed=7)``."""

    def make(index: int = 0, seed: int = 7) -> KmtCard:
        return KmtCard(make_card_image(seed, index))

    return make


@pytest.fixture
def insert(pcscd: None) -> Iterator[Callable[..., VpcdSlot]]:
    """Factory ``insert(card_or_slotcard, port=35963) -> VpcdSlot``; every slot is emptied afterwards."""
    slots: list[VpcdSlot] = []

    def do(card: KmtCard | SlotCard, port: int = 35963, timeout: float = 0.1) -> VpcdSlot:
        slot = VpcdSlot(port)
        served: SlotCard = VirtualReader(card, timeout=timeout) if isinstance(card, KmtCard) else card
        slot.insert(served)
        slots.append(slot)
        return slot

    yield do
    for slot in slots:
        slot.remove()
    if slots:
        time.sleep(0.6)  # let pcscd's 0.4-0.5 s poll see the slots empty before the next test inserts


@pytest.fixture
def require_port(pcscd: None) -> Callable[[int], None]:
    """``require_port(port)`` fails (skips without KMT_REQUIRE_PCSC) when a vpcd port is not listening."""

    def check(port: int) -> None:
        if not _port_listening(port):
            message = (
                f"vpcd port {port} is not listening: pcscd was started without scripts/pcscd.sh's second "
                "reader (stop it and run scripts/pcscd.sh start)"
            )
            if os.environ.get("KMT_REQUIRE_PCSC") == "1":
                pytest.fail(message, pytrace=False)
            pytest.skip(message)

    return check
