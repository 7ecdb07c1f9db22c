"""A plain FastHttpUser: the twelve POSTs of a top-up, without card emulation, auth or checks.

The baseline of ``bench/load.py``: what one Locust process sustains when it does nothing but HTTP,
against the stack server's bare endpoint (``--bare``), beside :class:`loadtests.locustfile.KmtFrontend`.

    locust -f loadtests/plain.py -H http://127.0.0.1:PORT --headless -u 8 -t 10s
"""

from __future__ import annotations

from locust import FastHttpUser, task

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


class PlainFrontend(FastHttpUser):
    """Twelve POSTs per task, named like the real steps; nothing else."""

    @task
    def sequence(self) -> None:
        for path, name in CALLS:
            self.client.post(path, data=BODY, headers=HEADERS, name=name)
