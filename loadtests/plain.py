"""A plain FastHttpUser: the twelve POSTs of a top-up, without card emulation, auth or checks.

The baseline of ``bench/load.py``: what one Locust process sustains when it does nothing but HTTP,
against the stack server's bare endpoint (``--bare``), beside :class:`loadtests.locustfile.KmtFrontend`.
``--plain-pacing S`` starts a user's sequences S seconds apart (default 0: back to back), so the
baseline can also run at the rate the real user reached.

    locust -f loadtests/plain.py -H http://127.0.0.1:PORT --headless -u 8 -t 10s
"""

from __future__ import annotations

import time
from typing import Any

from locust import FastHttpUser, events, task

CALLS: tuple[tuple[str, str], ...] = (
    ("/topup-kci/card-check", "card-check 1"),
    ("/topup-kci/card-check", "card-check 2"),
    ("/topup-kci/card-check", "card-check 3"),
    ("/topup-kci/pending", "pending"),
    *(("/topup-kci/update", f"update {i}") for i in range(1, 8)),
    ("/topup-kci/confirm", "confirm"),
)
BODY = (
    '{"card_no":"6032000100000000","tid":"T0000001","mid":"M0000001","step":2,'
    '"session_id":"0123456789abcdef0123456789abcdef","card_resp":"' + "0" * 64 + '"}'
)
HEADERS = {"Content-Type": "application/json"}


def _add_options(parser: Any) -> None:
    parser.add_argument("--plain-pacing", type=float, default=0.0, help="seconds between a user's sequence starts")


_hook: Any = events.init_command_line_parser  # Locust's EventHook is untyped
_hook.add_listener(_add_options)


class PlainFrontend(FastHttpUser):
    """Twelve POSTs per task, named like the real steps; nothing else."""

    _started = 0.0

    def wait_time(self) -> float:
        pacing: float = self.environment.parsed_options.plain_pacing
        return max(0.0, pacing - (time.monotonic() - self._started)) if pacing > 0 else 0.0

    @task
    def sequence(self) -> None:
        self._started = time.monotonic()
        for path, name in CALLS:
            self.client.post(path, data=BODY, headers=HEADERS, name=name)
