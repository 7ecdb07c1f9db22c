"""Host half against card half: mutual authentication, MACed read and write, and every way it must fail.

The vectors are the ones printed in docs/protocol.md."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from virtual_card import secure
from virtual_card.card import KmtCard
from virtual_card.errors import CardStatusError, SecureMessagingError, WrongCardError
from virtual_card.factory import DEFAULT_MASTER_KEY, make_card_image
from virtual_card.frames import AuthReadResponse, AuthWrite, BlockListElement, ServiceCode
from virtual_card.host import PURSE_READ, HostSession, PurseState, topup_write
from virtual_card.profile import PURSE_CASHBACK, TOPUP_AREAS, TOPUP_SERVICES, PurseBlock
from virtual_card.types import Mode

IDM = bytes.fromhex("012e1f86fdb82814")
RH = bytes(range(16))
RC = bytes(range(16, 32))
WHEN = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)


def test_aes_cmac_matches_rfc4493() -> None:
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    assert secure.cmac(key, b"").hex() == "bb1d6929e95937287fa37d129b756746"
    msg = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    assert secure.cmac(key, msg).hex() == "070a16b46b4d4144f79bdd9dd04a287c"


def test_key_and_proof_vectors() -> None:
    k = secure.diversify_card_key(DEFAULT_MASTER_KEY, IDM)
    assert k.hex() == "dc25df271d540c33e0e9382e3f19b50e"
    sk = secure.session_key(k, RH, RC)
    assert sk.hex() == "56d3ffd955ac58c751674bce875a0f42"
    assert secure.card_proof(sk, IDM, RH, RC).hex() == "aabe68e493161a87d21ead5519c55384"
    assert secure.host_proof(sk, IDM, RH, RC).hex() == "b67b2087178491474300351d01e9085e"
    assert secure.confirmation(sk, IDM, RH).hex() == "1efd1ccd848806b34e0a8eaddd78e7f9"


def authenticate(card: KmtCard, host_challenge: bytes = RH) -> HostSession:
    host = HostSession.begin(card.idm, card.image().card_key, host_challenge)
    host, auth2 = host.accept_authentication1(
        card.handle(host.authentication1(TOPUP_AREAS, TOPUP_SERVICES).to_bytes()) or b""
    )
    return host.accept_authentication2(card.handle(auth2.to_bytes()) or b"")


def test_full_topup_exact_bytes(card: KmtCard) -> None:
    host = HostSession.begin(card.idm, card.image().card_key, RH)
    auth1 = host.authentication1(TOPUP_AREAS, TOPUP_SERVICES)
    assert auth1.to_bytes().hex() == "10012e1f86fdb8281402001000200210100c20000102030405060708090a0b0c0d0e0f"
    answer1 = card.handle(auth1.to_bytes())
    assert answer1 is not None
    assert answer1.hex() == ("2a11012e1f86fdb82814101112131415161718191a1b1c1d1e1faabe68e493161a87d21ead5519c55384")
    assert card.mode is Mode.MODE1
    host, auth2 = host.accept_authentication1(answer1)
    assert auth2.to_bytes().hex() == "12012e1f86fdb82814b67b2087178491474300351d01e9085e"
    answer2 = card.handle(auth2.to_bytes())
    assert answer2 == bytes.fromhex("1a13012e1f86fdb828141efd1ccd848806b34e0a8eaddd78e7f9")
    assert card.mode is Mode.MODE2
    host = host.accept_authentication2(answer2)

    host, read = host.read(*PURSE_READ)
    assert read.to_bytes().hex() == (
        "14012e1f86fdb8281400010210100c2009800081008101810281038104810581068107f90bd7b7760473c2"
    )
    state = PurseState.from_read(host.accept_read(card.handle(read.to_bytes()) or b""))
    assert state.purse == PurseBlock(238_500, 20_000, 17)

    host, write = host.write(*topup_write(state.purse, 10_000, WHEN, 0x117))
    assert write.to_bytes().hex() == (
        "16012e1f86fdb8281400020210100c200280008100b4ca030010270000000000000000001232a567c000002710"
        "01170000000000125caad3d2e9e6f366"
    )
    answer = card.handle(write.to_bytes())
    assert answer == bytes.fromhex("1617012e1f86fdb82814000000027be185890a44048c")
    host.accept_write(answer)
    host, read = host.read(*PURSE_READ)
    after = PurseState.from_read(host.accept_read(card.handle(read.to_bytes()) or b""))
    assert after.purse == PurseBlock(248_500, 10_000, 18)
    assert (after.last_record.amount, after.last_record.sequence, after.last_record.process_type) == (10_000, 18, 0)


def test_wrong_card_key_fails_at_authentication1(card: KmtCard) -> None:
    other = make_card_image(1, 0, master_key=bytes(16)).card_key
    host = HostSession.begin(card.idm, other, RH)
    answer = card.handle(host.authentication1(TOPUP_AREAS, TOPUP_SERVICES).to_bytes())
    with pytest.raises(SecureMessagingError, match="card proof does not verify"):
        host.accept_authentication1(answer or b"")


def test_forged_host_proof_gets_silence_and_mode0(card: KmtCard) -> None:
    host = HostSession.begin(card.idm, card.image().card_key, RH)
    card.handle(host.authentication1(TOPUP_AREAS, TOPUP_SERVICES).to_bytes())
    _, auth2 = host.accept_authentication1(
        card.handle(host.authentication1(TOPUP_AREAS, TOPUP_SERVICES).to_bytes()) or b""
    )
    forged = replace(auth2, host_proof=bytes(16))
    assert card.handle(forged.to_bytes()) is None
    assert card.mode is Mode.MODE0


def test_replayed_write_is_refused_and_applied_once(card: KmtCard) -> None:
    host = authenticate(card)
    host, read = host.read(*PURSE_READ)
    state = PurseState.from_read(host.accept_read(card.handle(read.to_bytes()) or b""))
    host, write = host.write(*topup_write(state.purse, 10_000, WHEN, 0x117))
    host.accept_write(card.handle(write.to_bytes()) or b"")
    replay = card.handle(write.to_bytes())
    assert replay is not None and replay[10:12] == b"\xff\xac"  # SF1 FF, SF2 AC: sequence
    assert card.balance == 248_500
    assert card.mode is Mode.MODE0  # the session is over

    # The same write in a new session: its MAC belongs to the old session key.
    authenticate(card, bytes(16))
    again = card.handle(write.to_bytes())
    assert again is not None and again[10:12] == b"\xff\xab"
    assert card.balance == 248_500


def test_write_with_stale_counter_is_refused(card: KmtCard) -> None:
    host = authenticate(card)
    stale = PurseBlock(card.balance, 0, 17)  # the counter the card already has
    host, write = host.write(*topup_write(stale, 10_000, WHEN, 0x117))
    host.accept_write(card.handle(write.to_bytes()) or b"")  # counter 17 -> 18: applied
    # A second write built from the same (now stale) purse also says counter 18: refused.
    host, write2 = host.write(*topup_write(stale, 10_000, WHEN, 0x117))
    answer2 = card.handle(write2.to_bytes())
    with pytest.raises(CardStatusError) as info:
        host.accept_write(answer2 or b"")
    assert (info.value.sf1, info.value.sf2) == (0x01, 0xAC)
    assert card.balance == 248_500


@pytest.mark.parametrize("bit", [0, 7, 63])
def test_mac_flipped_by_one_bit(card: KmtCard, bit: int) -> None:
    host = authenticate(card)
    host, read = host.read(*PURSE_READ)
    mac = bytearray(read.mac)
    mac[bit // 8] ^= 1 << (bit % 8)
    answer = card.handle(replace(read, mac=bytes(mac)).to_bytes())
    with pytest.raises(CardStatusError, match="SF1=FF SF2=AB"):
        host.accept_read(answer or b"")


def test_answer_with_flipped_bit_fails_host_verification(card: KmtCard) -> None:
    host = authenticate(card)
    host, read = host.read(*PURSE_READ)
    answer = bytearray(card.handle(read.to_bytes()) or b"")
    answer[15] ^= 0x01  # LEN code IDm SF1 SF2 seq(2) m, then the balance's first byte
    with pytest.raises(SecureMessagingError, match="MAC does not verify"):
        host.accept_read(bytes(answer))


def test_answer_from_another_card(card: KmtCard) -> None:
    host = authenticate(card)
    host, _ = host.read(*PURSE_READ)
    other = make_card_image(1, 1)
    forged = AuthReadResponse(other.idm, 0, 0, host.seq, (bytes(16), bytes(16)))
    with pytest.raises(WrongCardError, match="session card is 012e1f86fdb82814"):
        host.accept_read(forged.to_frame())


def test_unauthorized_service_in_session(card: KmtCard) -> None:
    host = authenticate(card)
    host, read = host.read((ServiceCode.from_int(0x3008),), (BlockListElement.of(0, 0),))
    with pytest.raises(CardStatusError) as info:
        host.accept_read(card.handle(read.to_bytes()) or b"")
    assert (info.value.sf1, info.value.sf2) == (0x01, 0xA5)


def test_cashback_and_purse_overflow() -> None:
    card = KmtCard(make_card_image(1, 2, balance=0x7FFFFF00))
    host = HostSession.begin(card.idm, card.image().card_key, RH)
    host, auth2 = host.accept_authentication1(
        card.handle(host.authentication1(TOPUP_AREAS, (*TOPUP_SERVICES, PURSE_CASHBACK)).to_bytes()) or b""
    )
    host = host.accept_authentication2(card.handle(auth2.to_bytes()) or b"")
    value = (0x1000).to_bytes(4, "little") + bytes(12)
    host, write = host.write((PURSE_CASHBACK,), (BlockListElement.of(0, 0),), (value,))
    with pytest.raises(CardStatusError) as info:
        host.accept_write(card.handle(write.to_bytes()) or b"")
    assert (info.value.sf1, info.value.sf2) == (0x01, 0x01)
    small = (0x10).to_bytes(4, "little") + bytes(12)
    host, write = host.write((PURSE_CASHBACK,), (BlockListElement.of(0, 0),), (small,))
    host.accept_write(card.handle(write.to_bytes()) or b"")
    assert card.purse == PurseBlock(0x7FFFFF10, 0x10, card.image().counter)


def test_negative_purse_value_is_underflow(card: KmtCard) -> None:
    host = authenticate(card)
    purse = PurseBlock(-5, 0, 18).to_bytes()
    host, write = host.write(*topup_write(card.purse, 1, WHEN, 1)[:2], (purse, bytes(16)))
    with pytest.raises(CardStatusError) as info:
        host.accept_write(card.handle(write.to_bytes()) or b"")
    assert (info.value.sf1, info.value.sf2) == (0x01, 0x01)


def test_write_is_atomic_when_a_later_block_is_bad(card: KmtCard) -> None:
    host = authenticate(card)
    services, blocks, data = topup_write(card.purse, 10_000, WHEN, 0x117)
    bad = AuthWrite(card.idm, 0, services, (blocks[0], BlockListElement.of(1, 3)), data)  # type: ignore[arg-type]
    host, write = host.write(bad.services, bad.blocks, bad.data)
    with pytest.raises(CardStatusError) as info:
        host.accept_write(card.handle(write.to_bytes()) or b"")
    assert (info.value.sf1, info.value.sf2) == (0x02, 0xA8)  # cyclic services are written at block 0
    assert card.balance == 238_500


def test_host_session_round_trips_as_dict(card: KmtCard) -> None:
    host = authenticate(card)
    assert HostSession.from_dict(host.to_dict()) == host
    with pytest.raises(SecureMessagingError, match="malformed"):
        HostSession.from_dict({"idm": "zz"})
