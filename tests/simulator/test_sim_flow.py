from __future__ import annotations

import pytest

from sim_driver import Driver, make_card


@pytest.mark.asyncio
async def test_full_top_up(driver: Driver) -> None:
    card = make_card(0)
    info = await driver.card_info(card)
    assert info["balance"] == 50_000
    done = await driver.top_up(card, 20_000)
    assert done["status"] == "SUCCESS"
    assert card.balance == 70_000
