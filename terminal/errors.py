"""The terminal package's single error root and the rules it names."""

from __future__ import annotations


class TerminalError(Exception):
    """Root of every error raised by :mod:`terminal`."""


class ReaderError(TerminalError):
    """The card reader failed or answered something unexpected; the message names what."""


class CardRemoved(ReaderError):  # noqa: N818 - named after the event, like the PC/SC state
    """The card is not (or no longer) in the reader's field."""


class CardTimeout(ReaderError):  # noqa: N818 - named after the event
    """The card did not answer within the timeout."""
