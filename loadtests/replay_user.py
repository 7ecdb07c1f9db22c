"""The real Locust user against recorded answers (:mod:`loadtests.replay`), for ``bench/load.py``.

    python -m loadtests.replay serve answers.json        # {"url": URL}
    KMT_REPLAY_SEED=SEED locust -f loadtests/replay_user.py -H URL --kmt-auth hmac --kmt-key-id K --kmt-secret S

``KmtReplayFrontend`` is :class:`loadtests.locustfile.KmtFrontend` unchanged (the same task, transport,
terminal, signing, checks and exact samples) whose card is the recorded one: before every top-up the
user makes a fresh copy of it as it was before the recording (``KMT_REPLAY_SEED``), with the same
seeded challenges, so every recorded command is valid for it. That copy is extra work the live user
does not do; it is counted against this user.
"""

from __future__ import annotations

import os
from typing import Any

from loadtests import locustfile as lf
from loadtests.replay import replay_card, replay_image
from terminal.flow import TopupResult
from terminal.readers import InProcessReader


class KmtReplayFrontend(lf.KmtFrontend):
    """KmtFrontend, its card replaced by a fresh copy of the recorded card before every top-up."""

    def on_start(self) -> None:
        super().on_start()
        image = replay_image(int(os.environ["KMT_REPLAY_SEED"]))
        self.card = replay_card(image)
        live_topup = self.terminal.topup

        def topup(card_no: str, amount: int, **kw: Any) -> TopupResult:
            self.card = replay_card(image)
            self.terminal.reader = InProcessReader(self.card)
            return live_topup(card_no, amount, **kw)

        self.terminal.topup = topup  # type: ignore[method-assign]


__all__ = ["KmtReplayFrontend"]
