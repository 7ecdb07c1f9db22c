"""The virtual card in a real pcscd reader (vsmartcard vpcd), seen through pyscard: no mocks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from smartcard import scard
from smartcard.CardMonitoring import CardMonitor, CardObserver
from smartcard.System import readers

from virtual_card.card import FELICA_ATR, KmtCard
from virtual_card.faults import Fault, FaultKind
from virtual_card.reader import VirtualReader
from virtual_card.types import CommandCode
from virtual_card.vpcd import READER_NAMES, CloseReason, VpcdSlot

pytestmark = [pytest.mark.pcsc]

H = bytes.fromhex
POLL = H("0600ffff0100")
READER0 = READER_NAMES[35963]
READER1 = READER_NAMES[35964]

Insert = Callable[..., VpcdSlot]
MakeCard = Callable[..., KmtCard]


class Raw:
    """pyscard's low-level API on one reader: exact hresults and raw responses."""

    def __init__(self, reader: str) -> None:
        hresult, self.context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert hresult == scard.SCARD_S_SUCCESS
        self.reader = reader
        self.card: Any = None
        self.protocol = 0

    def present(self) -> bool:
        hresult, states = scard.SCardGetStatusChange(self.context, 0, [(self.reader, scard.SCARD_STATE_UNAWARE)])
        assert hresult in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT)
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)

    def wait(self, present: bool, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while self.present() != present:
            assert time.monotonic() < deadline, f"{self.reader}: card present != {present} after {timeout} s"
            time.sleep(0.02)

    def connect(self) -> bytes:
        self.wait(True)
        hresult, self.card, self.protocol = scard.SCardConnect(
            self.context, self.reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        )
        assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)
        hresult, _name, _state, _protocol, atr = scard.SCardStatus(self.card)
        assert hresult == scard.SCARD_S_SUCCESS
        return bytes(atr)

    def transmit(self, apdu: bytes) -> tuple[int, bytes]:
        hresult, response = scard.SCardTransmit(self.card, self.protocol, list(apdu))
        return hresult, bytes(response)

    def ok(self, apdu: bytes) -> bytes:
        hresult, response = self.transmit(apdu)
        assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)
        return response

    def close(self) -> None:
        if self.card is not None:
            scard.SCardDisconnect(self.card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self.context)


@pytest.fixture
def raw() -> Iterator[Callable[[str], Raw]]:
    opened: list[Raw] = []

    def make(reader: str = READER0) -> Raw:
        r = Raw(reader)
        opened.append(r)
        return r

    yield make
    for r in opened:
        r.close()


def poll_answer(card: KmtCard) -> bytes:
    return H("1401") + card.idm + card.pmm + H("90b7")


def test_pyscard_lists_the_readers_and_reads_atr_and_idm(
    insert: Insert, new_card: MakeCard, raw: Callable[[str], Raw]
) -> None:
    names = [str(r) for r in readers()]
    assert READER0 in names
    assert READER1 in names
    card = new_card()
    insert(card)
    r = raw(READER0)
    assert r.connect() == FELICA_ATR == H("3B8F8001804F0CA0000003061100 3B0000000042")
    assert r.ok(H("FFCA000000")) == card.idm + H("9000")
    assert r.ok(H("FFCA010000")) == card.pmm + H("9000")


def test_card_monitor_sees_insertion_and_removal(insert: Insert, new_card: MakeCard) -> None:
    events: list[tuple[str, str, bytes]] = []
    changed = threading.Condition()

    class Observer(CardObserver):  # type: ignore[misc]
        def update(self, observable: object, handlers: tuple[list[Any], list[Any]]) -> None:
            added, removed = handlers
            with changed:
                events.extend(("added", str(c.reader), bytes(c.atr)) for c in added)
                events.extend(("removed", str(c.reader), bytes(c.atr)) for c in removed)
                changed.notify_all()

    def wait_for(kind: str) -> None:
        with changed:
            ok = changed.wait_for(lambda: any(e[0] == kind and e[1] == READER1 for e in events), timeout=5)
        assert ok, f"no {kind} event for {READER1}: {events}"

    monitor = CardMonitor()
    observer = Observer()
    monitor.addObserver(observer)
    try:
        time.sleep(0.3)  # the monitor's first sweep reports what is already there
        with changed:
            events.clear()
        slot = insert(new_card(), port=35964)
        wait_for("added")
        assert ("added", READER1, FELICA_ATR) in events
        slot.remove()
        wait_for("removed")
    finally:
        monitor.deleteObserver(observer)


def dialect_cases(card: KmtCard) -> list[tuple[str, bytes, bytes]]:
    answer = poll_answer(card)
    read = H("10 06") + card.idm + H("01 0B30 01 8000")  # Read Without Encryption 300B#0: the card number
    read_answer = card.handle(read)
    assert read_answer is not None
    part3_ok = H("C003009000")
    return [
        ("get data idm", H("FFCA000000"), card.idm + H("9000")),
        ("get data pmm", H("FFCA010000"), card.pmm + H("9000")),
        ("direct", H("FF00000006") + POLL, answer + H("9000")),
        ("direct read", H("FF00000010") + read, read_answer + H("9000")),
        ("acr122 InDataExchange", H("FF00000009 D44001") + POLL, H("D54100") + answer + H("9000")),
        ("acr122 InCommunicateThru", H("FF00000012 D442") + read, H("D54300") + read_answer + H("9000")),
        ("acr122 InListPassiveTarget", H("FF00000009 D44A0101 00FFFF0100"), H("D54B0101") + answer + H("9000")),
        ("part3 start session", H("FFC2000002810000"), part3_ok + H("9000")),
        ("part3 switch to FeliCa", H("FFC20002048F02030000"), part3_ok + H("9000")),
        (
            "part3 transparent exchange",
            H("FFC200010F 5F460420A10700 9506") + POLL + H("00"),
            part3_ok + H("920100 96020000 9714") + answer + H("9000"),
        ),
        ("part3 end session", H("FFC2000002820000"), part3_ok + H("9000")),
        ("unknown INS", H("FFB0000010"), H("6D00")),
        ("unknown CLA", H("00A4040000"), H("6E00")),
        ("unknown PN532 command", H("FF00000002D444"), H("6A81")),
    ]


