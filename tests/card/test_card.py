"""The card state machine, command by command, with exact answer bytes and real status flags."""

from __future__ import annotations

import pytest

from virtual_card.card import FELICA_ATR, KmtCard
from virtual_card.frames import (
    AuthRead,
    BlockListElement,
    Polling,
    ReadWithoutEncryption,
    ReadWithoutEncryptionResponse,
    RequestResponse,
    RequestService,
    RequestSystemCode,
    SearchServiceCode,
    SearchServiceCodeResponse,
    ServiceCode,
    StatusResponse,
    WriteWithoutEncryption,
)
from virtual_card.image import CardImage
from virtual_card.profile import card_check_read
from virtual_card.types import Mode

IDM = "012e1f86fdb82814"
PMM = "0120220427674eff"


def sc(code: int) -> ServiceCode:
    return ServiceCode.from_int(code)


def read(card: KmtCard, services: tuple[int, ...], blocks: tuple[tuple[int, int], ...]) -> bytes | None:
    cmd = ReadWithoutEncryption(
        card.idm,  # type: ignore[arg-type]
        tuple(sc(s) for s in services),
        tuple(BlockListElement.of(i, b) for i, b in blocks),
    )
    return card.handle(cmd.to_frame())


def test_atr_is_the_pcsc_felica_atr(card: KmtCard) -> None:
    assert card.atr == FELICA_ATR
    checksum = 0
    for byte in FELICA_ATR[1:]:
        checksum ^= byte
    assert checksum == 0  # TCK makes T0..TCK XOR to zero


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("00ffff0000", f"12 01 {IDM} {PMM}"),
        ("00ffff0100", f"14 01 {IDM} {PMM} 90b7"),
        ("0690b70100", f"14 01 {IDM} {PMM} 90b7"),
        ("0690ff0100", f"14 01 {IDM} {PMM} 90b7"),
        ("00ffff0200", f"14 01 {IDM} {PMM} 0001"),
        ("00ffff000f", f"12 01 {IDM} {PMM}"),
    ],
)
def test_polling(card: KmtCard, command: str, answer: str) -> None:
    if command.startswith("06"):
        command = "06" + "00" + command[2:]  # with LEN: 06 00 90b7 01 00
    assert card.handle(bytes.fromhex(command)) == bytes.fromhex(answer.replace(" ", ""))


@pytest.mark.parametrize("command", ["000003 0100", "00ffff0002", "0012fc0000"])
def test_polling_for_another_system_or_bad_slot_is_silent(card: KmtCard, command: str) -> None:
    assert card.handle(bytes.fromhex(command.replace(" ", ""))) is None


def test_request_service_request_response_and_system_code(card: KmtCard) -> None:
    idm = card.idm
    assert card.handle(RequestService(idm, (0x1000, 0x1017, 0x5555)).to_frame()) == bytes.fromhex(  # type: ignore[arg-type]
        f"11 03 {IDM} 03 0100 0100 ffff".replace(" ", "")
    )
    assert card.handle(RequestResponse(idm).to_frame()) == bytes.fromhex(f"0b05{IDM}00")  # type: ignore[arg-type]
    assert card.handle(RequestSystemCode(idm).to_frame()) == bytes.fromhex(f"0d0d{IDM}0190b7")  # type: ignore[arg-type]


def test_search_service_code_walks_areas_and_services(card: KmtCard) -> None:
    found = []
    for index in range(40):
        answer = card.handle(SearchServiceCode(card.idm, index).to_frame())  # type: ignore[arg-type]
        assert answer is not None
        resp = SearchServiceCodeResponse.from_bytes(answer)
        if resp.code == 0xFFFF:
            break
        found.append((resp.code, resp.end))
    assert found[0] == (0x0000, 0xFFFE)
    assert (0x1000, 0x103F) in found
    assert [c for c, e in found if e is None] == [0x1010, 0x1012, 0x1017, 0x200C, 0x200F, 0x3008, 0x300B, 0x4008]


