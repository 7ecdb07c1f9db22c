"""Reader dialects and the virtual reader, without pcscd: exact APDU bytes in, exact bytes out."""

from __future__ import annotations

import pytest

from virtual_card.card import KmtCard
from virtual_card.dialects import (
    SW,
    ApduError,
    CommandApdu,
    DataObject,
    DirectTransmit,
    GetData,
    GetDataKind,
    ManageSession,
    Part3Response,
    Pn532CommunicateThru,
    Pn532DataExchange,
    Pn532ListPassiveTarget,
    SwitchProtocol,
    Tag,
    TransparentExchange,
    decode_objects,
    parse_command,
)
from virtual_card.factory import make_card_image
from virtual_card.faults import Fault, FaultKind
from virtual_card.reader import VirtualReader
from virtual_card.types import CommandCode

H = bytes.fromhex
POLL = H("0600ffff0100")  # Polling with LEN, system FFFF, request code 01


@pytest.fixture
def card() -> KmtCard:
    return KmtCard(make_card_image(7, 0))


@pytest.fixture
def reader(card: KmtCard) -> VirtualReader:
    return VirtualReader(card, timeout=0.05)


def poll_answer(card: KmtCard) -> bytes:
    return H("1401") + card.idm + card.pmm + H("90b7")


def test_builders_give_the_bytes_of_felica_md_section_4(card: KmtCard) -> None:
    idm = card.idm
    read = H("10 06") + idm + H("01 0901 01 8000")
    assert GetData().to_apdu() == H("FFCA000000")
    assert GetData(GetDataKind.PMM).to_apdu() == H("FFCA010000")
    assert DirectTransmit(read).to_apdu() == H("FF00000010") + read
    assert Pn532DataExchange(read).to_apdu() == H("FF00000013 D44001") + read
    assert Pn532CommunicateThru(read).to_apdu() == H("FF00000012 D442") + read
    assert Pn532ListPassiveTarget(H("00FFFF0100")).to_apdu() == H("FF00000009 D44A0101 00FFFF0100")
    assert ManageSession((DataObject(Tag.START_SESSION),)).to_apdu() == H("FFC2000002 8100 00")
    assert SwitchProtocol().to_apdu() == H("FFC2000204 8F020300 00")
    assert TransparentExchange.transceive(read, 100_000).to_apdu() == (
        H("FFC200011D 5F4604A0860100 90020000 9510") + read + H("00")
    )


@pytest.mark.parametrize(
    "apdu",
    [
        GetData(),
        GetData(GetDataKind.PMM, 8),
        DirectTransmit(POLL),
        Pn532DataExchange(POLL),
        Pn532CommunicateThru(POLL),
        Pn532ListPassiveTarget(H("00FFFF0100")),
        ManageSession((DataObject(Tag.VERSION), DataObject(Tag.START_SESSION))),
        TransparentExchange.transceive(POLL, 5000),
        SwitchProtocol(),
    ],
)
def test_parse_inverts_build(apdu: object) -> None:
    assert hasattr(apdu, "to_apdu")
    assert parse_command(apdu.to_apdu()) == apdu


@pytest.mark.parametrize(
    ("apdu", "sw", "where"),
    [
        ("FFCA", SW.WRONG_LENGTH, "header needs 4"),
        ("00A4040000", SW.CLA_NOT_SUPPORTED, "CLA 00 at offset 0"),
        ("FFB0000010", SW.INS_NOT_SUPPORTED, "INS B0 at offset 1"),
        ("FFCA020000", SW.FUNCTION_NOT_SUPPORTED, "P1 02 at offset 2"),
        ("FFCA000100", SW.WRONG_P1P2, "P2 01 at offset 3"),
        ("FF0000000506", SW.WRONG_LENGTH, "Lc at offset 4 says 5"),
        ("FF00010002D440", SW.WRONG_P1P2, "P1 P2 01 00"),
        ("FF00000002D444", SW.FUNCTION_NOT_SUPPORTED, "PN532 command 44"),
        ("FFC2000300", SW.FUNCTION_NOT_SUPPORTED, "function P2 03"),
        ("FFC2010000", SW.WRONG_P1P2, "P1 01 at offset 2"),
    ],
)
def test_bad_apdus_name_the_byte_and_carry_the_status_word(apdu: str, sw: SW, where: str) -> None:
    with pytest.raises(ApduError, match=where) as info:
        parse_command(H(apdu))
    assert info.value.sw == sw


def test_data_objects_long_lengths_and_two_byte_tags() -> None:
    big = bytes(range(200))
    encoded = DataObject(Tag.TRANSCEIVE, big).to_bytes()
    assert encoded[:3] == H("958 1C8".replace(" ", ""))
    assert decode_objects(H("5F4604 01020304") + encoded, "t") == (
        DataObject(Tag.TIMER, H("01020304")),
        DataObject(Tag.TRANSCEIVE, big),
    )
    with pytest.raises(ApduError, match="tag 95 needs 5 byte"):
        decode_objects(H("9505 0102"), "t")


