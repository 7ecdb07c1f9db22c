"""Units of the backend: the signature's worked example, the authenticator, reff_no, configuration, CLI."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backend.auth import Authenticator, bearer_headers, canonical_string, sign_request
from backend.cli import build_config, register
from backend.config import AuthScheme, BackendConfig, TerminalCredential
from backend.errors import AuthenticationFailed, ConfigInvalid
from backend.store import Store

BODY = b'{"card_no":"5050505050505050","tid":"T0000001","mid":"M0000001","step":1}'
TERMINAL = TerminalCredential("term-01", "T0000001", "M0000001", "s3cr3t-terminal-key-0001")


def test_signature_matches_the_documented_example() -> None:
    canonical = canonical_string(
        "term-01", 1747287296, "6f1c0b5e9d2a4c7f8e3b1a0d", method="POST", path="/topup-kci/card-check", body=BODY
    )
    assert canonical == (
        "KMT-HMAC-SHA256\nterm-01\n1747287296\n6f1c0b5e9d2a4c7f8e3b1a0d\nPOST\n/topup-kci/card-check\n"
        "3dd5e13820809181f4834c1513bbb4d2613914df51323abf405b28f3bdc5c6cd"
    )
    headers = sign_request(
        "term-01",
        TERMINAL.secret,
        "POST",
        "/topup-kci/card-check",
        BODY,
        now=1747287296,
        nonce="6f1c0b5e9d2a4c7f8e3b1a0d",
    )
    assert headers == {
        "X-KMT-Key-Id": "term-01",
        "X-KMT-Timestamp": "1747287296",
        "X-KMT-Nonce": "6f1c0b5e9d2a4c7f8e3b1a0d",
        "X-KMT-Signature": "9a6618b868c19c30fe76cc0d672502672476e4d4f8afe960d7378ed550eb6737",
    }


class Nonces:
    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    async def record(self, key_id: str, nonce: str, expires_at: float) -> bool:
        if (key_id, nonce) in self.seen:
            return False
        self.seen.add((key_id, nonce))
        return True


def test_authenticator_window_and_replay() -> None:
    nonces = Nonces()
    auth = Authenticator((TERMINAL,), nonces.record, window=300, clock=lambda: 1747287296.0)

    async def check(headers: dict[str, str], body: bytes = BODY) -> str:
        return (await auth.authenticate("POST", "/topup-kci/card-check", headers, body)).terminal.key_id

    signed = sign_request("term-01", TERMINAL.secret, "POST", "/topup-kci/card-check", BODY, now=1747287296 - 300)
    assert asyncio.run(check(signed)) == "term-01"
    with pytest.raises(AuthenticationFailed, match="nonce already used"):
        asyncio.run(check(signed))
    late = sign_request("term-01", TERMINAL.secret, "POST", "/topup-kci/card-check", BODY, now=1747287296 - 301)
    with pytest.raises(AuthenticationFailed, match="window"):
        asyncio.run(check(late))
    assert asyncio.run(check(bearer_headers(TERMINAL.secret))) == "term-01"
    with pytest.raises(AuthenticationFailed, match="unknown API key"):
        asyncio.run(check(bearer_headers(TERMINAL.secret + "x")))
    # A bad signature does not burn the nonce.
    fresh = sign_request("term-01", TERMINAL.secret, "POST", "/topup-kci/card-check", BODY, now=1747287296)
    with pytest.raises(AuthenticationFailed, match="does not match"):
        asyncio.run(check({**fresh, "X-KMT-Signature": "f" * 64}))
    assert asyncio.run(check(fresh)) == "term-01"


def test_bearer_only_terminal_refuses_signatures() -> None:
    bearer_only = TerminalCredential("term-09", "T9", "M9", "bearer-only-secret-0009", AuthScheme.BEARER)
    auth = Authenticator((bearer_only,), Nonces().record, window=300)
    signed = sign_request("term-09", bearer_only.secret, "POST", "/p", b"")
    with pytest.raises(AuthenticationFailed, match="bearer scheme only"):
        asyncio.run(auth.authenticate("POST", "/p", signed, b""))


def test_reff_no_is_date_and_daily_sequence(tmp_path: Path) -> None:
    now = [datetime(2025, 5, 15, 5, 0, tzinfo=UTC).timestamp()]
    store = Store(tmp_path / "reff.sqlite3", clock=lambda: now[0])

    async def run() -> list[str]:
        await store.open()
        try:
            made = [
                (await store.create_transaction("5050505050505050", "T1", "M1", 10_000, None)).reff_no for _ in range(3)
            ]
            now[0] = datetime(2025, 5, 15, 17, 0, tzinfo=UTC).timestamp()  # 00:00 the next day in Jakarta
            made.append((await store.create_transaction("5050505050505050", "T1", "M1", 10_000, None)).reff_no)
            return made
        finally:
            await store.close()

    assert asyncio.run(run()) == ["20250515000001", "20250515000002", "20250515000003", "20250516000001"]

    async def reopened() -> str:
        await store.open()
        try:
            return (await store.create_transaction("5050505050505050", "T1", "M1", 10_000, None)).reff_no
        finally:
            await store.close()

    assert asyncio.run(reopened()) == "20250516000002"


def test_terminal_credential_parsing() -> None:
    parsed = TerminalCredential.parse("term-01:T0000001:M0000001:a-long-terminal-secret:hmac")
    assert parsed == TerminalCredential("term-01", "T0000001", "M0000001", "a-long-terminal-secret", AuthScheme.HMAC)
    with pytest.raises(ConfigInvalid, match="KEY_ID:TID:MID:SECRET"):
        TerminalCredential.parse("term-01:T1:secret")
    with pytest.raises(ConfigInvalid, match="at least 16"):
        TerminalCredential.parse("term-01:T1:M1:short")
    with pytest.raises(ConfigInvalid, match="scheme"):
        TerminalCredential.parse("term-01:T1:M1:a-long-terminal-secret:basic")


def test_config_from_environment_and_options() -> None:
    env = {
        "KMT_BACKEND_KCI_URL": "http://127.0.0.1:8100",
        "KMT_BACKEND_KCI_PARTNER_ID": "P1",
        "KMT_BACKEND_KCI_PARTNER_SECRET": "partner-secret",
        "KMT_BACKEND_TERMINALS": "a:T1:M1:aaaaaaaaaaaaaaaa,b:T2:M1:bbbbbbbbbbbbbbbb:bearer",
        "KMT_BACKEND_READ_TIMEOUT": "2.5",
        "KMT_BACKEND_DB": "/tmp/x.sqlite3",
    }
    config = BackendConfig.from_env(env, port=9000)
    assert config.kci_base == "http://127.0.0.1:8100/kci/v1"
    assert [t.key_id for t in config.terminals] == ["a", "b"]
    assert config.terminals[1].scheme is AuthScheme.BEARER
    assert (config.read_timeout, config.port, config.db_path) == (2.5, 9000, Path("/tmp/x.sqlite3"))
    assert BackendConfig.from_env({**env, "KMT_BACKEND_KCI_URL": "http://h:1/kci/v1/"}).kci_base == "http://h:1/kci/v1"
    with pytest.raises(ConfigInvalid, match="kci_partner_secret"):
        BackendConfig.from_env({"KMT_BACKEND_KCI_URL": "http://h", "KMT_BACKEND_KCI_PARTNER_ID": "P"})
    with pytest.raises(ConfigInvalid, match="malformed"):
        BackendConfig.from_env({**env, "KMT_BACKEND_READ_TIMEOUT": "soon"})
    with pytest.raises(ConfigInvalid, match="unique"):
        BackendConfig.from_env({**env, "KMT_BACKEND_TERMINALS": "a:T1:M1:aaaaaaaaaaaaaaaa,b:T2:M1:aaaaaaaaaaaaaaaa"})


def test_cli_options_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMT_BACKEND_KCI_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("KMT_BACKEND_KCI_PARTNER_ID", "P-env")
    monkeypatch.setenv("KMT_BACKEND_KCI_PARTNER_SECRET", "secret-env")
    monkeypatch.delenv("KMT_BACKEND_DB", raising=False)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["backend", "--kci-url", "http://127.0.0.1:2", "--port", "8080", "--terminal", "t:T1:M1:0123456789abcdef"]
    )
    config = build_config(args)
    assert (config.kci_url, config.kci_partner_id, config.port) == ("http://127.0.0.1:2", "P-env", 8080)
    assert config.db_path == Path("kmt-backend.sqlite3")
    assert config.terminals[0].tid == "T1"
    memory = build_config(parser.parse_args(["backend", "--db", ":memory:"]))
    assert memory.db_path is None


def test_decode_body_reads_json_and_forms() -> None:
    from backend.api import decode_body
    from backend.errors import ParameterInvalid

    assert decode_body("application/x-www-form-urlencoded", b"card_no=1&step=2") == {"card_no": "1", "step": "2"}
    assert decode_body("application/x-www-form-urlencoded", b' {"step": 2}') == {"step": 2}
    assert decode_body("text/plain", b"step=3") == {"step": "3"}
    assert decode_body("application/json", b"  ") == {}
    for content_type, raw in [
        ("application/x-www-form-urlencoded", b"a=1&&b"),
        ("application/x-www-form-urlencoded", b"\xff=1"),
        ("application/json", b"step=1"),
        ("text/plain", b"[1]"),
    ]:
        with pytest.raises(ParameterInvalid, match=r"^body: "):
            decode_body(content_type, raw)


def test_backend_codes_are_kcis_plus_its_own_gateway_codes() -> None:
    """DESIGN.md: KCI's envelope carries the backend's numbers. The two packages keep their own enums (the
    backend's is its public contract, KCI's the simulator's), so drift between them is caught here."""
    from backend.errors import Code as BackendCode
    from simulator.errors import Code as KciCode

    assert {c.name: c.value for c in KciCode}.items() <= {c.name: c.value for c in BackendCode}.items()
    assert {c.value for c in BackendCode} - {c.value for c in KciCode} == {502, 504}
