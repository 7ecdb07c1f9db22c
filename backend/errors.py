"""The backend's single error root, the rules it names, and the response codes (DESIGN.md "Error codes").

Errors carry their code; :mod:`backend.api` is the only place that turns them into an envelope.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class Code(IntEnum):
    """``response.code`` values (docs/error-codes.md; extend, never renumber)."""

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
    KCI_UNREACHABLE = 502
    KCI_TIMEOUT = 504


DESCRIPTIONS: dict[int, str] = {
    200: "success",
    400: "bad request",
    401: "authentication missing or invalid",
    412: "terminal id / merchant id not valid",
    413: "card number not registered",
    414: "reservation does not exist",
    415: "amount must be greater than 0",
    416: "card would exceed its maximum balance",
    417: "monthly top-up limit reached",
    418: "amount below the minimum top-up",
    419: "amount above the per-transaction maximum",
    420: "card has an incomplete (suspect) transaction to recover first",
    421: "card has a pending reservation",
    422: "card blocked or not active",
    423: "card expired",
    424: "session not found or expired",
    425: "step out of order",
    426: "card response invalid",
    427: "card differs from the session's card",
    428: "balance differs from the card's purse",
    429: "reservation expired",
    430: "load balance not finished",
    431: "transaction already confirmed",
    432: "partner or merchant inactive",
    433: "duplicate reference",
    434: "sequence_data invalid",
    435: "last_balance does not match",
    500: "internal error",
    502: "KCI unreachable",
    504: "KCI timed out",
}


def http_status(code: int) -> int:
    """HTTP status for a response code: 200, 401, 400 for 400 and 412-445, else the 5xx itself (or 500)."""
    if code == Code.OK:
        return 200
    if code == Code.UNAUTHORIZED:
        return 401
    if code == Code.BAD_REQUEST or 412 <= code <= 445:
        return 400
    if code in (Code.KCI_UNREACHABLE, Code.KCI_TIMEOUT):
        return int(code)
    return 500


class BackendError(Exception):
    """Root of every error raised by :mod:`backend`; ``code`` is the response code it maps to."""

    code: ClassVar[int] = Code.INTERNAL

    @property
    def response_code(self) -> int:
        return self.code


class ConfigInvalid(BackendError):  # noqa: N818 - named after the broken rule
    """The backend's configuration is unusable (raised at start-up, never during a request)."""


class ParameterInvalid(BackendError):  # noqa: N818 - named after the broken rule
    """A request parameter is missing or malformed; ``parameter`` names it."""

    code = Code.BAD_REQUEST

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter


class AuthenticationFailed(BackendError):  # noqa: N818 - named after the broken rule
    """No credentials, unknown key, wrong signature, stale timestamp or a replayed nonce."""

    code = Code.UNAUTHORIZED


class TerminalNotAllowed(BackendError):  # noqa: N818 - named after the broken rule
    """Valid credentials used for another terminal's tid/mid."""

    code = Code.TERMINAL_NOT_VALID


class SessionUnknown(BackendError):  # noqa: N818 - named after the broken rule
    """A ``session_id`` this backend never opened, or one opened for another terminal."""

    code = Code.SESSION_NOT_FOUND


class SessionOtherCard(BackendError):  # noqa: N818 - named after the broken rule
    """A ``session_id`` opened for another card."""

    code = Code.OTHER_CARD


class KciRejected(BackendError):  # noqa: N818 - named after the broken rule
    """KCI answered with a non-200 code; it passes through to ``response.code``."""

    def __init__(self, kci_code: int, kci_message: str, operation: str) -> None:
        described = DESCRIPTIONS.get(kci_code, "KCI error")
        text = kci_message.strip() or described
        super().__init__(f"{text} (KCI {operation}: {kci_code})")
        self.kci_code = kci_code
        self.kci_message = kci_message
        self.operation = operation

    @property
    def response_code(self) -> int:
        return self.kci_code


class KciUnavailable(BackendError):  # noqa: N818 - named after the broken rule
    """Root of the ways KCI can fail to give an answer; the outcome of the call is unknown."""

    code = Code.KCI_UNREACHABLE


class KciUnreachable(KciUnavailable):
    """No connection to KCI, or it dropped the connection before answering."""

    code = Code.KCI_UNREACHABLE


class KciTimeout(KciUnavailable):
    """KCI did not answer within the configured connect/read timeout."""

    code = Code.KCI_TIMEOUT


class KciProtocolError(KciUnavailable):
    """KCI answered something that is not its envelope (not JSON, fields missing or mistyped)."""

    code = Code.KCI_UNREACHABLE


class KciCredentialsRejected(KciUnavailable):
    """KCI refused the backend's own partner credentials (a configuration fault, not the terminal's)."""

    code = Code.KCI_UNREACHABLE
