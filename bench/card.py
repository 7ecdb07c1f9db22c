"""Card emulation speed in process: Polling, a 12-block Read Without Encryption and a full
authenticated top-up sequence (Auth1, Auth2, Read, Write, Read on the card plus the host's checks),
each beside a baseline measured in the same run: a bare ``bytes`` round trip through a function call.

Run: .venv/bin/python bench/card.py [--seconds S]
Goals (issue): >= 50,000 Polling/s and >= 5,000 full top-up sequences/s on one core.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image
from virtual_card.frames import ReadWithoutEncryption
from virtual_card.host import PURSE_READ, HostSession, PurseState, topup_write
from virtual_card.profile import TOPUP_AREAS, TOPUP_SERVICES, card_check_read


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (best of three slices)."""
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for _ in range(100):
                fn()
            n += 100
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.5)
    args = parser.parse_args()

    image = make_card_image(1, 0, balance=100_000)
    card = KmtCard(image)
    poll = bytes.fromhex("00ffff0100")
    services, blocks = card_check_read()
    read12 = ReadWithoutEncryption(image.idm, services, blocks).to_frame()
    echo_answer = bytes.fromhex("1401") + image.idm + image.pmm + b"\x90\xb7"

    def bare() -> bytes:
        return echo_answer if poll else b""

    when = datetime(2026, 12, 4, tzinfo=UTC)

    def topup() -> None:
        host = HostSession.begin(card.idm, image.card_key, os.urandom(16))
        auth1 = host.authentication1(TOPUP_AREAS, TOPUP_SERVICES)
        host, auth2 = host.accept_authentication1(card.handle(auth1.to_bytes()) or b"")
        host = host.accept_authentication2(card.handle(auth2.to_bytes()) or b"")
        host, read = host.read(*PURSE_READ)
        state = PurseState.from_read(host.accept_read(card.handle(read.to_bytes()) or b""))
        host, write = host.write(*topup_write(state.purse, 1, when, 0x117))
        host.accept_write(card.handle(write.to_bytes()) or b"")
        host, read = host.read(*PURSE_READ)
        host.accept_read(card.handle(read.to_bytes()) or b"")

    baseline = rate(bare, args.seconds)
    results = {
        "Polling": rate(lambda: card.handle(poll), args.seconds),
        "Read Without Encryption, 12 blocks": rate(lambda: card.handle(read12), args.seconds),
        "full authenticated top-up (5 commands + host checks)": rate(topup, args.seconds),
    }
    print(f"baseline: bare bytes round trip through a call: {baseline:,.0f}/s")
    for name, value in results.items():
        print(f"{name:55s} {value:>12,.0f}/s   {value / baseline:8.4f} x baseline")
    print(f"card balance after the run: {card.balance:,} (started at 100,000; +1 per top-up)")


if __name__ == "__main__":
    main()
