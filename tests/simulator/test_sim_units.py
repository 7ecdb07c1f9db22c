"""Pieces without HTTP: reconciliation findings, the store, the CLI registration, auth headers."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from simulator.auth import SIGNATURE_HEADER, sign_request, signature, verify_request
from simulator.cli import register
from simulator.errors import AuthenticationFailedError, BadRequestError, Code, StateError, http_status
from simulator.model import Card, LedgerEntry, Reservation, ReservationStatus
from simulator.money import parse_reports, reconcile
from simulator.store import SqliteStore, Store


def reservation(number: str, status: str, amount: int = 10_000, card_no: str = "1" * 16) -> Reservation:
    return Reservation(number, f"ref-{number}", "P", card_no, "T", "M", amount, status, 0.0, 900.0)


def test_reconcile_reports_findings_as_data() -> None:
    store = Store()
    store.put(Card("1" * 16, "00" * 8, issued_balance=50_000))
    store.put(reservation("R1", ReservationStatus.SUCCESS))
    store.put(reservation("R2", ReservationStatus.LOADED))
    store.put(reservation("R3", ReservationStatus.EXPIRED))
    store.put(reservation("R4", ReservationStatus.IN_PROGRESS))
    ok = reconcile(store, parse_reports([{"card_no": "1" * 16, "balance": 65_000, "fares": 5_000}]))
    assert ok["ok"] is True
    assert [f["kind"] for f in ok["findings"]] == ["unresolved_in_progress"]
    assert ok["cards"] == [
        {"card_no": "1" * 16, "issued": 50_000, "loads": 20_000, "fares": 5_000, "expected": 65_000, "balance": 65_000}
    ]
    for seq in (1, 2):
        store.append_ledger(LedgerEntry(seq, 0.0, "LOADED", "1" * 16, "R1", 10_000))
    bad = reconcile(
        store, parse_reports([{"card_no": "1" * 16, "balance": 75_000}, {"card_no": "2" * 16, "balance": 0}])
    )
    assert bad["ok"] is False
    assert sorted(f["kind"] for f in bad["findings"]) == [
        "balance_mismatch",
        "loaded_twice",
        "unknown_card",
        "unresolved_in_progress",
    ]


@pytest.mark.parametrize(
    "items", [{"card_no": "1"}, [1], [{"card_no": 1, "balance": 1}], [{"card_no": "1", "balance": 1.5}]]
)
def test_reconcile_input_is_checked(items: object) -> None:
    with pytest.raises(BadRequestError):
        parse_reports(items)


def test_sqlite_store_round_trip_and_schema_check(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = SqliteStore(path)
    store.put(Card("1" * 16, "00" * 8, issued_balance=1))
    res = reservation("R1", ReservationStatus.PENDING)
    store.put(res)
    assert store.next_number("reservation") == 1
    store.close()
    again = SqliteStore(path)
    assert again.cards["1" * 16].issued_balance == 1
    assert again.reservation_by_ref("P", "ref-R1") == res
    assert again.next_number("reservation") == 2
    again.reset()
    assert again.cards == {} and again.next_number("reservation") == 3
    again.close()
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("UPDATE record SET doc = '99' WHERE kind = 'meta' AND key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="schema 99"):
        SqliteStore(path)


def test_http_status_of_codes() -> None:
    assert [
        http_status(c) for c in (Code.OK, Code.UNAUTHORIZED, Code.BAD_REQUEST, Code.CARD_BLOCKED, Code.INTERNAL)
    ] == [
        200,
        401,
        400,
        400,
        500,
    ]


def test_signature_is_bound_to_every_part() -> None:
    base = ("P1", "secret", "POST", "/kci/v1/card-info", b"{}", 1_700_000_000)
    sig = signature(*base)
    assert len(sig) == 64
    for i, other in enumerate(("P2", "secret2", "GET", "/kci/v1/x", b"{ }", 1_700_000_001)):
        changed = list(base)
        changed[i] = other
        assert signature(*changed) != sig  # type: ignore[arg-type]
    headers = sign_request("P1", "secret", "POST", "/kci/v1/card-info", b"{}", 1_700_000_000)
    verify_request(
        headers, secret="secret", method="POST", path="/kci/v1/card-info", body=b"{}", now=1_700_000_100, skew=300
    )
    with pytest.raises(AuthenticationFailedError, match="300 s"):
        verify_request(
            headers, secret="secret", method="POST", path="/kci/v1/card-info", body=b"{}", now=1_700_000_400, skew=300
        )
    with pytest.raises(AuthenticationFailedError, match="does not verify"):
        verify_request(
            headers | {SIGNATURE_HEADER: "00" * 32},
            secret="secret",
            method="POST",
            path="/kci/v1/card-info",
            body=b"{}",
            now=1_700_000_000,
            skew=300,
        )


def test_cli_registers_kci() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["kci", "--port", "0", "--state", "x.sqlite", "--seed", "3", "--cards", "2"])
    assert (args.port, args.state, args.seed, args.cards) == (0, Path("x.sqlite"), 3, 2)
    assert callable(args.func)


@pytest.mark.asyncio
async def test_old_sessions_are_pruned_but_confirmable_ones_kept() -> None:
    from simulator.clock import Clock
    from simulator.config import Limits
    from simulator.model import Partner, Session

    store, clock = Store(), Clock()
    from simulator.service import KciService

    service = KciService(store, clock, limits=Limits(), master_key=bytes(16), kci_secret=b"k", node=43)
    loaded = reservation("R1", ReservationStatus.LOADED)
    loaded.session_id = "a" * 32
    store.put(loaded)
    for sid, kind, number in (("a" * 32, "load-balance", "R1"), ("b" * 32, "card-info", None)):
        store.put(Session(sid, kind, "P", "1" * 16, "T", "M", "00" * 8, 0.0, 1.0, reservation_number=number))
    store.put(Partner("P", "s"))
    assert service.prune_sessions() == 1
    assert list(store.sessions) == ["a" * 32]
