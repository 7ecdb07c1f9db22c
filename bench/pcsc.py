"""PC/SC round trips through pcscd + vpcd: the virtual KMT card beside a trivial ``90 00`` card.

Both cards run in one child process (as ``kmt card serve`` would), the trivial one on vpcd slot 35964
and ours on 35963, and get the same APDUs from pyscard's low-level API in this process, in
interleaved rounds of the same run:

- trivial: a slot card answering every APDU with ``90 00`` (transport cost only);
- kmt direct: Polling ``FF 00 00 00 06 06 00 FF FF 01 00`` through the virtual reader and KmtCard;
- kmt read: Read Without Encryption 300B#0 in the same dialect;
- kmt PcscReader: Polling through terminal.pcsc_reader.PcscReader (its worker thread included).

Prints APDUs/s, median and p99 round trip, and each rate as a ratio of the trivial card's (goal >= 0.80).
Starts pcscd with scripts/pcscd.sh when it is not running, and stops it again.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smartcard import scard  # noqa: E402

from terminal.pcsc_reader import PcscReader  # noqa: E402
from virtual_card.card import FELICA_ATR, KmtCard  # noqa: E402
from virtual_card.factory import make_card_image  # noqa: E402
from virtual_card.reader import SlotCard, StatusWordCard, VirtualReader  # noqa: E402
from virtual_card.vpcd import VpcdSlot  # noqa: E402

PORTS = {"trivial": 35964, "kmt": 35963}
READERS = {"trivial": "Virtual PCD 00 01", "kmt": "Virtual PCD 00 00"}
N = 200
ROUNDS = 25
WARMUP = 200


def serve_cards(ready: Event, stop: Event) -> None:
    cards: dict[str, SlotCard] = {
        "trivial": StatusWordCard(FELICA_ATR),
        "kmt": VirtualReader(KmtCard(make_card_image(1, 0))),
    }
    slots = [VpcdSlot(PORTS[kind]) for kind in cards]
    for slot, card in zip(slots, cards.values(), strict=True):
        slot.insert(card)
    ready.set()
    stop.wait()
    for slot in slots:
        slot.remove()


class Raw:
    def __init__(self, reader: str) -> None:
        _, self.context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        deadline = time.monotonic() + 5
        while True:
            _, states = scard.SCardGetStatusChange(self.context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
            if states[0][1] & scard.SCARD_STATE_PRESENT:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the card did not appear in {reader}")
            time.sleep(0.02)
        hresult, self.card, self.protocol = scard.SCardConnect(
            self.context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        )
        assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)

    def transmit(self, apdu: list[int]) -> list[int]:
        hresult, response = scard.SCardTransmit(self.card, self.protocol, apdu)
        assert hresult == scard.SCARD_S_SUCCESS and response[-2:] == [0x90, 0x00], (hresult, response)
        return list(response)

    def close(self) -> None:
        scard.SCardDisconnect(self.card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self.context)


Figures = tuple[float, float, float]


def measure(calls: dict[str, Callable[[], object]]) -> dict[str, Figures]:
    """Interleaved rounds (so load changes on a shared machine hit every case alike); median per case."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    rates: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(WARMUP):
            call()
    for _ in range(ROUNDS):
        for name, call in calls.items():
            times = []
            start = time.perf_counter()
            for _ in range(N):
                t = time.perf_counter()
                call()
                times.append(time.perf_counter() - t)
            rates[name].append(N / (time.perf_counter() - start))
            samples[name] += times
    out: dict[str, Figures] = {}
    for name, times in samples.items():
        times.sort()
        out[name] = (
            statistics.median(rates[name]),
            statistics.median(times) * 1e6,
            times[int(len(times) * 0.99)] * 1e6,
        )
    return out


def run() -> dict[str, Figures]:
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=serve_cards, args=(ready, stop))
    proc.start()
    trivial = kmt = None
    reader = None
    try:
        if not ready.wait(10):
            raise SystemExit("card process did not start")
        trivial, kmt = Raw(READERS["trivial"]), Raw(READERS["kmt"])
        reader = PcscReader(READERS["kmt"])
        poll = [0xFF, 0x00, 0x00, 0x00, 0x06, 0x06, 0x00, 0xFF, 0xFF, 0x01, 0x00]
        idm = make_card_image(1, 0).idm
        read = [0xFF, 0, 0, 0, 16, 16, 0x06, *idm, 0x01, 0x0B, 0x30, 0x01, 0x80, 0x00]
        frame = bytes.fromhex("00ffff0100")
        t, k, r = trivial, kmt, reader
        return measure(
            {
                "trivial 90 00 card (same APDU)": lambda: t.transmit(poll),
                "kmt card, Polling (direct transmit)": lambda: k.transmit(poll),
                "kmt card, Read w/o Encryption 300B": lambda: k.transmit(read),
                "kmt card, PcscReader.transceive": lambda: r.transceive(frame, 0.5),
            }
        )
    finally:
        for raw in (trivial, kmt):
            if raw is not None:
                raw.close()
        if reader is not None:
            reader.close()
        stop.set()
        proc.join(10)


def main() -> int:
    status = subprocess.run([ROOT / "scripts/pcscd.sh", "status"], capture_output=True, check=False)
    started = status.returncode != 0
    if started:
        subprocess.run([ROOT / "scripts/pcscd.sh", "start"], check=True)
    try:
        results = run()
    finally:
        if started:
            subprocess.run([ROOT / "scripts/pcscd.sh", "stop"], check=False)
    base = results["trivial 90 00 card (same APDU)"][0]
    print(f"PC/SC through pcscd + vpcd, {ROUNDS} interleaved rounds of {N} APDUs, cards in a child process")
    print(f"{'':40} {'APDU/s':>8} {'median us':>10} {'p99 us':>8} {'vs trivial':>10}")
    for name, (rate, median, p99) in results.items():
        print(f"{name:40} {rate:8.0f} {median:10.0f} {p99:8.0f} {rate / base:10.2f}")
    ratio = results["kmt card, Polling (direct transmit)"][0] / base
    print(f"goal: kmt card >= 0.80 x trivial card: {'met' if ratio >= 0.8 else 'NOT met'} ({ratio:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
