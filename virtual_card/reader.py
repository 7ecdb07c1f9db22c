"""The virtual contactless reader: answers reader pseudo-APDUs like a real PC/SC reader with a card on it.

A :class:`VirtualReader` sits between a transport that carries APDUs (:mod:`virtual_card.vpcd`) and a
card that speaks FeliCa frames (:class:`ServedCard`, e.g. :class:`virtual_card.card.KmtCard`). It
accepts every dialect of :mod:`virtual_card.dialects` at once and answers with the status words of
the readers those dialects come from (``docs/pcsc.md``):

- the card stays silent (``Reply.data`` None), or its hold-back delay exceeds the reader's timeout:
  the reader waits out its timeout, then answers ``64 01`` (direct), ``D5 4x 01 90 00`` (PN532),
  ``C0 03 <n> 64 01 90 00`` (transparent exchange, ``n`` = number of the ``95`` object);
- the card leaves the field (``Reply.removed``): no response at all; the transport closes the
  connection, which pcscd reports as a removed card;
- anything malformed or unsupported: the status word :class:`~virtual_card.dialects.ApduError` names.

The reader itself never sleeps: :class:`Answer` tells the transport how long to hold the response back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from .dialects import (
    SW,
    ApduError,
    DataObject,
    DirectTransmit,
    GetData,
    GetDataKind,
    ManageSession,
    Part3Error,
    Part3Response,
    Pn532Command,
    Pn532CommunicateThru,
    Pn532DataExchange,
    Pn532ListPassiveTarget,
    Pn532Response,
    Pn532Status,
    ReaderCommand,
    ResponseApdu,
    Standard,
    SwitchProtocol,
    Tag,
    TransparentExchange,
    generic_status,
    parse_command,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 0.1
"""Seconds the reader waits for a card answer before it reports a timeout."""

PART3_VERSION = b"\x01\x00\x00"
FELICA_BAUDS = frozenset({0x01, 0x02})
"""PN532 BrTy for FeliCa: 01 = 212 kbps, 02 = 424 kbps."""


class CardReply(Protocol):
    """What a card does with one frame (``virtual_card.card.Reply``)."""

    @property
    def data(self) -> bytes | None: ...
    @property
    def delay(self) -> float: ...
    @property
    def removed(self) -> bool: ...


class ServedCard(Protocol):
    """The card side a reader needs: frames in, replies out, plus power and identity."""

    @property
    def atr(self) -> bytes: ...
    @property
    def idm(self) -> bytes: ...
    @property
    def pmm(self) -> bytes: ...
    def process(self, frame: bytes) -> CardReply: ...
    def power_on(self) -> None: ...
    def power_off(self) -> None: ...
    def reset(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """The reader's response APDU (None: the card left the field, send nothing) and its hold-back."""

    response: bytes | None
    delay: float = 0.0


class SlotCard(Protocol):
    """What a vpcd slot serves: an ATR, power control and APDUs (a reader with its card, or a stub)."""

    @property
    def atr(self) -> bytes: ...
    def power_on(self) -> None: ...
    def power_off(self) -> None: ...
    def reset(self) -> None: ...
    def transmit(self, apdu: bytes) -> Answer: ...


@dataclass(frozen=True, slots=True)
class _Exchange:
    answer: bytes | None
    delay: float
    removed: bool = False


def _ok(data: bytes) -> Answer:
    return Answer(ResponseApdu(data, SW.OK).to_bytes())


