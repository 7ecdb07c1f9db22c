"""The virtual card package's single error root and the rules it names."""

from __future__ import annotations


class VirtualCardError(Exception):
    """Root of every error raised by :mod:`virtual_card`."""


class FrameError(VirtualCardError, ValueError):
    """A frame could not be parsed; the message names the field and byte offset."""


class SecureMessagingError(VirtualCardError):
    """A secure-messaging check failed on the host side (proof, MAC, sequence)."""


class CardImageError(VirtualCardError, ValueError):
    """A card image file is malformed or of an unknown version; the message names the field."""


class CardStatusError(SecureMessagingError):
    """The card answered with non-zero status flags."""

    def __init__(self, what: str, sf1: int, sf2: int) -> None:
        super().__init__(f"{what}: card status flags SF1={sf1:02X} SF2={sf2:02X}")
        self.sf1 = sf1
        self.sf2 = sf2


class WrongCardError(SecureMessagingError):
    """The answer came from another card (its IDm differs from the session's)."""
