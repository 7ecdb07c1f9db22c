"""The harness package's single error root."""

from __future__ import annotations


class HarnessError(Exception):
    """Wiring failed (bad URL, missing credentials, unknown card); the message says what to do."""
