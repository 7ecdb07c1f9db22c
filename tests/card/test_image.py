"""Card images on disk and the reproducible factory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from virtual_card.card import KmtCard
from virtual_card.errors import CardImageError
from virtual_card.factory import DEFAULT_MASTER_KEY, card_number, make_card_image
from virtual_card.image import CardImage
from virtual_card.secure import diversify_card_key


def test_factory_is_reproducible_and_unique() -> None:
    assert make_card_image(7, 3) == make_card_image(7, 3)
    numbers = {make_card_image(7, i).card_no for i in range(50)}
    idms = {make_card_image(7, i).idm for i in range(50)}
    assert len(numbers) == len(idms) == 50
    assert card_number(7, 3) == "6032000700000003"


def test_factory_card_is_consistent(card_image: CardImage) -> None:
    assert card_image.card_key == diversify_card_key(DEFAULT_MASTER_KEY, card_image.idm)
    assert card_image.idm[:2] == b"\x01\x2e"
    assert card_image.holder  # Faker, id_ID
    assert card_image.issued_balance == card_image.balance
    assert make_card_image(1, 5, balance=12_345).balance == 12_345


def test_save_load_round_trip_keeps_state(tmp_path: Path, card: KmtCard) -> None:
    card.pay_fare(3_000, 0x0101, datetime(2026, 12, 1, tzinfo=UTC))
    path = tmp_path / "cards" / "card.json"
    card.image().save(path)
    loaded = CardImage.load(path)
    assert loaded == card.image()
    assert loaded.balance == 235_500 and loaded.fares_total == 3_000
    assert json.loads(path.read_text())["format"] == "kmt-card-image"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "format must be"),
        ({"version": 9}, "unsupported version 9"),
        ({"idm": "0102"}, "idm must be 8 bytes"),
        ({"card_no": "12ab"}, "card_no must be 16 digits"),
        ({"issued_balance": "10"}, "issued_balance must be an integer"),
        ({"blocks": {}}, "blocks\\['1010'\\] must be a list of 1 blocks"),
        ({"system_code": "zzzz"}, "system_code must be 4 hex digits"),
    ],
)
def test_malformed_image_names_the_field(card_image: CardImage, change: dict[str, object], message: str) -> None:
    data = card_image.to_dict() | change
    with pytest.raises(CardImageError, match=message):
        CardImage.from_dict(data)


def test_load_missing_or_not_json(tmp_path: Path) -> None:
    with pytest.raises(CardImageError, match="No such file"):
        CardImage.load(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CardImageError, match="not JSON"):
        CardImage.load(tmp_path / "bad.json")
