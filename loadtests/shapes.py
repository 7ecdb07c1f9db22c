"""Load shapes, chosen by name (``kmt load --shape NAME`` or ``KMT_SHAPE=NAME locust -f ...``).

Each reads Locust's common options (``use_common_options``): ``--users`` (peak users U),
``--spawn-rate`` (R) and ``--run-time`` (T, the whole shape; 60 s when not given, 30 min for soak),
and ends the run at T.

The schedules themselves are :mod:`loadtests.schedules` (``KMT_STEPS`` sets the stairs of ``step``).
"""

from __future__ import annotations

import os
import time
from typing import Any

from locust import LoadTestShape

from .schedules import DEFAULT_RUN_TIMES, SCHEDULES

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


def _shape(name: str) -> type[_CommonShape]:
    schedule = SCHEDULES[name]

    class Shape(_CommonShape):
        abstract = False
        default_run_time = DEFAULT_RUN_TIMES.get(name, DEFAULT_RUN_TIME)

        def at(self, t: float) -> tuple[int, float] | None:
            users, rate, run_time = self._options()
            return schedule(users, rate, run_time, t, int(os.environ.get("KMT_STEPS", "4")))

    Shape.__name__ = Shape.__qualname__ = f"{name.capitalize()}Shape"
    return Shape


SHAPES: dict[str, type[_CommonShape]] = {name: _shape(name) for name in SCHEDULES}


def shape_from_env() -> type[_CommonShape] | None:
    """The shape named by ``KMT_SHAPE`` (None when unset); an unknown name raises ValueError."""
    name = os.environ.get("KMT_SHAPE", "").strip().lower()
    if not name:
        return None
    try:
        return SHAPES[name]
    except KeyError:
        raise ValueError(f"KMT_SHAPE={name!r}: one of {', '.join(SHAPES)}") from None
