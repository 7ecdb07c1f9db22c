"""Load shapes, chosen by name (``kmt load --shape NAME`` or ``KMT_SHAPE=NAME locust -f ...``).

Each reads Locust's common options (``use_common_options``): ``--users`` (peak users U),
``--spawn-rate`` (R) and ``--run-time`` (T, the whole shape; 60 s when not given, 30 min for soak),
and ends the run at T.

- ``ramp``: from 0 to U at an even rate over the first 80% of T, then U until T.
- ``step``: U in ``KMT_STEPS`` (default 4) equal stairs, each held T/steps.
- ``spike``: U/5 (at least 1) for 40% of T, all U at once for 20%, U/5 again until T.
- ``soak``: U (spawned at R) held for T: long runs that find leaks and slow drift.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from locust import LoadTestShape

DEFAULT_RUN_TIME = 60.0


class _CommonShape(LoadTestShape):
    abstract = True
    use_common_options = True
    default_run_time = DEFAULT_RUN_TIME

    def _options(self) -> tuple[int, float, float]:
        options: Any = self.runner.environment.parsed_options if self.runner is not None else None
        users = int(getattr(options, "num_users", None) or 1)
        rate = float(getattr(options, "spawn_rate", None) or users)
        run_time = float(getattr(options, "run_time", None) or self.default_run_time)
        return users, rate, run_time

    def at(self, t: float) -> tuple[int, float] | None:
        """Users and spawn rate ``t`` seconds into the run; None ends it."""
        raise NotImplementedError

    def tick(self) -> tuple[int, float] | None:
        return self.at(time.perf_counter() - self.start_time)


class RampShape(_CommonShape):
    abstract = False

    def at(self, t: float) -> tuple[int, float] | None:
        users, _, run_time = self._options()
        if t >= run_time:
            return None
        ramp = 0.8 * run_time
        return users, max(users / ramp, 0.01)


class StepShape(_CommonShape):
    abstract = False

    def at(self, t: float) -> tuple[int, float] | None:
        users, rate, run_time = self._options()
        if t >= run_time:
            return None
        steps = max(1, int(os.environ.get("KMT_STEPS", "4")))
        stair = min(steps - 1, int(t / (run_time / steps)))
        return max(1, math.ceil(users * (stair + 1) / steps)), rate


class SpikeShape(_CommonShape):
    abstract = False

    def at(self, t: float) -> tuple[int, float] | None:
        users, rate, run_time = self._options()
        if t >= run_time:
            return None
        base = max(1, users // 5)
        if 0.4 * run_time <= t < 0.6 * run_time:
            return users, max(rate, float(users))
        return base, max(rate, float(users))


class SoakShape(_CommonShape):
    abstract = False
    default_run_time = 1800.0

    def at(self, t: float) -> tuple[int, float] | None:
        users, rate, run_time = self._options()
        return None if t >= run_time else (users, rate)


SHAPES: dict[str, type[_CommonShape]] = {
    "ramp": RampShape,
    "step": StepShape,
    "spike": SpikeShape,
    "soak": SoakShape,
}


def shape_from_env() -> type[_CommonShape] | None:
    """The shape named by ``KMT_SHAPE`` (None when unset); an unknown name raises ValueError."""
    name = os.environ.get("KMT_SHAPE", "").strip().lower()
    if not name:
        return None
    try:
        return SHAPES[name]
    except KeyError:
        raise ValueError(f"KMT_SHAPE={name!r}: one of {', '.join(SHAPES)}") from None
