"""The one error type of the SDK, built from the API's RFC 9457 problem bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FieldError", "ThreadlineError"]


@dataclass(frozen=True)
class FieldError:
    """One bad field of a 400 `REQUEST.INVALID`: `path` (e.g. `"user_id"`, `"agent_responses.0.usage"`),
    `message`, and `location` (`"body"`, `"path"`, `"query"` or `"header"`, when the API says)."""

    path: str
    message: str
    location: str | None = None


class ThreadlineError(Exception):
    """Every failure of a call: an API answer >= 400, or the API not reachable after the retries.

    Attributes:
        status: the HTTP status (404, 409, 412, 400, 429, 503, ...); `None` when no answer came
            (connection refused or cut, timeout) after every retry.
        code: the API's stable error code: `SESSION.NOT_FOUND`, `TURN.NOT_FOUND`,
            `SESSION.ALREADY_EXISTS`, `SESSION.ALREADY_ENDED`, `TURN.ALREADY_EXISTS`, `TURN.NOT_OPEN`,
            `STREAM.VERSION_CONFLICT` (409), `SESSION.VERSION_MISMATCH` (412, stale `If-Match`),
            `REQUEST.INVALID` (400, see `errors`), `REQUEST.UNAUTHORIZED` (401), `REQUEST.FORBIDDEN` (403),
            `REQUEST.RATE_LIMITED` (429), `REQUEST.TOO_LARGE` (413), `AGENT.BACKEND_FAILED` (502),
            `SERVICE.UNAVAILABLE` (503); `CONNECTION.FAILED` / `CONNECTION.TIMEOUT` when no answer came.
        detail: the human-readable explanation.
        errors: the bad fields of a 400 (`[]` otherwise).
        body: the whole problem body as JSON (e.g. `turn_id` and `thread_id` of a 502 from `/query`).
        retry_after: seconds from the `Retry-After` header (429, 503), when sent.
    """

    status: int | None
    code: str
    detail: str
    errors: list[FieldError]
    body: Mapping[str, Any]
    retry_after: float | None

    def __init__(
        self,
        status: int | None,
        code: str,
        detail: str,
        errors: list[FieldError] | None = None,
        *,
        body: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status if status is not None else 'no answer'} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = list(errors or [])
        self.body = dict(body or {})
        self.retry_after = retry_after

    def is_(self, *codes: str) -> bool:
        """True when `code` is one of `codes`; a code ending in `.` matches a family (`"SESSION."`)."""
        return any(self.code == c or (c.endswith(".") and self.code.startswith(c)) for c in codes)

    @property
    def is_not_found(self) -> bool:
        """404: an unknown, deleted or another user's session or turn (`*.NOT_FOUND`)."""
        return self.status == 404

    @property
    def is_conflict(self) -> bool:
        """409: already exists, already ended, not open, or a concurrent write (`STREAM.VERSION_CONFLICT`)."""
        return self.status == 409

    @property
    def is_precondition_failed(self) -> bool:
        """412: the `If-Match` version is stale (`SESSION.VERSION_MISMATCH`)."""
        return self.status == 412

    @classmethod
    def from_response(cls, status: int, body: Any, retry_after: float | None = None) -> ThreadlineError:
        """The error of an answer `status` with its parsed JSON `body` (a problem, or anything else)."""
        if not isinstance(body, Mapping):
            return cls(status, _fallback_code(status), str(body or f"HTTP {status}"), retry_after=retry_after)
        raw_errors = body.get("errors")
        errors = [
            FieldError(path=str(e.get("path", "")), message=str(e.get("message", "")), location=e.get("in"))
            for e in (raw_errors if isinstance(raw_errors, list) else [])
            if isinstance(e, Mapping)
        ]
        return cls(
            status,
            str(body.get("code") or _fallback_code(status)),
            str(body.get("detail") or body.get("title") or f"HTTP {status}"),
            errors,
            body=body,
            retry_after=retry_after,
        )


def _fallback_code(status: int) -> str:
    """A code for an answer without a problem body (a proxy's 502, say)."""
    return {
        400: "REQUEST.INVALID",
        401: "REQUEST.UNAUTHORIZED",
        403: "REQUEST.FORBIDDEN",
        404: "ROUTE.NOT_FOUND",
        413: "REQUEST.TOO_LARGE",
        429: "REQUEST.RATE_LIMITED",
        503: "SERVICE.UNAVAILABLE",
    }.get(status, f"HTTP.{status}")
