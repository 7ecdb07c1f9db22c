"""Drivers that run the flows of :mod:`terminal.flow` against a backend and a card reader.

- :class:`TopupTerminal`: synchronous (pytest-bdd steps, scripts, the CLI); HTTP through a
  :class:`Transport` (:class:`HttpTransport`: stdlib ``http.client`` with keep-alive; Locust plugs
  its own client in through the same interface).
- :class:`AsyncTopupTerminal`: asyncio, HTTP through aiohttp; blocking readers run in a thread.

Both record every call (:class:`CallRecord`: step, request, answer, card command and answer,
latency; the newest ``max_calls`` of them, so a terminal that runs for hours keeps a bounded log)
and apply the reader retry policy: a card that does not answer is asked again up to ``retries``
times, except for the write, whose lost answer is never "retried" but reported (the top-up becomes
suspect and is resumed by running it again).

Per request, a terminal serialises the body once, signs it with a :class:`RequestSigner` built once
from its :class:`Auth` (the HMAC key schedule kept, nonces a random per-terminal prefix plus a
counter, so they never repeat) and parses the answer once: a load generator runs this for every
call it sends.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import itertools
import json
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import aiohttp

from backend.auth import (
    HEADER_KEY_ID,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    bearer_headers,
    canonical_string,
)

from .api import ApiRequest, ApiResponse
from .errors import BackendUnreachable, CardTimeout, ProtocolViolation, ReaderError, TerminalError
from .flow import Action, CardExchange, Flow, Identity, TopupResult, topup
from .readers import DEFAULT_TIMEOUT, CardReader

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MAX_CALLS = 10_000
"""Call records a terminal keeps (about 500 top-ups); older ones are dropped."""

_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class AuthScheme(StrEnum):
    NONE = "none"
    BEARER = "bearer"
    HMAC = "hmac"


@dataclass(frozen=True, slots=True)
class Auth:
    """How the terminal authenticates to the backend (docs/backend-api.md), plus any extra headers."""

    scheme: AuthScheme = AuthScheme.NONE
    key_id: str = ""
    secret: str = ""
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def bearer(cls, api_key: str, **extra: str) -> Auth:
        return cls(AuthScheme.BEARER, "", api_key, extra)

    @classmethod
    def hmac(cls, key_id: str, secret: str, **extra: str) -> Auth:
        return cls(AuthScheme.HMAC, key_id, secret, extra)

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        """The headers of one request; a terminal keeps a :class:`RequestSigner` for many."""
        return RequestSigner(self).headers(method, path, body)


class RequestSigner:
    """The headers of every request of one terminal: :meth:`Auth.headers` with the work done once.

    For HMAC the keyed hash state is built once and copied per request, and the nonce is this
    signer's random 16-hex-digit prefix followed by a 16-hex-digit counter: 32 characters of the
    allowed alphabet, never repeated by this signer, and unique between signers with overwhelming
    probability (backend.auth checks a nonce is not reused within its window).
    """

    def __init__(self, auth: Auth, *, clock: Callable[[], float] = time.time) -> None:
        self._auth = auth
        self._base = {"Content-Type": "application/json", **auth.extra_headers}
        if auth.scheme is AuthScheme.BEARER:
            self._base.update(bearer_headers(auth.secret))
        hmac_scheme = auth.scheme is AuthScheme.HMAC
        self._hmac = hmac.new(auth.secret.encode(), digestmod=hashlib.sha256) if hmac_scheme else None
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()
        self._clock = clock

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        headers = dict(self._base)
        if self._hmac is not None:
            key_id = self._auth.key_id
            timestamp = int(self._clock())
            nonce = f"{self._prefix}{next(self._counter):016x}"
            mac = self._hmac.copy()
            mac.update(canonical_string(key_id, timestamp, nonce, method=method, path=path, body=body).encode())
            headers[HEADER_KEY_ID] = key_id
            headers[HEADER_TIMESTAMP] = str(timestamp)
            headers[HEADER_NONCE] = nonce
            headers[HEADER_SIGNATURE] = mac.hexdigest()
        return headers


@dataclass(slots=True)
class CallRecord:
    """One thing the terminal did: a backend call (``kind`` "api") or a card exchange ("card")."""

    kind: str
    step: str
    sent: Any
    received: Any = None
    code: int | None = None
    latency: float = 0.0
    error: str | None = None


class Transport(Protocol):
    """Sends one request; returns (HTTP status, parsed JSON body) or raises BackendUnreachable."""

    def post(self, request: ApiRequest, body: bytes, headers: dict[str, str]) -> tuple[int, Any]: ...


class HttpTransport:
    """Blocking HTTP/1.1 with one kept-alive connection; reconnects once when the server closed it."""

    def __init__(self, base_url: str, *, timeout: float = 15.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise TerminalError(f"backend URL must be http(s)://host[:port][/prefix], got {base_url!r}")
        self._parsed = parsed
        self._prefix = parsed.path.rstrip("/")
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    @property
    def base_url(self) -> str:
        return urllib.parse.urlunsplit(self._parsed)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._parsed.scheme == "https" else http.client.HTTPConnection
            self._conn = kind(self._parsed.hostname or "", self._parsed.port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, request: ApiRequest, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        path = self._prefix + request.path
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                status = resp.status
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt == 2:
                    raise BackendUnreachable(f"{request.name}: the backend closed the connection ({exc})") from exc
            except TimeoutError as exc:
                self.close()
                raise BackendUnreachable(
                    f"{request.name}: no answer from {self.base_url} within {self._timeout:.0f} s"
                ) from exc
            except OSError as exc:
                self.close()
                raise BackendUnreachable(
                    f"{request.name}: cannot reach the backend at {self.base_url} ({exc.strerror or exc}); "
                    "is it running, and is the URL right?"
                ) from exc
        try:
            return status, json.loads(raw)
        except ValueError as exc:
            raise ProtocolViolation(f"{request.name}: HTTP {status}, body is not JSON: {raw[:80]!r}") from exc


def _headers_for(signer: RequestSigner, request: ApiRequest) -> tuple[bytes, dict[str, str]]:
    body = _ENCODE(request.body).encode()
    return body, signer.headers("POST", request.path, body)


class _Driver:
    """What both drivers share: the reader retry policy and the record of calls."""

    def __init__(
        self, reader: CardReader, auth: Auth | None, *, retries: int, card_timeout: float, max_calls: int | None
    ) -> None:
        if max_calls is not None and max_calls < 0:
            raise TerminalError(f"max_calls must be >= 0 or None, got {max_calls}")
        self.reader = reader
        self.retries = retries
        self.card_timeout = card_timeout
        self.calls: list[CallRecord] = []
        """The newest ``max_calls`` records (all of them when ``max_calls`` is None); clear it at will."""
        self.max_calls = max_calls
        self.on_call: Callable[[CallRecord], None] | None = None
        self.auth = auth or Auth()

    @property
    def auth(self) -> Auth:
        return self._auth

    @auth.setter
    def auth(self, auth: Auth) -> None:
        self._auth = auth
        self._signer = RequestSigner(auth)

    @property
    def recording(self) -> bool:
        """False when nothing would keep a record (``max_calls`` 0 and no ``on_call``): skip building it."""
        return self.max_calls != 0 or self.on_call is not None

    def _record(self, record: CallRecord) -> None:
        limit = self.max_calls
        if limit != 0:
            calls = self.calls
            calls.append(record)
            if limit is not None and len(calls) > limit:
                # drop the oldest in chunks: amortised O(1) per record, never more than 1.25 x limit kept
                del calls[: len(calls) - limit + limit // 4]
        if self.on_call is not None:
            self.on_call(record)

    def _exchange(self, action: CardExchange) -> bytes:
        attempts = 1 if action.commit else 1 + self.retries
        recording = self.recording
        for attempt in range(1, attempts + 1):
            start = time.perf_counter()
            try:
                answer = self.reader.transceive(action.frame, self.card_timeout)
            except ReaderError as exc:
                record = CallRecord("card", action.step, action.frame.hex())
                record.latency = time.perf_counter() - start
                record.error = f"{type(exc).__name__}: {exc}"
                self._record(record)
                exc.step = action.step
                if isinstance(exc, CardTimeout) and attempt < attempts:
                    log.info("%s: card did not answer, asking again (%d/%d)", action.step, attempt, attempts - 1)
                    continue
                raise
            if recording:
                latency = time.perf_counter() - start
                self._record(CallRecord("card", action.step, action.frame.hex(), answer.hex(), None, latency))
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _api_record(self, request: ApiRequest, status: int, body: Any, latency: float) -> ApiResponse:
        name = request.name
        resp = ApiResponse.parse(status, body, name)
        if self.recording:
            self._record(CallRecord("api", name, request.body, body, resp.code, latency))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s -> %d %s", name, resp.code, resp.message)
        return resp


class TopupTerminal(_Driver):
    """A frontend with a card reader, synchronous. One terminal = one tid/mid and its credentials."""

    def __init__(
        self,
        transport: Transport | str,
        reader: CardReader,
        *,
        tid: str,
        mid: str,
        auth: Auth | None = None,
        retries: int = 2,
        card_timeout: float = DEFAULT_TIMEOUT,
        http_timeout: float = 15.0,
        max_calls: int | None = DEFAULT_MAX_CALLS,
    ) -> None:
        super().__init__(reader, auth, retries=retries, card_timeout=card_timeout, max_calls=max_calls)
        self.transport = HttpTransport(transport, timeout=http_timeout) if isinstance(transport, str) else transport
        self.tid, self.mid = tid, mid

    def __enter__(self) -> TopupTerminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def identity(self, card_no: str) -> Identity:
        return Identity(card_no, self.tid, self.mid)

    def call(self, request: ApiRequest) -> ApiResponse:
        """One backend call, recorded; its code is not judged here."""
        body, headers = _headers_for(self._signer, request)
        start = time.perf_counter()
        try:
            status, payload = self.transport.post(request, body, headers)
        except TerminalError as exc:
            self._record(
                CallRecord("api", request.name, request.body, None, None, time.perf_counter() - start, str(exc))
            )
            exc.step = request.name
            raise
        return self._api_record(request, status, payload, time.perf_counter() - start)

    def run(self, flow: Flow[T]) -> T:
        """Drive a flow to its end; I/O errors are thrown into the flow, which decides what they mean."""
        try:
            action: Action = next(flow)
            while True:
                try:
                    result: Any = self.call(action) if isinstance(action, ApiRequest) else self._exchange(action)
                except (ReaderError, BackendUnreachable, ProtocolViolation) as exc:
                    action = flow.throw(exc)
                    continue
                action = flow.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            flow.close()

    def topup(self, card_no: str, amount: int, *, invoice_no: str | None = None) -> TopupResult:
        """A whole top-up (or the resumption of an interrupted one); see :func:`terminal.flow.topup`."""
        return self.run(topup(self.identity(card_no), amount, invoice_no=invoice_no))

    def close(self) -> None:
        close = getattr(self.transport, "close", None)
        if callable(close):
            close()


class AsyncTopupTerminal(_Driver):
    """The same terminal for asyncio code: aiohttp for HTTP, the reader in a worker thread."""

    def __init__(
        self,
        base_url: str,
        reader: CardReader,
        *,
        tid: str,
        mid: str,
        auth: Auth | None = None,
        retries: int = 2,
        card_timeout: float = DEFAULT_TIMEOUT,
        http_timeout: float = 15.0,
        session: aiohttp.ClientSession | None = None,
        reader_in_thread: bool = True,
        max_calls: int | None = DEFAULT_MAX_CALLS,
    ) -> None:
        super().__init__(reader, auth, retries=retries, card_timeout=card_timeout, max_calls=max_calls)
        self.base_url = base_url.rstrip("/")
        self.tid, self.mid = tid, mid
        self._timeout = aiohttp.ClientTimeout(total=http_timeout)
        self._session = session
        self._own_session = session is None
        self._reader_in_thread = reader_in_thread

    async def __aenter__(self) -> AsyncTopupTerminal:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def identity(self, card_no: str) -> Identity:
        return Identity(card_no, self.tid, self.mid)

    async def call(self, request: ApiRequest) -> ApiResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body, headers = _headers_for(self._signer, request)
        start = time.perf_counter()
        try:
            async with self._session.post(self.base_url + request.path, data=body, headers=headers) as resp:
                status = resp.status
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = BackendUnreachable(
                f"{request.name}: cannot reach the backend at {self.base_url} ({type(exc).__name__}: {exc})"
            )
            error.step = request.name
            self._record(
                CallRecord("api", request.name, request.body, None, None, time.perf_counter() - start, str(error))
            )
            raise error from exc
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise ProtocolViolation(f"{request.name}: HTTP {status}, body is not JSON: {raw[:80]!r}") from exc
        return self._api_record(request, status, payload, time.perf_counter() - start)

    async def run(self, flow: Flow[T]) -> T:
        try:
            action: Action = next(flow)
            while True:
                try:
                    if isinstance(action, ApiRequest):
                        result: Any = await self.call(action)
                    elif self._reader_in_thread:
                        result = await asyncio.to_thread(self._exchange, action)
                    else:
                        result = self._exchange(action)
                except (ReaderError, BackendUnreachable, ProtocolViolation) as exc:
                    action = flow.throw(exc)
                    continue
                action = flow.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            flow.close()

    async def topup(self, card_no: str, amount: int, *, invoice_no: str | None = None) -> TopupResult:
        return await self.run(topup(self.identity(card_no), amount, invoice_no=invoice_no))