def test_every_dialect_through_pcscd_exact_bytes(insert: Insert, new_card: MakeCard, raw: Callable[[str], Raw]) -> None:
    card = new_card()
    cases = dialect_cases(new_card())  # same image, separate state: expected answers
    insert(card)
    r = raw(READER0)
    r.connect()
    for name, apdu, expected in cases:
        assert r.ok(apdu) == expected, name


def test_a_card_that_does_not_answer_gives_the_timeout_status(
    insert: Insert, new_card: MakeCard, raw: Callable[[str], Raw]
) -> None:
    card = new_card()
    insert(card)
    r = raw(READER0)
    r.connect()
    silent = H("0600123401 00".replace(" ", ""))  # Polling for system 1234: the card stays silent
    assert r.ok(H("FF00000006") + silent) == H("6401")
    assert r.ok(H("FF00000009 D44001") + silent) == H("D541019000")
    assert r.ok(H("FF00000008 D442") + silent) == H("D543019000")
    assert r.ok(H("FFC2000108 9506") + silent + H("00")) == H("C003016401 9000")
    card.faults.add(Fault(FaultKind.DELAY, CommandCode.POLLING, delay=0.5))  # later than the 0.1 s timeout
    started = time.monotonic()
    assert r.ok(H("FF00000006") + POLL) == H("6401")
    assert 0.09 < time.monotonic() - started < 0.45
    assert r.ok(H("FF00000006") + POLL) == poll_answer(card) + H("9000")  # the card itself is still there


def test_removal_in_the_middle_of_an_apdu(insert: Insert, new_card: MakeCard, raw: Callable[[str], Raw]) -> None:
    card = new_card()
    slot = insert(card)
    r = raw(READER0)
    r.connect()
    assert r.ok(H("FF00000006") + POLL) == poll_answer(card) + H("9000")
    card.faults.add(Fault(FaultKind.LOSE_ANSWER, CommandCode.POLLING))
    hresult, response = r.transmit(H("FF00000006") + POLL)
    assert (hresult, response) == (scard.SCARD_S_SUCCESS, b"")  # vpcd: success with an empty response
    assert slot.wait_gone(2.0)
    assert slot.close_reason is CloseReason.CARD_LEFT
    hresult, _ = r.transmit(H("FFCA000000"))
    assert hresult in (scard.SCARD_E_NOT_TRANSACTED, scard.SCARD_W_REMOVED_CARD)
    r.wait(False)
    hresult, _ = r.transmit(H("FFCA000000"))
    assert hresult in (scard.SCARD_E_NOT_TRANSACTED, scard.SCARD_W_REMOVED_CARD)


def test_swapping_cards_in_a_slot(insert: Insert, new_card: MakeCard, raw: Callable[[str], Raw]) -> None:
    first, second = new_card(0), new_card(1)
    assert first.idm != second.idm
    slot = insert(first)
    r = raw(READER0)
    r.connect()
    assert r.ok(H("FFCA000000")) == first.idm + H("9000")
    slot.swap(VirtualReader(second, timeout=0.1))
    hresult, _ = r.transmit(H("FFCA000000"))
    assert hresult == scard.SCARD_W_REMOVED_CARD  # pcscd saw the slot empty: the old handle is dead
    r2 = raw(READER0)
    r2.connect()
    assert r2.ok(H("FFCA000000")) == second.idm + H("9000")
    assert r2.ok(H("FF00000006") + POLL) == poll_answer(second) + H("9000")
    assert slot.present


def test_two_readers_two_cards_at_the_same_time(insert: Insert, new_card: MakeCard, raw: Callable[[str], Raw]) -> None:
    cards = {READER0: new_card(0), READER1: new_card(1)}
    insert(cards[READER0], port=35963)
    insert(cards[READER1], port=35964)
    results: dict[str, list[bytes]] = {}
    errors: list[BaseException] = []

    def work(reader: str) -> None:
        try:
            r = Raw(reader)
            try:
                r.connect()
                results[reader] = [r.ok(H("FF00000006") + POLL) for _ in range(200)]
            finally:
                r.close()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in cards]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    for name, card in cards.items():
        assert set(results[name]) == {poll_answer(card) + H("9000")}


def test_a_reader_from_a_copied_driver_is_independent(
    insert: Insert, new_card: MakeCard, raw: Callable[[str], Raw], require_port: Callable[[int], None]
) -> None:
    require_port(36000)
    a, b = new_card(0), new_card(2)
    insert(a, port=35963)
    insert(b, port=36000)
    ra, rb = raw(READER0), raw(READER_NAMES[36000])
    ra.connect()
    rb.connect()
    assert ra.ok(H("FFCA000000")) == a.idm + H("9000")
    assert rb.ok(H("FFCA000000")) == b.idm + H("9000")
