"""The retry policy on its own (no stack): which answers are retried, how long the SDK waits, and
that a write's Idempotency-Key stays the same across retries. httpx.MockTransport plays the wire
here; every behaviour is also exercised against the real stack in test_errors.py and
test_idempotency.py."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from threadline import AsyncThreadline, Threadline, ThreadlineError, _async, _sync

SESSION = {
    "session_id": "s1",
    "thread_id": "s1",
    "user_id": "u",
    "title": "",
    "status": "active",
    "metadata": {},
    "created_from": None,
    "created_at": "2026-01-01T00:00:00.000Z",
    "updated_at": "2026-01-01T00:00:00.000Z",
    "last_activity_at": "2026-01-01T00:00:00.000Z",
    "ended_at": None,
    "version": 1,
    "turn_count": 0,
    "context": {
        "last_query": None,
        "last_response": None,
        "last_agent_used": None,
        "last_execution_time_ms": None,
        "error_count": 0,
        "last_error": None,
    },
}


def problem(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"type": "about:blank", "title": code, "status": status, "detail": code.lower(), "code": code}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json", **(headers or {})})


def scripted(*answers: Callable[[httpx.Request], httpx.Response]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answers[min(len(sent), len(answers)) - 1](request)

    return httpx.MockTransport(handle), sent


@pytest.fixture()
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(_sync.time, "sleep", waited.append)

    async def asleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(_async.asyncio, "sleep", asleep)
    return waited


def client(transport: httpx.MockTransport, **options: object) -> Threadline:
    return Threadline("http://threadline.test", api_key="k", http_client=httpx.Client(transport=transport), **options)  # type: ignore[arg-type]


def test_429_waits_retry_after_and_reuses_the_key(sleeps: list[float]) -> None:
    transport, sent = scripted(
        lambda r: problem(429, "REQUEST.RATE_LIMITED", {"retry-after": "2"}),
        lambda r: problem(503, "SERVICE.UNAVAILABLE"),
        lambda r: httpx.Response(201, json=SESSION),
    )
    session = client(transport, max_retries=2).sessions.create(user_id="u")
    assert session.session_id == "s1"
    assert len(sent) == 3
    keys = {r.headers["idempotency-key"] for r in sent}
    assert len(keys) == 1, "one key for every try of one write"
    assert sleeps[0] == 2.0, "Retry-After honoured"
    assert 0 <= sleeps[1] <= 1.0, "then backoff (0.5 s doubled, full jitter)"
    assert sent[0].headers["authorization"] == "Bearer k"


def test_retry_after_is_capped(sleeps: list[float]) -> None:
    transport, _ = scripted(
        lambda r: problem(429, "REQUEST.RATE_LIMITED", {"retry-after": "60"}),
        lambda r: httpx.Response(201, json=SESSION),
    )
    client(transport, max_retry_delay=3).sessions.create()
    assert sleeps == [3]


def test_a_given_key_is_sent_as_is(sleeps: list[float]) -> None:
    transport, sent = scripted(lambda r: httpx.Response(201, json=SESSION))
    client(transport).sessions.create(idempotency_key="my-key-1")
    assert sent[0].headers["idempotency-key"] == "my-key-1"
    assert json.loads(sent[0].content) == {}


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "REQUEST.INVALID"),
        (404, "SESSION.NOT_FOUND"),
        (409, "SESSION.ALREADY_EXISTS"),
        (412, "SESSION.VERSION_MISMATCH"),
        (401, "REQUEST.UNAUTHORIZED"),
        (502, "AGENT.BACKEND_FAILED"),
    ],
)
def test_other_errors_are_never_retried(sleeps: list[float], status: int, code: str) -> None:
    transport, sent = scripted(lambda r: problem(status, code))
    with pytest.raises(ThreadlineError) as caught:
        client(transport, max_retries=5).sessions.create()
    assert (caught.value.status, caught.value.code) == (status, code)
    assert len(sent) == 1 and sleeps == []


def test_network_errors_are_retried_then_raised(sleeps: list[float]) -> None:
    def cut(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    transport, sent = scripted(cut)
    with pytest.raises(ThreadlineError) as caught:
        client(transport, max_retries=2).turns.log("s1", user_input="hi")
    assert caught.value.status is None and caught.value.code == "CONNECTION.FAILED"
    assert len(sent) == 3 and len({r.headers["idempotency-key"] for r in sent}) == 1


def test_timeouts_are_retried_and_per_call(sleeps: list[float]) -> None:
    timeouts: list[object] = []

    def slow(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        raise httpx.ReadTimeout("timed out", request=request)

    transport, sent = scripted(slow)
    with pytest.raises(ThreadlineError) as caught:
        client(transport, max_retries=1, timeout=30).sessions.get("s1", timeout=0.25)
    assert caught.value.code == "CONNECTION.TIMEOUT" and len(sent) == 2
    assert timeouts[0] == {"connect": 0.25, "read": 0.25, "write": 0.25, "pool": 0.25}
    assert "idempotency-key" not in sent[0].headers, "reads carry no key"


def test_a_body_that_is_no_problem_still_raises() -> None:
    transport, _ = scripted(lambda r: httpx.Response(502, text="Bad Gateway"))
    with pytest.raises(ThreadlineError) as caught:
        client(transport).health()
    assert (caught.value.status, caught.value.code, caught.value.detail) == (502, "HTTP.502", "Bad Gateway")


async def test_async_retries_the_same_way(sleeps: list[float]) -> None:
    transport, sent = scripted(
        lambda r: problem(503, "SERVICE.UNAVAILABLE", {"retry-after": "1"}),
        lambda r: httpx.Response(201, json=SESSION),
    )
    async with AsyncThreadline(
        "http://threadline.test", api_key="k", http_client=httpx.AsyncClient(transport=transport)
    ) as tl:
        await tl.sessions.create()
    assert len(sent) == 2 and sleeps == [1.0]
    assert sent[0].headers["idempotency-key"] == sent[1].headers["idempotency-key"]
