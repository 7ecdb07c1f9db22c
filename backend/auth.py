"""Terminal authentication: a bearer API key, or an HMAC-SHA256 request signature.

Client side (imported by the terminal library): :func:`bearer_headers` and :func:`sign_request`.
Server side: :class:`Authenticator` (the nonce store is passed in, so replays are refused across restarts).

Signature scheme ``KMT-HMAC-SHA256`` (docs/backend-api.md has a worked example)::

    X-KMT-Key-Id:    the terminal's key id
    X-KMT-Timestamp: unix seconds, integer, within +-window of the backend's clock
    X-KMT-Nonce:     16-64 characters of A-Z a-z 0-9 _ -, never reused by this key within the window
    X-KMT-Signature: lowercase hex HMAC-SHA256(secret, canonical)

    canonical = "KMT-HMAC-SHA256\n" + key_id + "\n" + timestamp + "\n" + nonce + "\n"
                + METHOD + "\n" + path + "\n" + hex(sha256(body))

``path`` is the request path without query string (``/topup-kci/update``); ``body`` the exact bytes sent.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from .config import AuthScheme, TerminalCredential
from .errors import AuthenticationFailed

SCHEME_NAME = "KMT-HMAC-SHA256"
HEADER_KEY_ID = "X-KMT-Key-Id"
HEADER_TIMESTAMP = "X-KMT-Timestamp"
HEADER_NONCE = "X-KMT-Nonce"
HEADER_SIGNATURE = "X-KMT-Signature"

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


def canonical_string(key_id: str, timestamp: int, nonce: str, *, method: str, path: str, body: bytes) -> str:
    """The text that is signed (see the module docstring)."""
    return "\n".join(
        (SCHEME_NAME, key_id, str(timestamp), nonce, method.upper(), path, hashlib.sha256(body).hexdigest())
    )


def signature(secret: str, key_id: str, timestamp: int, nonce: str, *, method: str, path: str, body: bytes) -> str:
    message = canonical_string(key_id, timestamp, nonce, method=method, path=path, body=body).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_request(
    key_id: str,
    secret: str,
    method: str,
    path: str,
    body: bytes,
    *,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers that authenticate one request with the HMAC scheme (a fresh nonce unless one is given)."""
    timestamp = int(time.time() if now is None else now)
    nonce = secrets.token_hex(16) if nonce is None else nonce
    return {
        HEADER_KEY_ID: key_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature(secret, key_id, timestamp, nonce, method=method, path=path, body=body),
    }


def bearer_headers(api_key: str) -> dict[str, str]:
    """Headers that authenticate one request with the bearer API key scheme."""
    return {"Authorization": f"Bearer {api_key}"}


NonceRecorder = Callable[[str, str, float], Awaitable[bool]]
"""``record(key_id, nonce, expires_at) -> True`` when the nonce is new, False when it was seen already."""


@dataclass(frozen=True, slots=True)
class Authenticated:
    terminal: TerminalCredential
    scheme: AuthScheme


class Authenticator:
    """Checks a request's credentials against the configured terminals; raises AuthenticationFailed."""

    def __init__(
        self,
        terminals: tuple[TerminalCredential, ...],
        record_nonce: NonceRecorder,
        window: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._by_key_id = {t.key_id: t for t in terminals}
        self._by_key_digest = {hashlib.sha256(t.secret.encode()).digest(): t for t in terminals}
        self._record_nonce = record_nonce
        self._window = window
        self._clock = clock

    async def authenticate(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Authenticated:
        if HEADER_SIGNATURE in headers or HEADER_KEY_ID in headers:
            if "Authorization" in headers:
                raise AuthenticationFailed("send either Authorization: Bearer or X-KMT-* signature headers, not both")
            return await self._hmac(method, path, headers, body)
        authorization = headers.get("Authorization")
        if authorization is None:
            raise AuthenticationFailed(
                "authentication required: Authorization: Bearer <api key> or X-KMT-Key-Id/Timestamp/Nonce/Signature"
            )
        return self._bearer(authorization)

    def _bearer(self, authorization: str) -> Authenticated:
        kind, _, key = authorization.partition(" ")
        if kind.lower() != "bearer" or not key.strip():
            raise AuthenticationFailed("Authorization: expected 'Bearer <api key>'")
        key = key.strip()
        candidate = self._by_key_digest.get(hashlib.sha256(key.encode()).digest())
        if candidate is None or not hmac.compare_digest(candidate.secret.encode(), key.encode()):
            raise AuthenticationFailed("Authorization: unknown API key")
        if not candidate.scheme.allows(AuthScheme.BEARER):
            raise AuthenticationFailed(f"terminal {candidate.key_id} must sign its requests (X-KMT-Signature)")
        return Authenticated(candidate, AuthScheme.BEARER)

    async def _hmac(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Authenticated:
        values: dict[str, str] = {}
        for name in (HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE):
            value = headers.get(name)
            if not value:
                raise AuthenticationFailed(f"{name} header missing")
            values[name] = value.strip()
        key_id = values[HEADER_KEY_ID]
        terminal = self._by_key_id.get(key_id)
        if terminal is None:
            raise AuthenticationFailed(f"{HEADER_KEY_ID}: unknown key id")
        if not terminal.scheme.allows(AuthScheme.HMAC):
            raise AuthenticationFailed(f"terminal {key_id} uses the bearer scheme only")
        if not _TIMESTAMP.match(values[HEADER_TIMESTAMP]):
            raise AuthenticationFailed(f"{HEADER_TIMESTAMP}: unix seconds expected")
        timestamp = int(values[HEADER_TIMESTAMP])
        now = self._clock()
        if abs(now - timestamp) > self._window:
            raise AuthenticationFailed(f"{HEADER_TIMESTAMP}: outside the +-{self._window} s window")
        nonce = values[HEADER_NONCE]
        if not _NONCE.match(nonce):
            raise AuthenticationFailed(f"{HEADER_NONCE}: 16-64 characters of A-Z a-z 0-9 _ - expected")
        given = values[HEADER_SIGNATURE].lower()
        if not _SIGNATURE.match(given):
            raise AuthenticationFailed(f"{HEADER_SIGNATURE}: 64 hex characters expected")
        expected = signature(terminal.secret, key_id, timestamp, nonce, method=method, path=path, body=body)
        if not hmac.compare_digest(expected, given):
            raise AuthenticationFailed(f"{HEADER_SIGNATURE}: signature does not match")
        # Recorded only after the signature checks out, so nobody can burn another terminal's nonces.
        if not await self._record_nonce(key_id, nonce, float(timestamp + self._window)):
            raise AuthenticationFailed(f"{HEADER_NONCE}: nonce already used (replayed request)")
        return Authenticated(terminal, AuthScheme.HMAC)
