"""The loadtests package's single error root and the rules it names."""

from __future__ import annotations


class LoadTestError(Exception):
    """Root of every error raised by :mod:`loadtests`."""


class SloFileError(LoadTestError):
    """The SLO file cannot be read or breaks its format; the message names the file and the key."""


class StackInfoError(LoadTestError):
    """The stack server's JSON line is missing or lacks a field; the message names it."""


class CardBlockExhausted(LoadTestError):  # noqa: N818 - named after the broken rule
    """A worker started more users than its block of card indexes holds (``--kmt-block-size``)."""


class AdminCallFailed(LoadTestError):  # noqa: N818 - named after the event
    """The simulator's admin API refused a call or could not be reached."""
