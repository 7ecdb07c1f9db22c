"""KCI faults on each KCI call: a clear code for the frontend, no money lost once KCI is well again."""

from __future__ import annotations

from pytest_bdd import scenarios

scenarios("faults")
