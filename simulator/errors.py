"""The simulator's single error root and the rules it names; codes are KCI's (DESIGN.md)."""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class Code(IntEnum):
    """KCI response codes (DESIGN.md "Error codes"; extend, never renumber)."""

    OK = 200
    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    TERMINAL_NOT_VALID = 412
    CARD_NOT_REGISTERED = 413
    RESERVATION_NOT_FOUND = 414
    AMOUNT_NOT_POSITIVE = 415
    MAX_BALANCE = 416
    MONTHLY_LIMIT = 417
    BELOW_MINIMUM = 418
    ABOVE_MAXIMUM = 419
    SUSPECT_FIRST = 420
    PENDING_EXISTS = 421
    CARD_BLOCKED = 422
    CARD_EXPIRED = 423
    SESSION_NOT_FOUND = 424
    STEP_OUT_OF_ORDER = 425
    CARD_RESPONSE_INVALID = 426
    OTHER_CARD = 427
    BALANCE_DIFFERS = 428
    RESERVATION_EXPIRED = 429
    LOAD_NOT_FINISHED = 430
    ALREADY_CONFIRMED = 431
    PARTNER_INACTIVE = 432
    DUPLICATE_REFERENCE = 433
    SEQUENCE_DATA_INVALID = 434
    LAST_BALANCE_MISMATCH = 435
    INTERNAL = 500


def http_status(code: int) -> int:
    """HTTP status for a KCI code: 200, 401, 400 for 400 and 412-445, else 500."""
    if code == Code.OK:
        return 200
    if code == Code.UNAUTHORIZED:
        return 401
    if code == Code.BAD_REQUEST or 412 <= code <= 445:
        return 400
    return 500


class KciError(Exception):
    """Root of every error raised by :mod:`simulator`; ``code`` is the KCI code it maps to."""

    code: ClassVar[Code] = Code.INTERNAL


class BadRequestError(KciError):
    """A parameter is missing or malformed; the message names it."""

    code = Code.BAD_REQUEST


class AuthenticationFailedError(KciError):
    code = Code.UNAUTHORIZED


class TerminalNotValidError(KciError):
    code = Code.TERMINAL_NOT_VALID


class CardNotRegisteredError(KciError):
    code = Code.CARD_NOT_REGISTERED


class ReservationNotFoundError(KciError):
    code = Code.RESERVATION_NOT_FOUND


class AmountNotPositiveError(KciError):
    code = Code.AMOUNT_NOT_POSITIVE


class MaxBalanceExceededError(KciError):
    code = Code.MAX_BALANCE


class MonthlyLimitReachedError(KciError):
    code = Code.MONTHLY_LIMIT


class BelowMinimumTopupError(KciError):
    code = Code.BELOW_MINIMUM


class AboveTransactionMaximumError(KciError):
    code = Code.ABOVE_MAXIMUM


class SuspectFirstError(KciError):
    code = Code.SUSPECT_FIRST


class PendingReservationExistsError(KciError):
    code = Code.PENDING_EXISTS


class CardBlockedError(KciError):
    code = Code.CARD_BLOCKED


class CardExpiredError(KciError):
    code = Code.CARD_EXPIRED


class SessionNotFoundError(KciError):
    code = Code.SESSION_NOT_FOUND


class StepOutOfOrderError(KciError):
    code = Code.STEP_OUT_OF_ORDER


class CardResponseInvalidError(KciError):
    code = Code.CARD_RESPONSE_INVALID


class OtherCardError(KciError):
    code = Code.OTHER_CARD


class BalanceDiffersError(KciError):
    code = Code.BALANCE_DIFFERS


class ReservationExpiredError(KciError):
    code = Code.RESERVATION_EXPIRED


class LoadNotFinishedError(KciError):
    code = Code.LOAD_NOT_FINISHED


class AlreadyConfirmedError(KciError):
    code = Code.ALREADY_CONFIRMED


class PartnerInactiveError(KciError):
    code = Code.PARTNER_INACTIVE


class DuplicateReferenceError(KciError):
    code = Code.DUPLICATE_REFERENCE


class SequenceDataInvalidError(KciError):
    code = Code.SEQUENCE_DATA_INVALID


class LastBalanceMismatchError(KciError):
    code = Code.LAST_BALANCE_MISMATCH


class StateError(KciError):
    """The state file is unreadable or of another version."""

    code = Code.INTERNAL
