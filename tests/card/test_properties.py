"""Property tests: whatever bytes reach the card, it never raises and answers None or a well-formed frame."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image
from virtual_card.frames import COMMANDS, RESPONSES, parse_command, unframe

CARD_IMAGE = make_card_image(1, 0)
IDM = CARD_IMAGE.idm


def well_formed(answer: bytes) -> bool:
    payload = unframe(answer)
    kind = RESPONSES[payload[0]]
    return answer[0] == len(answer) and kind.from_bytes(answer).to_frame() == answer


frames = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda code, rest: bytes([code]) + IDM + rest, st.sampled_from(sorted(COMMANDS)), st.binary(max_size=48)),
    st.builds(lambda code, rest: bytes([code]) + rest, st.sampled_from(sorted(COMMANDS)), st.binary(max_size=24)),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=6))
def test_card_never_raises(sequence: list[bytes]) -> None:
    card = KmtCard(CARD_IMAGE)
    for frame in sequence:
        answer = card.handle(frame)
        assert answer is None or well_formed(answer)
    assert card.balance == CARD_IMAGE.balance  # random bytes can never authenticate and write


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(COMMANDS)), st.binary(min_size=0, max_size=40))
def test_parser_round_trips_what_it_accepts(code: int, rest: bytes) -> None:
    data = bytes([code]) + IDM + rest
    try:
        frame = parse_command(data)
    except ValueError:
        return
    assert frame.to_bytes() == unframe(data)
