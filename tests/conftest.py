"""Shared fixtures: virtual cards and their images."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image
from virtual_card.image import CardImage


@pytest.fixture
def card_image() -> CardImage:
    """Card 0 of seed 1: 6032000100000000, balance 238,500."""
    return make_card_image(1, 0)


@pytest.fixture
def card(card_image: CardImage) -> KmtCard:
    """A virtual card whose challenges are fixed (16..31), so its answers are exact bytes."""
    return KmtCard(card_image, rng=lambda n: bytes(range(16, 16 + n)))


@pytest.fixture
def make_card() -> Callable[..., KmtCard]:
    """Factory: ``make_card(index, balance=...)`` for more cards of seed 1."""

    def make(index: int, **kwargs: int) -> KmtCard:
        return KmtCard(make_card_image(1, index, **kwargs))

    return make
