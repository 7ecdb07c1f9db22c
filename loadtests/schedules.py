"""Load shape schedules as plain functions (no Locust import: ``kmt`` must not monkey-patch with gevent).

Each takes the peak users U, the spawn rate R, the whole run time T and the time t into the run, and
returns (users, spawn rate) or None to end the run:

- ``ramp``: from 0 to U at an even rate over the first 80% of T, then U until T.
- ``step``: U in ``steps`` equal stairs, each held T/steps.
- ``spike``: U/5 (at least 1) for 40% of T, all U at once for 20%, U/5 again until T.
- ``soak``: U (spawned at R) held for T: long runs that find leaks and slow drift.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[int, float, float, float, int], tuple[int, float] | None]


def ramp(users: int, rate: float, run_time: float, t: float, steps: int) -> tuple[int, float] | None:
    if t >= run_time:
        return None
    return users, max(users / (0.8 * run_time), 0.01)


def step(users: int, rate: float, run_time: float, t: float, steps: int) -> tuple[int, float] | None:
    if t >= run_time:
        return None
    steps = max(1, steps)
    stair = min(steps - 1, int(t / (run_time / steps)))
    return max(1, math.ceil(users * (stair + 1) / steps)), rate


def spike(users: int, rate: float, run_time: float, t: float, steps: int) -> tuple[int, float] | None:
    if t >= run_time:
        return None
    if 0.4 * run_time <= t < 0.6 * run_time:
        return users, max(rate, float(users))
    return max(1, users // 5), max(rate, float(users))


def soak(users: int, rate: float, run_time: float, t: float, steps: int) -> tuple[int, float] | None:
    return None if t >= run_time else (users, rate)


SCHEDULES: dict[str, Schedule] = {"ramp": ramp, "step": step, "spike": spike, "soak": soak}
DEFAULT_RUN_TIMES: dict[str, float] = {"soak": 1800.0}