def test_command_apdu_cases() -> None:
    assert CommandApdu.from_bytes(H("FFCA0000")) == CommandApdu(0xFF, 0xCA, 0, 0)
    assert CommandApdu.from_bytes(H("FFCA000000")) == CommandApdu(0xFF, 0xCA, 0, 0, b"", 0)
    assert CommandApdu.from_bytes(H("FF000000020102")) == CommandApdu(0xFF, 0, 0, 0, H("0102"))
    assert CommandApdu.from_bytes(H("FF00000002010200")) == CommandApdu(0xFF, 0, 0, 0, H("0102"), 0)


# -- the virtual reader ------------------------------------------------------------------------


def test_get_data(reader: VirtualReader, card: KmtCard) -> None:
    assert reader.transmit(H("FFCA000000")).response == card.idm + H("9000")
    assert reader.transmit(H("FFCA010000")).response == card.pmm + H("9000")
    assert reader.transmit(H("FFCA000004")).response == H("6C08")
    assert reader.transmit(H("FFCA030000")).response == H("6A81")


def test_direct_transmit(reader: VirtualReader, card: KmtCard) -> None:
    assert reader.transmit(H("FF00000006") + POLL).response == poll_answer(card) + H("9000")
    # a payload without LEN goes through unchanged too (the card accepts both)
    assert reader.transmit(H("FF00000005 00FFFF0100")).response == poll_answer(card) + H("9000")


def test_pn532(reader: VirtualReader, card: KmtCard) -> None:
    assert reader.transmit(H("FF00000009 D44001") + POLL).response == H("D54100") + poll_answer(card) + H("9000")
    assert reader.transmit(H("FF00000008 D442") + POLL).response == H("D54300") + poll_answer(card) + H("9000")
    assert reader.transmit(H("FF00000009 D44002") + POLL).response == H("D541279000")
    assert reader.transmit(H("FF00000009 D44A0101 00FFFF0100")).response == (
        H("D54B0101") + poll_answer(card) + H("9000")
    )
    assert reader.transmit(H("FF00000009 D44A0100 00FFFF0100")).response == H("D54B009000")


def test_transparent_exchange_and_session(reader: VirtualReader, card: KmtCard) -> None:
    ok = H("C003009000")
    assert reader.transmit(H("FFC2000002810000")).response == ok + H("9000")
    assert reader.transmit(H("FFC2000002800000")).response == ok + H("8003010000 9000")
    assert reader.transmit(H("FFC20002048F02030000")).response == ok + H("9000")
    answer = poll_answer(card)
    expected = ok + H("920100 96020000 97") + bytes([len(answer)]) + answer + H("9000")
    assert reader.transmit(H("FFC2000108 9506") + POLL + H("00")).response == expected
    assert reader.transmit(H("FFC2000106") + POLL).response == expected  # bare frame, defensive
    assert reader.transmit(H("FFC2000002820000")).response == ok + H("9000")


def test_unsupported_data_objects_answer_in_c0(reader: VirtualReader) -> None:
    assert reader.transmit(H("FFC2000005 8100 FF6D00 00")).response == H("C00302 6A81 9000")
    assert reader.transmit(H("FFC20002048F02000000")).response == H("C00301 6401 9000")


def test_rf_off_silences_the_card(reader: VirtualReader, card: KmtCard) -> None:
    assert reader.transmit(H("FFC2000002830000")).response == H("C0030090009000")
    assert not card.powered
    assert reader.transmit(H("FF00000006") + POLL).response == H("6401")
    assert reader.transmit(H("FFC2000002840000")).response == H("C0030090009000")
    assert card.powered
    assert reader.transmit(H("FF00000006") + POLL).response == poll_answer(card) + H("9000")


def test_a_silent_card_gives_each_dialect_its_timeout_status(reader: VirtualReader) -> None:
    other_system = H("06001234 0100")  # Polling for a system the card does not have: no answer
    direct = reader.transmit(H("FF00000006") + other_system)
    assert direct.response == H("6401")
    assert direct.delay == pytest.approx(0.05)
    assert reader.transmit(H("FF00000009 D44001") + other_system).response == H("D541019000")
    assert reader.transmit(H("FF00000008 D442") + other_system).response == H("D543019000")
    part3 = reader.transmit(H("FFC200010F 5F460410270000 9506") + other_system + H("00"))
    assert part3.response == H("C00302 6401 9000")
    assert part3.delay == pytest.approx(0.01)  # the APDU's own timer: 10000 µs


def test_a_late_card_is_a_timeout_and_a_removed_card_sends_nothing(reader: VirtualReader, card: KmtCard) -> None:
    card.faults.add(Fault(FaultKind.DELAY, CommandCode.POLLING, delay=0.2))
    assert reader.transmit(H("FF00000006") + POLL).response == H("6401")
    card.faults.add(Fault(FaultKind.DELAY, CommandCode.POLLING, delay=0.02))
    late = reader.transmit(H("FF00000006") + POLL)
    assert late.response == poll_answer(card) + H("9000")
    assert late.delay == pytest.approx(0.02)
    card.faults.add(Fault(FaultKind.LOSE_ANSWER, CommandCode.POLLING))
    assert reader.transmit(H("FF00000008 D442") + POLL).response is None


def test_bad_apdus_never_raise(reader: VirtualReader) -> None:
    assert reader.transmit(H("FF")).response == H("6700")
    assert reader.transmit(H("FFC2000103 950500")).response == H("C00301 6700 9000")
    assert Part3Response.from_bytes(H("C00301 6700")).error == (1, SW.WRONG_LENGTH)
