"""Partner authentication of the calling backend (docs/kci-api.md "Authentication").

    X-KCI-Partner: <partner_id>
    X-KCI-Timestamp: <unix seconds>
    X-KCI-Signature: hex(HMAC-SHA256(secret, partner_id \\n timestamp \\n METHOD \\n path \\n hex(sha256(body))))

``path`` is the URL path (``/kci/v1/card-info``), without query. The backend's KCI client imports
:func:`sign_request`; the simulator checks with :func:`verify_request`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from .errors import AuthenticationFailedError

PARTNER_HEADER = "X-KCI-Partner"
TIMESTAMP_HEADER = "X-KCI-Timestamp"
SIGNATURE_HEADER = "X-KCI-Signature"


def signature(  # noqa: PLR0917 - the contract's argument order
    partner_id: str, secret: str, method: str, path: str, body: bytes, timestamp: int
) -> str:
    message = "\n".join((partner_id, str(timestamp), method.upper(), path, hashlib.sha256(body).hexdigest())).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_request(  # noqa: PLR0917 - the contract's argument order
    partner_id: str, secret: str, method: str, path: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The three headers that authenticate one request (``now`` defaults to the real clock)."""
    ts = int(time.time() if now is None else now)
    return {
        PARTNER_HEADER: partner_id,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: signature(partner_id, secret, method, path, body, ts),
    }


def claimed_partner(headers: Mapping[str, str]) -> str:
    partner_id = headers.get(PARTNER_HEADER)
    if not partner_id:
        raise AuthenticationFailedError(f"{PARTNER_HEADER} header is missing")
    return partner_id


def verify_request(
    headers: Mapping[str, str], *, secret: str, method: str, path: str, body: bytes, now: float, skew: int
) -> None:
    """Raise :class:`AuthenticationFailedError` naming what is missing or wrong."""
    partner_id = claimed_partner(headers)
    ts_text, sig = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
    if not ts_text:
        raise AuthenticationFailedError(f"{TIMESTAMP_HEADER} header is missing")
    if not sig:
        raise AuthenticationFailedError(f"{SIGNATURE_HEADER} header is missing")
    try:
        ts = int(ts_text)
    except ValueError as exc:
        raise AuthenticationFailedError(f"{TIMESTAMP_HEADER} must be integer unix seconds") from exc
    if abs(now - ts) > skew:
        raise AuthenticationFailedError(f"{TIMESTAMP_HEADER} {ts} is more than {skew} s from KCI's clock {int(now)}")
    expected = signature(partner_id, secret, method, path, body, ts)
    if not hmac.compare_digest(expected.encode(), sig.lower().encode()):
        raise AuthenticationFailedError(f"{SIGNATURE_HEADER} does not verify")
