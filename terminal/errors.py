"""The terminal package's single error root and the rules it names."""

from __future__ import annotations


class TerminalError(Exception):
    """Root of every error raised by :mod:`terminal`; ``step`` names the protocol step, when known."""

    step: str | None = None


class ReaderError(TerminalError):
    """The card reader failed or answered something unexpected; the message names what."""


class CardRemoved(ReaderError):  # noqa: N818 - named after the event, like the PC/SC state
    """The card is not (or no longer) in the reader's field."""


class CardTimeout(ReaderError):  # noqa: N818 - named after the event
    """The card did not answer within the timeout."""


class ProtocolViolation(TerminalError):  # noqa: N818 - named after the broken rule
    """The backend answered something the seed's API does not allow; the message names the field."""


class BackendUnreachable(TerminalError):  # noqa: N818 - named after the event
    """The backend could not be reached or did not answer in time; the message says what to check."""


class StepFailed(TerminalError):  # noqa: N818 - named after the event
    """The backend refused a step: ``code`` and ``message`` are its ``response`` envelope."""

    def __init__(self, step: str, code: int, message: str) -> None:
        super().__init__(f"{step}: code {code}: {message}")
        self.step = step
        self.code = code
        self.message = message
