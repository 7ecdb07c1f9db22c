"""What the load generator's per-request shortcuts must keep: valid signatures, fresh nonces,
the same step names, and a terminal call log that stays bounded."""

from __future__ import annotations

import asyncio
import json
import random
import re

import pytest

from backend.auth import HEADER_NONCE, HEADER_TIMESTAMP, Authenticator, sign_request
from backend.config import TerminalCredential
from backend.errors import AuthenticationFailed
from loadtests.replay import replay_card, replay_image
from terminal.api import ApiRequest, Endpoint
from terminal.errors import TerminalError
from terminal.readers import InProcessReader
from terminal.terminal import Auth, CallRecord, RequestSigner, TopupTerminal

KEY_ID, SECRET = "kmt-terminal-01", "c0d71378052085ee4f141125271cadb0"
NOW = 1_764_880_000.0


def _authenticator() -> tuple[Authenticator, set[str]]:
    seen: set[str] = set()

    async def record(key_id: str, nonce: str, expires_at: float) -> bool:
        if nonce in seen:
            return False
        seen.add(nonce)
        return True

    credential = TerminalCredential(KEY_ID, "T0000001", "M0000001", SECRET)
    return Authenticator((credential,), record, 300, clock=lambda: NOW), seen


def test_signer_headers_pass_the_backend_check_and_never_repeat_a_nonce() -> None:
    authenticator, seen = _authenticator()
    signer = RequestSigner(Auth.hmac(KEY_ID, SECRET, **{"X-Extra": "1"}), clock=lambda: NOW)
    body = json.dumps({"card_no": "6032000100000000", "step": 1}).encode()
    nonces = []
    for _ in range(500):
        headers = signer.headers("POST", "/topup-kci/card-check", body)
        asyncio.run(authenticator.authenticate("POST", "/topup-kci/card-check", headers, body))
        nonces.append(headers[HEADER_NONCE])
        assert headers["Content-Type"] == "application/json" and headers["X-Extra"] == "1"
        assert headers[HEADER_TIMESTAMP] == str(int(NOW))
    assert len(set(nonces)) == 500 == len(seen)
    assert all(re.fullmatch(r"[0-9a-f]{32}", n) for n in nonces)
    assert RequestSigner(Auth.hmac(KEY_ID, SECRET)).headers("POST", "/x", b"")[HEADER_NONCE][:16] != nonces[0][:16]


def test_signer_signature_is_the_reference_one_and_covers_path_and_body() -> None:
    signer = RequestSigner(Auth.hmac(KEY_ID, SECRET), clock=lambda: NOW)
    headers = signer.headers("POST", "/topup-kci/update", b'{"step":5}')
    reference = sign_request(
        KEY_ID, SECRET, "POST", "/topup-kci/update", b'{"step":5}', now=NOW, nonce=headers[HEADER_NONCE]
    )
    assert headers == {"Content-Type": "application/json", **reference}
    authenticator, _ = _authenticator()
    tampered = signer.headers("POST", "/topup-kci/update", b'{"step":5}')
    with pytest.raises(AuthenticationFailed, match="signature does not match"):
        asyncio.run(authenticator.authenticate("POST", "/topup-kci/update", tampered, b'{"step":6}'))


def test_signer_bearer_and_none_schemes() -> None:
    bearer = RequestSigner(Auth.bearer("key-1", **{"X-Extra": "2"})).headers("POST", "/topup-kci/pending", b"{}")
    assert bearer == {"Content-Type": "application/json", "X-Extra": "2", "Authorization": "Bearer key-1"}
    assert Auth().headers("POST", "/topup-kci/pending", b"{}") == {"Content-Type": "application/json"}


def test_step_names_and_paths() -> None:
    assert ApiRequest(Endpoint.UPDATE, {}, 5).name == "update 5"
    assert ApiRequest(Endpoint.UPDATE, {}, 12).name == "update 12"
    assert ApiRequest(Endpoint.CONFIRM, {}).name == "confirm"
    assert ApiRequest(Endpoint.CARD_CHECK, {}, 3).path == "/topup-kci/card-check"


class _Canned:
    """A transport answering every call with a refusal, so each top-up is one recorded call."""

    def post(self, request: ApiRequest, body: bytes, headers: dict[str, str]) -> tuple[int, object]:
        return 200, {"response": {"code": 403, "message": "no"}, "data": {}}


def _terminal(**opts: int | None) -> TopupTerminal:
    card = replay_card(replay_image(random.randrange(1000, 10_000)))
    return TopupTerminal(_Canned(), InProcessReader(card), tid="T0000001", mid="M0000001", **opts)


def test_call_log_is_bounded_and_keeps_the_newest() -> None:
    terminal = _terminal(max_calls=40)
    for _ in range(500):
        result = terminal.topup("6032000100000000", 10_000)
        assert result.code == 403 and result.failed_step == "card-check 1"
        assert 0 < len(terminal.calls) <= 50  # at most 1.25 x the limit
    assert len(_terminal(max_calls=None).calls) == 0
    unbounded = _terminal(max_calls=None)
    for _ in range(300):
        unbounded.topup("6032000100000000", 10_000)
    assert len(unbounded.calls) == 300


def test_no_call_log_but_on_call_still_sees_every_call() -> None:
    terminal = _terminal(max_calls=0)
    seen: list[CallRecord] = []
    terminal.topup("6032000100000000", 10_000)
    assert terminal.calls == []
    terminal.on_call = seen.append
    terminal.topup("6032000100000000", 10_000)
    assert [(c.kind, c.step, c.code) for c in seen] == [("api", "card-check 1", 403)] and terminal.calls == []
    with pytest.raises(TerminalError, match="max_calls"):
        _terminal(max_calls=-1)
