"""Steady-state meter for ``bench/load.py``: a second locustfile (``-f user.py,bench/load_meter.py``).

With ``KMT_METER_FILE`` set, it counts the run's units (successful requests of one type and name,
``KMT_METER_UNIT`` = ``"TOPUP topup"`` or ``"POST confirm"``) and, from ``KMT_METER_WARMUP`` seconds
after the test starts for ``KMT_METER_WINDOW`` seconds, reads this process's CPU time (all threads,
user + system) and the unit count at both ends. It writes ``{"cpu_s", "units", "wall_s"}`` to the
file. Start-up (card seeding, spawning) and the end of the run (stopping users, reports, the chart)
lie outside the window, so the figure is what the generator spends per unit while it runs. The
listener is one comparison per request, the same for every user class measured.
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any

import gevent
from locust import events


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    out = os.environ.get("KMT_METER_FILE")
    if not out:
        return
    unit_type, _sep, unit_name = os.environ.get("KMT_METER_UNIT", "TOPUP topup").partition(" ")
    warmup = float(os.environ.get("KMT_METER_WARMUP", "3"))
    window = float(os.environ.get("KMT_METER_WINDOW", "8"))
    count = [0]

    def on_request(request_type: str, name: str, exception: BaseException | None = None, **__: Any) -> None:
        if exception is None and name == unit_name and request_type == unit_type:
            count[0] += 1

    def meter() -> None:
        gevent.sleep(warmup)
        cpu0, n0, t0 = _cpu(), count[0], time.monotonic()
        gevent.sleep(window)
        cpu1, n1, t1 = _cpu(), count[0], time.monotonic()
        with open(out, "w", encoding="utf-8") as fh:
            json.dump({"cpu_s": cpu1 - cpu0, "units": n1 - n0, "wall_s": t1 - t0}, fh)

    environment.events.request.add_listener(on_request)
    environment.events.test_start.add_listener(lambda **__: gevent.spawn(meter))
