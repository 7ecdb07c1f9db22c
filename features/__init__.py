"""The Gherkin suite: the top-up protocol as scenarios that check any backend (pytest-bdd).

Features by capability (``features/<area>/*.feature``), one test module per area that binds them
(``test_<area>.py``, with the steps only that area uses), shared steps and fixtures in ``conftest.py``,
and :mod:`features.driver`, which speaks the API so steps stay one-liners. Every scenario ends with
the simulator's reconciliation of every card it touched (the money invariant of DESIGN.md).

Run it on the embedded stack with ``pytest features`` (in this checkout) or ``pytest --pyargs features``
(installed), or against another backend with ``--backend-url`` and the KCI simulator it uses
(``--kci-url``); see the README.
"""
