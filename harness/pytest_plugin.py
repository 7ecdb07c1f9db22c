"""pytest plugin of kmt-harness (entry point ``kmt_harness``): the embedded stack and terminal as fixtures."""

from __future__ import annotations
