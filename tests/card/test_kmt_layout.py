"""Our blocks read by an independent KMT parser (metrodroid's layout, felica.md 2.2), not by our codec.

The parser below is written from the published layout with ``struct`` only; if our profile drifted
from it, a real KMT reader app would show wrong balances, and this test fails."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from virtual_card.card import KmtCard

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def metrodroid_purse(block: bytes) -> tuple[int, int, int]:
    balance = struct.unpack_from("<i", block, 0)[0]
    last = struct.unpack_from("<i", block, 4)[0]
    counter = int.from_bytes(block[13:16], "big")
    return balance, last, counter


def metrodroid_trip(block: bytes) -> dict[str, object] | None:
    if block[0] == 0 or struct.unpack_from(">H", block, 8)[0] == 0:
        return None
    seconds, amount, gate = struct.unpack_from(">IIH", block, 0)
    return {
        "when": EPOCH + timedelta(seconds=seconds),
        "amount": amount,
        "gate": gate,
        "type": block[12],
        "seq": int.from_bytes(block[13:16], "big"),
    }


def read_without_key(card: KmtCard) -> list[bytes]:
    # 06 IDm, 3 services (300B, 1017, 200F LE), 12 two-byte block list elements
    frame = (
        b"\x06"
        + card.idm
        + bytes.fromhex("03 0b30 1710 0f20".replace(" ", ""))
        + b"\x0c"
        + bytes.fromhex("8000 8100")
        + b"".join(bytes([0x82, i]) for i in range(10))
    )
    answer = card.handle(frame)
    assert answer is not None and answer[10:12] == b"\x00\x00" and answer[12] == 12
    return [answer[13 + 16 * i : 29 + 16 * i] for i in range(12)]


def test_independent_parser_reads_our_card(card: KmtCard) -> None:
    blocks = read_without_key(card)
    assert blocks[0].decode("ascii") == card.card_no
    balance, last, counter = metrodroid_purse(blocks[1])
    assert (balance, last, counter) == (238_500, 20_000, 17)
    trips = [t for t in (metrodroid_trip(b) for b in blocks[2:]) if t is not None]
    assert len(trips) == 10
    assert [t["seq"] for t in trips] == list(range(17, 7, -1))  # newest first, one per counter step
    assert all(isinstance(t["when"], datetime) and 2025 <= t["when"].year <= 2026 for t in trips)
    # Replaying the history backwards from today's balance never goes negative.
    running = balance
    for trip in trips:
        amount = trip["amount"]
        assert isinstance(amount, int)
        running += amount if trip["type"] == 1 else -amount
        assert running >= 0


def test_fare_appears_as_metrodroid_expects(card: KmtCard) -> None:
    card.pay_fare(5_000, 0x0105, datetime(2026, 12, 4, 7, 30, tzinfo=UTC))
    blocks = read_without_key(card)
    assert metrodroid_purse(blocks[1]) == (233_500, -5_000, 18)
    trip = metrodroid_trip(blocks[2])
    assert trip == {
        "when": datetime(2026, 12, 4, 7, 30, tzinfo=UTC),
        "amount": 5_000,
        "gate": 0x0105,
        "type": 1,
        "seq": 18,
    }
