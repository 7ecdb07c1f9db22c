"""Card removal before and after each card command, then resumption (money conserved, no double load)."""

from __future__ import annotations

from pytest_bdd import scenarios

scenarios("removal")
