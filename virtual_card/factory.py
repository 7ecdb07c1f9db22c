"""Realistic, reproducible KMT cards from a seed.

``make_card_image(seed, index)`` always returns the same card for the same arguments: IDm, card
number, holder (Faker, Indonesian locale), a plausible past of fares and top-ups at KRL stations in
the history ring, and a purse whose counter and last amount agree with that history. The card key is
diversified from ``master_key`` and the IDm, so the KCI simulator, given the same master key and
IDm, can authenticate the card.

Card numbers are ``6032`` + 4 digits of the seed + 8 digits of the index: unique for every index of
a seed (load tests rely on that) and distinct across seeds below 10,000.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from faker import Faker

from .image import CardImage
from .profile import (
    CARD_INFO,
    EXTRA,
    HISTORY,
    HISTORY_BLOCKS,
    PURSE,
    HistoryRecord,
    ProcessType,
    PurseBlock,
    encode_card_number,
    to_kmt_time,
)
from .secure import diversify_card_key
from .types import CardNo, IDm, PMm

DEFAULT_MASTER_KEY = bytes.fromhex("4b4d542d48415252455353204b455931")
"""The harness's default issuer master key (ASCII ``KMT-HARRESS KEY1``); a test key, never a real one."""

PMM_KMT = PMm(bytes.fromhex("0120220427674eff"))
"""ROM type 01, IC type 20 (RC-S962), then the six timeout bytes of felica.md 1.3."""

MANUFACTURER_CODE = b"\x01\x2e"

KRL_GATES: tuple[int, ...] = (
    0x0001, 0x0101, 0x0102, 0x0103, 0x0104, 0x0105, 0x0106, 0x0107, 0x0108, 0x0112, 0x0115,
    0x0116, 0x0117, 0x0118, 0x0119, 0x0120, 0x0124, 0x0125, 0x0126, 0x0131, 0x0146, 0x0148,
    0x0151, 0x0156, 0x0166, 0x0178,
)  # fmt: skip
"""Gate codes of KRL stations from metrodroid's data/kmt/stations.csv (0x0101 Bogor, 0x0105 Depok...)."""

TOPUP_GATE = 0x0117  # Manggarai
HISTORY_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def card_number(seed: int, index: int) -> CardNo:
    if not 0 <= index < 10**8:
        raise ValueError(f"card index must be in 0..99999999, got {index}")
    return CardNo(f"6032{seed % 10**4:04d}{index:08d}")


def make_card_image(
    seed: int,
    index: int,
    master_key: bytes = DEFAULT_MASTER_KEY,
    *,
    balance: int | None = None,
    history: int = 10,
) -> CardImage:
    """A reproducible card; ``balance`` None draws a plausible one, ``history`` past transactions."""
    rnd = random.Random(f"kmt-card:{seed}:{index}")
    idm = IDm(MANUFACTURER_CODE + rnd.randbytes(6))
    if balance is None:
        balance = rnd.randrange(20_000, 300_001, 500)
    if balance < 0:
        raise ValueError(f"balance must not be negative, got {balance}")
    if not 0 <= history <= HISTORY_BLOCKS:
        raise ValueError(f"history must be 0..{HISTORY_BLOCKS} records, got {history}")
    fake = Faker("id_ID")
    fake.seed_instance(rnd.getrandbits(32))

    # Walk the past backwards from today's balance so that every record agrees with the purse.
    counter = rnd.randrange(history + 1, 400)
    when = HISTORY_EPOCH + timedelta(days=seed % 300, seconds=rnd.randrange(86_400))
    records: list[HistoryRecord] = []
    running = balance
    last_amount = 0
    for i in range(history):
        seq = counter - i
        top_ups = [a for a in (10_000, 20_000, 50_000, 100_000) if a <= running]
        if top_ups and (running > 150_000 or rnd.random() < 0.2):
            amount = rnd.choice(top_ups)
            record = HistoryRecord(to_kmt_time(when), amount, TOPUP_GATE, ProcessType.TOPUP, seq)
            signed, running = amount, running - amount  # before this top-up the card held less
        else:
            amount = rnd.randrange(3_000, 13_001, 1_000)
            record = HistoryRecord(to_kmt_time(when), amount, rnd.choice(KRL_GATES), ProcessType.FARE, seq)
            signed, running = -amount, running + amount
        if i == 0:
            last_amount = signed
        records.append(record)
        when -= timedelta(hours=rnd.randrange(3, 60), minutes=rnd.randrange(60))

    blocks = {
        PURSE.number: (PurseBlock(balance, last_amount, counter).to_bytes(),),
        HISTORY.number: tuple(r.to_bytes() for r in records) + (bytes(16),) * (HISTORY_BLOCKS - len(records)),
        CARD_INFO.number: (encode_card_number(card_number(seed, index)),) + (bytes(16),) * 3,
        EXTRA.number: (bytes(16),) * 4,
    }
    return CardImage(
        card_no=card_number(seed, index),
        idm=idm,
        pmm=PMM_KMT,
        card_key=diversify_card_key(master_key, idm),
        blocks=blocks,
        issued_balance=balance,
        holder=fake.name(),
        issued_at=(HISTORY_EPOCH + timedelta(days=seed % 300 + 1)).isoformat(),
    )