def test_card_check_read_returns_twelve_blocks(card: KmtCard, card_image: CardImage) -> None:
    services, blocks = card_check_read()
    answer = card.handle(ReadWithoutEncryption(card.idm, services, blocks).to_bytes())  # type: ignore[arg-type]
    assert answer is not None
    assert answer[:12] == bytes.fromhex(f"cd07{IDM}0000")
    resp = ReadWithoutEncryptionResponse.from_bytes(answer)
    assert len(resp.blocks) == 12
    assert resp.blocks[0] == b"6032000100000000"
    assert resp.blocks[1] == card_image.blocks[64][0]
    assert answer[0] == 13 + 16 * 12 == len(answer)


@pytest.mark.parametrize(
    ("services", "blocks", "flags"),
    [
        ((0x1017,), ((0, 1),), "01a8"),  # purse has one block
        ((0x200F,), ((0, 20),), "01a8"),  # history has 20
        ((0x1017, 0x5555), ((0, 0),), "02a6"),  # unknown service, second in the list
        ((0x1010,), ((0, 0),), "01b1"),  # key needed: authenticate first
        ((0x1017,), ((1, 0),), "01a3"),  # service index beyond the list
        ((0x200F,), tuple((0, i) for i in range(16)), "ffa2"),  # too many blocks
        ((), ((0, 0),), "ffa1"),  # no service
    ],
)
def test_read_errors_have_real_status_flags(
    card: KmtCard, services: tuple[int, ...], blocks: tuple[tuple[int, int], ...], flags: str
) -> None:
    assert read(card, services, blocks) == bytes.fromhex(f"0c07{IDM}{flags}")


def test_access_mode_other_than_normal(card: KmtCard) -> None:
    cmd = ReadWithoutEncryption(card.idm, (sc(0x1017),), (BlockListElement(0, 0, access_mode=1),))  # type: ignore[arg-type]
    assert card.handle(cmd.to_frame()) == bytes.fromhex(f"0c07{IDM}01a7")


def test_write_without_encryption_is_refused(card: KmtCard) -> None:
    block = bytes(16)
    ro = WriteWithoutEncryption(card.idm, (sc(0x1017),), (BlockListElement.of(0, 0),), (block,))  # type: ignore[arg-type]
    keyed = WriteWithoutEncryption(card.idm, (sc(0x1010),), (BlockListElement.of(0, 0),), (block,))  # type: ignore[arg-type]
    assert StatusResponse.from_bytes(card.handle(ro.to_frame()) or b"") == StatusResponse(card.idm, 1, 0xA5)  # type: ignore[arg-type]
    assert StatusResponse.from_bytes(card.handle(keyed.to_frame()) or b"") == StatusResponse(card.idm, 1, 0xB1)  # type: ignore[arg-type]
    assert card.balance == 238_500


@pytest.mark.parametrize(
    "frame",
    [
        "",  # nothing
        "06",  # a LEN alone
        "0a04" + "ffffffffffffffff" + "00",  # another IDm
        f"04{IDM}",  # Request Response with our IDm: answered (control)
        f"06{IDM}01",  # truncated read
        "ee" + IDM,  # unknown command
    ],
)
def test_malformed_or_foreign_frames_get_silence(card: KmtCard, frame: str) -> None:
    answer = card.handle(bytes.fromhex(frame))
    if frame == f"04{IDM}":
        assert answer == bytes.fromhex(f"0b05{IDM}00")
    else:
        assert answer is None


def test_authenticated_read_before_authentication_is_silent(card: KmtCard) -> None:
    cmd = AuthRead(card.idm, 1, (sc(0x1010),), (BlockListElement.of(0, 0),))  # type: ignore[arg-type]
    assert card.handle(cmd.to_frame()) is None


def test_power_and_modes(card: KmtCard) -> None:
    assert card.mode is Mode.MODE0
    card.power_off()
    assert card.handle(Polling().to_frame()) is None
    card.power_on()
    assert card.handle(Polling().to_frame()) is not None
