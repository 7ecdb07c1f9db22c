"""terminal.pcsc_reader.PcscReader against the virtual card in a real pcscd: frames, timeouts, removal."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from terminal.errors import CardRemoved, CardTimeout, ReaderError
from terminal.pcsc_reader import Dialect, PcscReader
from terminal.readers import CardReader
from virtual_card.card import FELICA_ATR, KmtCard
from virtual_card.faults import Fault, FaultKind
from virtual_card.reader import Answer, StatusWordCard
from virtual_card.types import CommandCode
from virtual_card.vpcd import READER_NAMES, VpcdSlot

pytestmark = [pytest.mark.pcsc]

H = bytes.fromhex
READER0 = READER_NAMES[35963]

Insert = Callable[..., VpcdSlot]
MakeCard = Callable[..., KmtCard]


@pytest.fixture
def open_reader(pcscd: None) -> Iterator[Callable[..., PcscReader]]:
    opened: list[PcscReader] = []

    def make(dialect: Dialect = Dialect.DIRECT, name: str = READER0) -> PcscReader:
        reader = PcscReader(name, dialect=dialect)
        opened.append(reader)
        return reader

    yield make
    for reader in opened:
        reader.close()


@pytest.mark.parametrize("dialect", list(Dialect))
def test_transceive_in_every_dialect(
    dialect: Dialect, insert: Insert, new_card: MakeCard, open_reader: Callable[..., PcscReader]
) -> None:
    card = new_card()
    insert(card)
    reader = open_reader(dialect)
    assert isinstance(reader, CardReader)
    assert reader.wait_for_card(3.0)
    assert reader.idm() == card.idm
    assert reader.pmm() == card.pmm
    # the KCI form (no LEN) and the card form (with LEN) give the same answer, with LEN
    expected = H("1401") + card.idm + card.pmm + H("90b7")
    assert reader.transceive(H("00ffff0100"), timeout=0.5) == expected
    assert reader.transceive(H("0600ffff0100"), timeout=0.5) == expected
    read = H("06") + card.idm + H("01 0B30 01 8000")  # 300B#0 without LEN
    answer = reader.transceive(read, timeout=0.5)
    assert answer[:12] == H("1D07") + card.idm + H("0000")
    assert answer[13:29] == card.card_no.encode()


@pytest.mark.parametrize("dialect", list(Dialect))
def test_no_answer_raises_card_timeout(
    dialect: Dialect, insert: Insert, new_card: MakeCard, open_reader: Callable[..., PcscReader]
) -> None:
    insert(new_card())
    reader = open_reader(dialect)
    assert reader.wait_for_card(3.0)
    with pytest.raises(CardTimeout, match="no answer from the card"):
        reader.transceive(H("00123401 00".replace(" ", "")), timeout=0.05)
    assert reader.card_present()


def test_removal_mid_apdu_raises_card_removed_then_resumes_with_the_next_card(
    insert: Insert, new_card: MakeCard, open_reader: Callable[..., PcscReader]
) -> None:
    card = new_card()
    slot = insert(card)
    reader = open_reader()
    assert reader.wait_for_card(3.0)
    assert reader.idm() == card.idm
    card.faults.add(Fault(FaultKind.LOSE_ANSWER, CommandCode.POLLING))
    with pytest.raises(CardRemoved, match="during the exchange"):
        reader.transceive(H("00ffff0100"), timeout=0.5)
    assert reader.wait_for_removal(3.0)
    with pytest.raises(CardRemoved):
        reader.transceive(H("00ffff0100"), timeout=0.5)
    assert not reader.card_present()
    slot.remove()
    # the card goes back into the field: the same reader object reconnects by itself
    insert(card)
    assert reader.wait_for_card(3.0)
    assert reader.transceive(H("00ffff0100"), timeout=0.5)[2:10] == card.idm


def test_a_card_swap_is_a_removal_for_the_open_handle(
    insert: Insert, new_card: MakeCard, open_reader: Callable[..., PcscReader]
) -> None:
    first, second = new_card(0), new_card(1)
    slot = insert(first)
    reader = open_reader()
    assert reader.wait_for_card(3.0)
    assert reader.idm() == first.idm
    slot.remove()
    time.sleep(0.7)
    insert(second)
    assert reader.wait_for_card(3.0)
    with pytest.raises(CardRemoved):
        reader.idm()
    assert reader.idm() == second.idm


def test_unknown_reader_name_is_a_reader_error(pcscd: None) -> None:
    with pytest.raises(ReaderError, match="no PC/SC reader named 'No Such Reader'"):
        PcscReader("No Such Reader")


class HungCard(StatusWordCard):
    """A slot card that holds every response back for 30 s: the client's transmit blocks (vpcd has no timeout)."""

    def transmit(self, apdu: bytes) -> Answer:
        return Answer(H("9000"), delay=30.0)


def test_a_hung_transmit_becomes_card_timeout_without_blocking_the_caller(insert: Insert, pcscd: None) -> None:
    slot = insert(HungCard(FELICA_ATR))
    reader = PcscReader(READER0, call_slack=0.3)
    try:
        assert reader.wait_for_card(3.0)
        started = time.monotonic()
        with pytest.raises(CardTimeout, match="did not return"):
            reader.transceive(H("00ffff0100"), timeout=0.1)
        assert time.monotonic() - started < 1.5
        with pytest.raises(ReaderError, match="has not returned yet"):
            reader.idm()
        slot.remove()  # ends the hold-back: the stuck transmit returns (empty: the card is gone)
        deadline = time.monotonic() + 3.0
        while True:
            try:
                reader.idm()
            except CardRemoved:
                break
            except ReaderError as exc:
                assert "has not returned yet" in str(exc)
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        reader.close()
