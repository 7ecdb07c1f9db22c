"""The frame codec: exact bytes both ways, LEN handling, value objects, errors that name the field."""

from __future__ import annotations

import pytest

from virtual_card.errors import FrameError
from virtual_card.frames import (
    COMMANDS,
    RESPONSES,
    Authentication1,
    Authentication1Response,
    Authentication2,
    Authentication2Response,
    AuthRead,
    AuthReadResponse,
    AuthWrite,
    AuthWriteResponse,
    BlockListElement,
    Frame,
    Polling,
    PollingResponse,
    ReadWithoutEncryption,
    ReadWithoutEncryptionResponse,
    RequestResponse,
    RequestResponseResponse,
    RequestService,
    RequestServiceResponse,
    RequestSystemCode,
    RequestSystemCodeResponse,
    SearchServiceCode,
    SearchServiceCodeResponse,
    ServiceCode,
    StatusResponse,
    WriteWithoutEncryption,
    add_len,
    has_len,
    parse_command,
    unframe,
)
from virtual_card.types import IDm, PMm

IDM = IDm(bytes.fromhex("0102030405060708"))
PMM = PMm(bytes.fromhex("0120220427674eff"))
B = bytes(range(16))
S = ServiceCode.from_int(0x1017)
E = BlockListElement.of(0, 0)

SAMPLES: list[tuple[Frame, str]] = [
    (Polling(0xFFFF, 1, 0), "00ffff0100"),
    (PollingResponse(IDM, PMM, b"\x90\xb7"), "01" + IDM.hex() + PMM.hex() + "90b7"),
    (PollingResponse(IDM, PMM), "01" + IDM.hex() + PMM.hex()),
    (RequestService(IDM, (0x1000, 0x1017)), "02" + IDM.hex() + "02" + "0010" + "1710"),
    (RequestServiceResponse(IDM, (1, 0xFFFF)), "03" + IDM.hex() + "02" + "0100" + "ffff"),
    (RequestResponse(IDM), "04" + IDM.hex()),
    (RequestResponseResponse(IDM, 2), "05" + IDM.hex() + "02"),
    (ReadWithoutEncryption(IDM, (S,), (E,)), "06" + IDM.hex() + "01" + "1710" + "01" + "8000"),
    (ReadWithoutEncryptionResponse(IDM, 0, 0, (B,)), "07" + IDM.hex() + "0000" + "01" + B.hex()),
    (ReadWithoutEncryptionResponse(IDM, 1, 0xA6), "07" + IDM.hex() + "01a6"),
    (WriteWithoutEncryption(IDM, (S,), (E,), (B,)), "08" + IDM.hex() + "0117100180" + "00" + B.hex()),
    (StatusResponse(IDM, 0xFF, 0xA2), "09" + IDM.hex() + "ffa2"),
    (SearchServiceCode(IDM, 0x0102), "0a" + IDM.hex() + "0201"),
    (SearchServiceCodeResponse(IDM, 0x1000, 0x103F), "0b" + IDM.hex() + "00103f10"),
    (RequestSystemCode(IDM), "0c" + IDM.hex()),
    (RequestSystemCodeResponse(IDM, (0x90B7,)), "0d" + IDM.hex() + "01" + "90b7"),
    (
        Authentication1(IDM, (0x1000,), (ServiceCode.from_int(0x1010),), B),
        "10" + IDM.hex() + "01" + "0010" + "01" + "1010" + B.hex(),
    ),
    (Authentication1Response(IDM, B, B[::-1]), "11" + IDM.hex() + B.hex() + B[::-1].hex()),
    (Authentication2(IDM, B), "12" + IDM.hex() + B.hex()),
    (Authentication2Response(IDM, B), "13" + IDM.hex() + B.hex()),
    (AuthRead(IDM, 1, (S,), (E,), bytes(8)), "14" + IDM.hex() + "0001" + "011710" + "018000" + "00" * 8),
    (
        AuthReadResponse(IDM, 0, 0, 1, (B,), b"\x11" * 8),
        "15" + IDM.hex() + "0000" + "0001" + "01" + B.hex() + "11" * 8,
    ),
    (AuthReadResponse(IDM, 0xFF, 0xAB, 3), "15" + IDM.hex() + "ffab" + "0003" + "00" + "00" * 8),
    (
        AuthWrite(IDM, 2, (S,), (E,), (B,), b"\x22" * 8),
        "16" + IDM.hex() + "0002" + "011710" + "018000" + B.hex() + "22" * 8,
    ),
    (AuthWriteResponse(IDM, 0, 0, 2, b"\x33" * 8), "17" + IDM.hex() + "0000" + "0002" + "33" * 8),
]


