"""Fault hooks: each kind on one chosen command, and the card's state afterwards."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from virtual_card.card import KmtCard
from virtual_card.errors import VirtualCardError
from virtual_card.faults import Fault, FaultKind
from virtual_card.host import PURSE_READ, HostSession, PurseState, topup_write
from virtual_card.profile import TOPUP_AREAS, TOPUP_SERVICES
from virtual_card.types import CommandCode, Mode

POLL = bytes.fromhex("00ffff0100")
WHEN = datetime(2026, 12, 4, tzinfo=UTC)


def up_to_write(card: KmtCard) -> tuple[HostSession, bytes]:
    host = HostSession.begin(card.idm, card.image().card_key, bytes(16))
    host, auth2 = host.accept_authentication1(
        card.handle(host.authentication1(TOPUP_AREAS, TOPUP_SERVICES).to_bytes()) or b""
    )
    host = host.accept_authentication2(card.handle(auth2.to_bytes()) or b"")
    host, read = host.read(*PURSE_READ)
    state = PurseState.from_read(host.accept_read(card.handle(read.to_bytes()) or b""))
    host, write = host.write(*topup_write(state.purse, 10_000, WHEN, 0x117))
    return host, write.to_bytes()


@pytest.mark.parametrize(
    ("kind", "applied"),
    [
        (FaultKind.NO_ANSWER, False),
        (FaultKind.TEAR_BEFORE_COMMIT, False),
        (FaultKind.LOSE_ANSWER, True),
        (FaultKind.TEAR_AFTER_COMMIT, True),
    ],
)
def test_removal_around_the_write(card: KmtCard, kind: FaultKind, applied: bool) -> None:
    before = card.balance
    _, write = up_to_write(card)
    card.faults.add(Fault(kind, CommandCode.WRITE))
    reply = card.process(write)
    assert reply.data is None and reply.removed
    assert not card.powered and card.mode is Mode.MODE0
    assert card.handle(POLL) is None  # out of the field
    card.power_on()
    assert card.balance == before + (10_000 if applied else 0)
    assert card.handle(write) is None  # Mode 0 now: the old session is gone


def test_nth_matching_command(card: KmtCard) -> None:
    card.faults.add(Fault(FaultKind.NO_ANSWER, CommandCode.POLLING, nth=3))
    assert card.handle(POLL) is not None
    assert card.handle(bytes.fromhex("0c" + card.idm.hex())) is not None  # other commands do not count
    assert card.handle(POLL) is not None
    assert card.handle(POLL) is None
    card.power_on()
    assert card.handle(POLL) is not None  # fired once, then disarmed
    assert len(card.faults) == 0


def test_delay_and_corrupt(card: KmtCard) -> None:
    clean = card.handle(POLL)
    assert clean is not None
    card.faults.add(Fault(FaultKind.DELAY, delay=0.25))
    reply = card.process(POLL)
    assert (reply.data, reply.delay, reply.removed) == (clean, 0.25, False)
    card.faults.add(Fault(FaultKind.CORRUPT, byte_index=1, mask=0x80))
    corrupted = card.handle(POLL)
    assert corrupted is not None
    assert corrupted[1] == 0x81 and corrupted[2:] == clean[2:]


def test_fault_round_trips_and_rejects_nonsense() -> None:
    fault = Fault(FaultKind.CORRUPT, CommandCode.READ, nth=2, mask=3)
    assert Fault.from_dict(fault.to_dict()) == fault
    with pytest.raises(VirtualCardError, match="nth"):
        Fault(FaultKind.NO_ANSWER, nth=0)
    with pytest.raises(VirtualCardError, match="positive delay"):
        Fault(FaultKind.DELAY)
    with pytest.raises(VirtualCardError, match="malformed"):
        Fault.from_dict({"kind": "explode"})
