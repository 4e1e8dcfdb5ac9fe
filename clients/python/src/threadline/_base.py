"""What the sync and async clients share: configuration, request building, retry policy, answers."""

from __future__ import annotations

import email.utils
import os
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from ._errors import ThreadlineError

__all__ = ["DEFAULT_TIMEOUT_S", "DEFAULT_MAX_RETRIES", "Op", "operation"]

DEFAULT_TIMEOUT_S = 30.0
"""Per-call timeout of every request (connect, read, write, pool), seconds."""
DEFAULT_MAX_RETRIES = 2
"""Retries after the first try, on 429, 503 and network errors (connection refused or cut, timeout)."""
RETRY_BASE_DELAY_S = 0.5
"""First backoff delay, seconds; doubled each retry, with full jitter, capped at `max_retry_delay`."""
MAX_RETRY_DELAY_S = 8.0
"""Longest wait between two tries, seconds (also caps a `Retry-After`, unless the client says otherwise)."""
RETRYABLE_STATUSES = frozenset({429, 503})

POSITION_HEADER = "x-threadline-position"

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


def operation(*ops: str) -> Callable[[F], F]:
    """Marks a resource method with the API operations (`"GET /sessions/{session_id}"`) it calls;
    `tests/test_operations_openapi.py` checks that the marks cover every operation of the OpenAPI
    document and that the calls the tests make go where the marks say."""

    def mark(fn: F) -> F:
        fn.__threadline_operations__ = tuple(ops)  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass
class Op:
    """One request to send: `write` ones carry an `Idempotency-Key`, the same on every retry."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    write: bool = False
    idempotency_key: str | None = None
    timeout: float | None = None
    #: Statuses that are an answer, not an error (`HEAD` 404 is "does not exist").
    ok_statuses: frozenset[int] = frozenset()


def quote(segment: str) -> str:
    """A path segment, percent-encoded (ids are `[A-Za-z0-9_-.:@]`, tool names may hold anything)."""
    from urllib.parse import quote as _quote

    return _quote(segment, safe="")


def if_match_value(if_match: int | str | None) -> str | None:
    """`If-Match` from a version (`3` -> `"3"`) or an ETag as the API sent it (`'"3"'`)."""
    if if_match is None:
        return None
    if isinstance(if_match, int):
        return f'"{if_match}"'
    return if_match


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments left at `None` are not sent."""
    return {k: v for k, v in values.items() if v is not None}


def body_of(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of `model` built from the arguments given (`None` = not given): checked for
    types here, for limits by the API (400 `REQUEST.INVALID` names the field)."""
    built = model.model_validate(drop_none(values))
    dumped: dict[str, Any] = built.model_dump(mode="json", exclude_unset=True, by_alias=True)
    return dumped


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds, from delta-seconds or an HTTP date; `None` when absent or unreadable."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class ClientConfig:
    """Settings shared by both clients; see `Threadline` for each one."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        user_token: str | None,
        timeout: float,
        max_retries: int,
        max_retry_delay: float,
        read_your_writes: bool,
        headers: Mapping[str, str] | None,
    ) -> None:
        base = base_url or os.environ.get("THREADLINE_BASE_URL")
        if not base:
            raise ValueError("base_url is required (or set THREADLINE_BASE_URL)")
        if api_key is not None and user_token is not None:
            raise ValueError("give api_key or user_token, not both")
        credential = user_token if user_token is not None else api_key
        if credential is None:
            credential = os.environ.get("THREADLINE_API_KEY")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base.rstrip("/")
        self.credential = credential
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_delay = max_retry_delay
        self.read_your_writes = read_your_writes
        self.headers = dict(headers or {})
        #: Highest `X-Threadline-Position` a write of this client answered (for `read_your_writes`).
        self.last_position: int | None = None

    def request_headers(self, op: Op, idempotency_key: str | None) -> dict[str, str]:
        headers = {"accept": "application/json", "user-agent": "threadline-python/0.1.0", **self.headers}
        if self.credential:
            headers["authorization"] = f"Bearer {self.credential}"
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        headers.update(op.headers)
        return headers

    def idempotency_key_of(self, op: Op) -> str | None:
        """The key of a write: the caller's, or a new uuid4 kept for every retry of this call."""
        if not op.write:
            return None
        return op.idempotency_key or str(uuid.uuid4())

    def retry_delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `retry` (1-based): `Retry-After` when the API sent it,
        else exponential backoff with full jitter; both capped at `max_retry_delay`."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_delay)
        return random.uniform(0, min(self.max_retry_delay, RETRY_BASE_DELAY_S * 2 ** (retry - 1)))

    def note_position(self, response: httpx.Response) -> int | None:
        raw = response.headers.get(POSITION_HEADER)
        if raw is None:
            return None
        try:
            position = int(raw)
        except ValueError:
            return None
        if self.last_position is None or position > self.last_position:
            self.last_position = position
        return position

    def min_position(self, given: int | None) -> int | None:
        if given is not None:
            return given
        return self.last_position if self.read_your_writes else None


def connection_error(error: httpx.TransportError) -> ThreadlineError:
    """A `ThreadlineError` without status for an answer that never came."""
    code = "CONNECTION.TIMEOUT" if isinstance(error, httpx.TimeoutException) else "CONNECTION.FAILED"
    return ThreadlineError(None, code, f"{type(error).__name__}: {error}")


def error_of(response: httpx.Response) -> ThreadlineError:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return ThreadlineError.from_response(
        response.status_code, body, parse_retry_after(response.headers.get("retry-after"))
    )


def answer(model: type[M], response: httpx.Response, position: int | None) -> M:
    """The answer's body as `model`, with its `ETag`, `X-Threadline-Position` and status attached."""
    value = model.model_validate(response.json())
    if hasattr(value, "_http_status"):  # every answer model (`types._Answer`)
        value._http_status = response.status_code
        value._etag = response.headers.get("etag")  # type: ignore[attr-defined]
        value._position = position  # type: ignore[attr-defined]
    return value
