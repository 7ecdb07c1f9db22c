"""Locust load tests: many frontends at once, per-step latency, SLO gates, reports.

Layout (the pure modules never import gevent or Locust, so tests and reports can use them anywhere):

- :mod:`loadtests.stats`: exact per-step samples (latency, time, error), merged across workers;
  percentiles (nearest rank, no buckets) per step and per time window.
- :mod:`loadtests.slo`: the SLO file (TOML or JSON: step -> p50..p99/max limits, error-rate limits)
  and its verdict, which becomes the process exit status.
- :mod:`loadtests.report`: ``steps.json``/``steps.csv``/``timeline.csv``/``summary.txt`` and the
  ``latency.png`` chart.
- :mod:`loadtests.admin_http`: the simulator's admin API over plain blocking HTTP (urllib), for the
  gevent process (seeding cards, reconcile).
- :mod:`loadtests.stack_server`: the embedded stack (KCI simulator + reference backend) in its own
  asyncio process; prints one JSON line (URLs, credentials, seed) and serves until stdin closes.
- :mod:`loadtests.locustfile`: the Locust user (FastHttpUser): one virtual card per user, one task per
  top-up through :func:`terminal.flow.topup`, requests named by step; the event wiring that ships
  samples and card balances from workers to the master, resumes interrupted top-ups, reconciles
  and writes the reports. :mod:`loadtests.shapes`: ramp, step, spike and soak.
- :mod:`loadtests.cli`: ``kmt load``.
- For ``bench/load.py`` (generator capacity): :mod:`loadtests.plain`, the plain FastHttpUser baseline;
  :mod:`loadtests.replay`, one recorded top-up's answers served per step (asyncio), and
  :mod:`loadtests.replay_user`, the real user against them with a fresh copy of the recorded card.

Locust runs under gevent and the stack under asyncio: they never share a process.
"""