@pytest.mark.parametrize(("frame", "payload"), SAMPLES, ids=lambda v: type(v).__name__ if isinstance(v, Frame) else "")
def test_exact_bytes_both_ways(frame: Frame, payload: str) -> None:
    assert frame.to_bytes().hex() == payload
    assert frame.to_frame() == bytes([len(payload) // 2 + 1]) + bytes.fromhex(payload)
    assert type(frame).from_bytes(bytes.fromhex(payload)) == frame
    assert type(frame).from_bytes(frame.to_frame()) == frame


@pytest.mark.parametrize(("frame", "payload"), SAMPLES, ids=lambda v: type(v).__name__ if isinstance(v, Frame) else "")
def test_no_payload_looks_like_a_frame(frame: Frame, payload: str) -> None:
    """LEN is detected by data[0] == len(data); no payload of ours may satisfy that by accident
    (except Search Service Code's service answer, below)."""
    assert not has_len(bytes.fromhex(payload))


def test_search_service_response_without_len_is_the_one_ambiguous_layout() -> None:
    payload = SearchServiceCodeResponse(IDM, 0x1017).to_bytes()
    assert len(payload) == payload[0] == 0x0B
    assert SearchServiceCodeResponse.from_bytes(add_len(payload)).code == 0x1017


def test_seed_polling_example_is_a_payload() -> None:
    data = bytes.fromhex("00ffff0100")
    assert unframe(data) == data
    assert unframe(b"\x06" + data) == data
    assert parse_command(data) == Polling(0xFFFF, 1, 0)


def test_every_code_has_one_type() -> None:
    assert sorted(COMMANDS) == [0x00, 0x02, 0x04, 0x06, 0x08, 0x0A, 0x0C, 0x10, 0x12, 0x14, 0x16]
    assert sorted(RESPONSES) == [c + 1 for c in sorted(COMMANDS)]


def test_block_list_elements_two_and_three_bytes() -> None:
    assert BlockListElement.of(0, 5).to_bytes() == bytes.fromhex("8005")
    assert BlockListElement.of(2, 0x1234).to_bytes() == bytes.fromhex("023412")
    assert BlockListElement(1, 7, access_mode=1).to_bytes() == bytes.fromhex("9107")
    cmd = ReadWithoutEncryption(IDM, (S, S, S), (BlockListElement.of(2, 0x1234), BlockListElement(1, 3, 0, True)))
    parsed = ReadWithoutEncryption.from_bytes(cmd.to_bytes())
    assert parsed.blocks == (BlockListElement(2, 0x1234, 0, True), BlockListElement(1, 3, 0, True))
    with pytest.raises(FrameError, match="3-byte form"):
        BlockListElement(0, 300)


def test_service_code_value_object() -> None:
    purse = ServiceCode.from_int(0x1010)
    assert (purse.number, purse.attribute, purse.code) == (64, 0x10, 0x1010)
    assert purse.to_bytes() == b"\x10\x10"
    assert purse.needs_key and purse.is_purse and not purse.is_read_only
    ro = ServiceCode.from_int(0x200F)
    assert not ro.needs_key and ro.is_cyclic and ro.is_read_only
    assert str(ServiceCode.from_int(0x300B)) == "300B"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty frame"),
        (bytes.fromhex("00ffff01"), "time slot needs 1 byte"),
        (bytes.fromhex("06") + IDM + b"\x01\x17", "service code 0 needs 2 byte"),
        (bytes.fromhex("06") + IDM + b"\x01\x17\x10\x01\x80", "block list element 0 block"),
        (bytes.fromhex("04") + IDM + b"\x00", "1 unexpected byte"),
        (bytes.fromhex("ee00"), "unknown command code 0xee"),
    ],
)
def test_errors_name_the_field(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        parse_command(data)


def test_read_response_with_wrong_data_length() -> None:
    bad = "07" + IDM.hex() + "0000" + "02" + B.hex()
    with pytest.raises(FrameError, match="2 block"):
        ReadWithoutEncryptionResponse.from_bytes(bytes.fromhex(bad))


def test_wrong_code_for_type() -> None:
    with pytest.raises(FrameError, match="expected 0x01"):
        PollingResponse.from_bytes(bytes.fromhex("00ffff0100"))