class VirtualReader:
    """A contactless reader holding one card; implements :class:`SlotCard` for vpcd."""

    def __init__(self, card: ServedCard, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.card = card
        self.timeout = timeout
        self.rf_on = True
        self.session_open = False
        self.session_timer: float | None = None

    # -- SlotCard ---------------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def power_on(self) -> None:
        self.rf_on = True
        self.card.power_on()

    def power_off(self) -> None:
        self.card.power_off()
        self._reset_state()

    def reset(self) -> None:
        self.card.reset()
        self._reset_state()
        self.rf_on = True

    def _reset_state(self) -> None:
        self.session_open = False
        self.session_timer = None

    def transmit(self, apdu: bytes) -> Answer:
        """Answer one command APDU; never raises."""
        try:
            command = parse_command(apdu)
        except Part3Error as exc:
            log.debug("rejected %s: %s", apdu.hex(), exc)
            return _ok(Part3Response((generic_status(exc.index, exc.sw),)).to_bytes())
        except ApduError as exc:
            log.debug("rejected %s: %s", apdu.hex(), exc)
            return Answer(ResponseApdu.status(exc.sw).to_bytes())
        try:
            return self._dispatch(command)
        except Part3Error as exc:
            return _ok(Part3Response((generic_status(exc.index, exc.sw),)).to_bytes())
        except ApduError as exc:
            return Answer(ResponseApdu.status(exc.sw).to_bytes())
        except Exception:  # a card bug must not take the reader down: answer like a confused reader
            log.exception("card failed on %s", apdu.hex())
            return Answer(ResponseApdu.status(SW.NO_PRECISE_DIAGNOSIS).to_bytes())

    # -- dialects ---------------------------------------------------------------------------

    def _dispatch(self, command: ReaderCommand) -> Answer:
        match command:
            case GetData():
                return self._get_data(command)
            case DirectTransmit():
                ex = self._exchange(command.frame, self.timeout)
                if ex.removed:
                    return Answer(None, ex.delay)
                if ex.answer is None:
                    return Answer(ResponseApdu.status(SW.NO_RESPONSE).to_bytes(), ex.delay)
                return Answer(ResponseApdu(ex.answer, SW.OK).to_bytes(), ex.delay)
            case Pn532DataExchange():
                if command.target != 1:
                    code = Pn532Command.IN_DATA_EXCHANGE + 1
                    return _ok(Pn532Response(code, Pn532Status.WRONG_CONTEXT).to_bytes())
                return self._pn532(Pn532Command.IN_DATA_EXCHANGE, command.frame)
            case Pn532CommunicateThru():
                return self._pn532(Pn532Command.IN_COMMUNICATE_THRU, command.frame)
            case Pn532ListPassiveTarget():
                return self._list_passive_target(command)
            case ManageSession():
                return self._manage_session(command)
            case TransparentExchange():
                return self._transparent(command)
            case SwitchProtocol():
                return self._switch_protocol(command)
        raise ApduError(f"{command.NAME} is not supported", SW.FUNCTION_NOT_SUPPORTED)

    def _get_data(self, command: GetData) -> Answer:
        value = self.card.idm if command.kind is GetDataKind.IDM else self.card.pmm
        if not self.rf_on:
            return Answer(ResponseApdu.status(SW.NO_RESPONSE).to_bytes())
        if 0 < command.le < len(value):
            return Answer(ResponseApdu.status(SW.WRONG_LE | len(value)).to_bytes())
        return _ok(value)

    def _pn532(self, code: Pn532Command, frame: bytes) -> Answer:
        ex = self._exchange(frame, self.timeout)
        if ex.removed:
            return Answer(None, ex.delay)
        if ex.answer is None:
            return Answer(_ok(Pn532Response(code + 1, Pn532Status.TIMEOUT).to_bytes()).response, ex.delay)
        return Answer(_ok(Pn532Response(code + 1, Pn532Status.OK, ex.answer).to_bytes()).response, ex.delay)

    def _list_passive_target(self, command: Pn532ListPassiveTarget) -> Answer:
        code = Pn532Command.IN_LIST_PASSIVE_TARGET + 1
        if command.max_targets not in (1, 2):
            raise ApduError(f"InListPassiveTarget: MaxTg {command.max_targets} must be 1 or 2", SW.WRONG_P1P2)
        if command.baud not in FELICA_BAUDS:  # looking for another card type finds nothing
            return _ok(Pn532Response(code, Pn532Status.OK, b"\x00").to_bytes())
        ex = self._exchange(command.polling, self.timeout)
        if ex.removed:
            return Answer(None, ex.delay)
        found = b"\x00" if ex.answer is None else b"\x01\x01" + ex.answer
        return Answer(_ok(Pn532Response(code, Pn532Status.OK, found).to_bytes()).response, ex.delay)

    def _manage_session(self, command: ManageSession) -> Answer:
        out: list[DataObject] = []
        for index, obj in enumerate(command.objects, start=1):
            match obj.tag:
                case Tag.VERSION:
                    out.append(DataObject(Tag.VERSION, PART3_VERSION))
                case Tag.START_SESSION:
                    self.session_open = True
                case Tag.END_SESSION:
                    self.session_open = False
                    self.session_timer = None
                case Tag.RF_OFF:
                    if self.rf_on:
                        self.card.power_off()
                    self.rf_on = False
                case Tag.RF_ON:
                    if not self.rf_on:
                        self.card.power_on()
                    self.rf_on = True
                case Tag.TIMER:
                    self.session_timer = self._timer(obj, index)
                case _:
                    raise Part3Error(
                        f"Manage Session tag {obj.tag:X} is not supported", index, SW.FUNCTION_NOT_SUPPORTED
                    )
        return _ok(Part3Response((generic_status(), *out)).to_bytes())

    def _transparent(self, command: TransparentExchange) -> Answer:
        timeout = self.session_timer if self.session_timer is not None else self.timeout
        out: list[DataObject] = []
        delay = 0.0
        for index, obj in enumerate(command.objects, start=1):
            match obj.tag:
                case Tag.TIMER:
                    timeout = self._timer(obj, index)
                case Tag.TXRX_FLAGS | Tag.TX_BIT_FRAMING | Tag.RX_BIT_FRAMING:
                    pass  # CRC and framing are the reader's business; FeliCa frames are whole bytes
                case Tag.TRANSCEIVE | Tag.TRANSMIT:
                    ex = self._exchange(obj.value, timeout)
                    delay += ex.delay
                    if ex.removed:
                        return Answer(None, delay)
                    if obj.tag == Tag.TRANSMIT:
                        continue
                    if ex.answer is None:
                        status = Part3Response((generic_status(index, SW.NO_RESPONSE), *out))
                        return Answer(_ok(status.to_bytes()).response, delay)
                    out.extend(Part3Response.exchange_ok(ex.answer).objects[1:])
                case _:
                    raise Part3Error(
                        f"Transparent Exchange tag {obj.tag:X} is not supported", index, SW.FUNCTION_NOT_SUPPORTED
                    )
        return Answer(_ok(Part3Response((generic_status(), *out)).to_bytes()).response, delay)

    def _switch_protocol(self, command: SwitchProtocol) -> Answer:
        if command.standard != Standard.FELICA:
            # The card only speaks FeliCa: activating it in another standard finds no answer, and
            # the reader stays on FeliCa.
            return _ok(Part3Response((generic_status(1, SW.NO_RESPONSE),)).to_bytes())
        return _ok(Part3Response((generic_status(),)).to_bytes())

    @staticmethod
    def _timer(obj: DataObject, index: int) -> float:
        if len(obj.value) != 4:
            raise Part3Error(f"timer 5F46 must be 4 bytes, got {len(obj.value)}", index, SW.WRONG_LENGTH)
        return int.from_bytes(obj.value, "little") / 1_000_000

    # -- the RF field -----------------------------------------------------------------------

    def _exchange(self, frame: bytes, timeout: float) -> _Exchange:
        """Send one frame to the card; a silent or late card costs the reader its timeout."""
        if not self.rf_on:
            return _Exchange(None, timeout)
        reply = self.card.process(frame)
        if reply.removed:
            return _Exchange(None, min(reply.delay, timeout), removed=True)
        if reply.data is None or reply.delay > timeout:
            return _Exchange(None, timeout)
        return _Exchange(reply.data, reply.delay)


class StatusWordCard:
    """A trivial slot card that answers every APDU with ``90 00`` (the benchmark's baseline)."""

    def __init__(self, atr: bytes) -> None:
        self._atr = atr
        self._ok = ResponseApdu.status(SW.OK).to_bytes()

    @property
    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> None:
        pass

    def power_off(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def transmit(self, apdu: bytes) -> Answer:
        return Answer(self._ok)


__all__ = [
    "DEFAULT_TIMEOUT",
    "Answer",
    "CardReply",
    "ServedCard",
    "SlotCard",
    "StatusWordCard",
    "VirtualReader",
]
