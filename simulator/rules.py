"""Business rules that decide whether a top-up may be reserved (pure functions over records).

Order of the checks (first broken rule wins): card registered (413), card usable (422 blocked or
inactive, 423 expired), reference unused (433), amount > 0 (415), minimum (418), per-transaction
maximum (419), no suspect reservation (420), no open reservation (421), maximum balance (416),
monthly limit (417).
"""

from __future__ import annotations

from collections.abc import Iterable

from .clock import local
from .config import Limits
from .errors import (
    AboveTransactionMaximumError,
    AmountNotPositiveError,
    BelowMinimumTopupError,
    CardBlockedError,
    CardExpiredError,
    MaxBalanceExceededError,
    MonthlyLimitReachedError,
)
from .model import Card, CardStatus, Reservation, ReservationStatus

MONTHLY_STATES = frozenset(
    {
        ReservationStatus.PENDING,
        ReservationStatus.IN_PROGRESS,
        ReservationStatus.LOADED,
        ReservationStatus.SUCCESS,
    }
)
"""Reservations that count against the monthly limit (expired ones do not)."""


def card_expired(card: Card, now: float) -> bool:
    return local(now).strftime("%Y-%m-%d") > card.expires


def account_status(card: Card, now: float) -> str:
    if card.status == CardStatus.ACTIVE and card_expired(card, now):
        return "EXPIRED"
    return card.status


def check_card_usable(card: Card, now: float) -> None:
    if card.status != CardStatus.ACTIVE:
        raise CardBlockedError(f"card {card.card_no} is {card.status}")
    if card_expired(card, now):
        raise CardExpiredError(f"card {card.card_no} expired on {card.expires}")


def check_amount(limits: Limits, amount: int) -> None:
    if amount <= 0:
        raise AmountNotPositiveError(f"amount must be greater than 0, got {amount}")
    if amount < limits.min_topup:
        raise BelowMinimumTopupError(f"amount {amount} is below the minimum top-up of {limits.min_topup}")
    if amount > limits.max_per_transaction:
        raise AboveTransactionMaximumError(
            f"amount {amount} is above the per-transaction maximum of {limits.max_per_transaction}"
        )


def check_max_balance(limits: Limits, balance: int, amount: int) -> None:
    if balance + amount > limits.max_balance:
        raise MaxBalanceExceededError(
            f"balance {balance} + amount {amount} would exceed the maximum balance of {limits.max_balance}"
        )


def month_total(reservations: Iterable[Reservation], now: float) -> int:
    """Sum of the card's reserved and loaded amounts in the calendar month (WIB) of ``now``."""
    month = local(now).strftime("%Y-%m")
    return sum(
        r.amount for r in reservations if r.status in MONTHLY_STATES and local(r.trx_time).strftime("%Y-%m") == month
    )


def check_monthly(limits: Limits, reservations: Iterable[Reservation], amount: int, now: float) -> None:
    used = month_total(reservations, now)
    if used + amount > limits.monthly_limit:
        raise MonthlyLimitReachedError(
            f"monthly top-ups {used} + {amount} would exceed the monthly limit of {limits.monthly_limit}"
        )
