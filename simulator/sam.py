"""KCI's SAM role: builds every card command of the step table and verifies every card answer.

All bytes are built and parsed by :mod:`virtual_card`'s codec modules (frames, profile, host); this
module only chooses the commands and turns the codec's errors into KCI's rules: an unparsable frame,
bad status flags or a MAC that does not verify is :class:`CardResponseInvalidError` (426), an answer from
another card is :class:`OtherCardError` (427).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from virtual_card.errors import CardStatusError, FrameError, SecureMessagingError, WrongCardError
from virtual_card.frames import (
    Frame,
    Polling,
    PollingResponse,
    ReadWithoutEncryption,
    ReadWithoutEncryptionResponse,
)
from virtual_card.host import PURSE_READ, HostSession, PurseState, topup_write
from virtual_card.profile import TOPUP_AREAS, TOPUP_SERVICES, CardInfo, PurseBlock, card_check_read
from virtual_card.secure import diversify_card_key
from virtual_card.types import KMT_SYSTEM_CODE, IDm

from .errors import CardResponseInvalidError, OtherCardError

log = logging.getLogger(__name__)

POLLING = Polling(system_code=0xFFFF, request_code=1, time_slot=0)
"""Step 1 of card-info and load-balance: ``00ffff0100`` (wildcard system, ask for the system code)."""


@contextmanager
def card_answer(what: str) -> Iterator[None]:
    """Translate the codec's errors about a card answer into KCI's codes."""
    try:
        yield
    except WrongCardError as exc:
        raise OtherCardError(f"{what}: {exc}") from exc
    except CardStatusError as exc:
        raise CardResponseInvalidError(f"{what}: {exc}") from exc
    except (FrameError, SecureMessagingError) as exc:
        raise CardResponseInvalidError(f"{what}: {exc}") from exc


def command(frame: Frame) -> bytes:
    data = frame.to_bytes()
    log.debug(">> %s", data.hex())
    return data


def accept_polling(answer: bytes, idm: bytes) -> PollingResponse:
    """The Polling answer must be a KMT card with the registered IDm."""
    log.debug("<< %s", answer.hex())
    with card_answer("Polling response"):
        resp = PollingResponse.from_bytes(answer)
    if resp.system_code is not None and resp.system_code != KMT_SYSTEM_CODE:
        raise CardResponseInvalidError(f"Polling response: system code {resp.system_code:04X} is not KMT's 90B7")
    if resp.idm != idm:
        raise OtherCardError(f"Polling response: IDm {resp.idm.hex()} is not the registered card's {idm.hex()}")
    return resp


def card_check_command(idm: bytes) -> bytes:
    services, blocks = card_check_read()
    return command(ReadWithoutEncryption(IDm(idm), services, blocks))


def accept_card_check(answer: bytes, idm: bytes, card_no: str) -> CardInfo:
    log.debug("<< %s", answer.hex())
    with card_answer("Read Without Encryption response"):
        resp = ReadWithoutEncryptionResponse.from_bytes(answer)
        if resp.idm != idm:
            raise WrongCardError(f"answer from IDm {resp.idm.hex()}, session card is {idm.hex()}")
        if resp.sf1 or resp.sf2:
            raise CardStatusError("Read Without Encryption", resp.sf1, resp.sf2)
        info = CardInfo.from_blocks(resp.blocks)
    if info.card_no != card_no:
        raise OtherCardError(f"card number on the card is {info.card_no}, the session's is {card_no}")
    return info


def begin(master_key: bytes, idm: bytes, host_challenge: bytes) -> tuple[HostSession, bytes]:
    """Load step 2: the Authentication1 command for the card's diversified key."""
    session = HostSession.begin(idm, diversify_card_key(master_key, idm), host_challenge)
    return session, command(session.authentication1(TOPUP_AREAS, TOPUP_SERVICES))


def accept_auth1(session: HostSession, answer: bytes) -> tuple[HostSession, bytes]:
    log.debug("<< %s", answer.hex())
    with card_answer("Authentication1 response"):
        state, auth2 = session.accept_authentication1(answer)
    return state, command(auth2)


def accept_auth2(session: HostSession, answer: bytes) -> HostSession:
    log.debug("<< %s", answer.hex())
    with card_answer("Authentication2 response"):
        return session.accept_authentication2(answer)


def purse_read(session: HostSession) -> tuple[HostSession, bytes]:
    state, frame = session.read(*PURSE_READ)
    return state, command(frame)


def accept_purse_read(session: HostSession, answer: bytes) -> PurseState:
    log.debug("<< %s", answer.hex())
    with card_answer("authenticated Read response"):
        return PurseState.from_read(session.accept_read(answer))


def purse_write(
    session: HostSession, purse: PurseBlock, amount: int, when: datetime, gate: int
) -> tuple[HostSession, bytes, PurseBlock, bytes]:
    """Update 5: the authenticated Write of purse + history; returns the new purse and the record written."""
    services, blocks, data = topup_write(purse, amount, when, gate)
    state, frame = session.write(services, blocks, data)
    return state, command(frame), PurseBlock.from_bytes(data[0]), data[1]


def accept_write(session: HostSession, answer: bytes) -> None:
    log.debug("<< %s", answer.hex())
    with card_answer("authenticated Write response"):
        session.accept_write(answer)
