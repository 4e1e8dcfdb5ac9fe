"""The API's refusals surface as ThreadlineError with the right status and code, on the real stack;
a 4xx is never retried (counted on the wire), a 429 is retried and then raised."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support import unique
from threadline import AsyncThreadline, FieldError, Threadline, ThreadlineError


def counting_client(base_url: str, api_key: str, **options: Any) -> tuple[Threadline, list[httpx.Request]]:
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    return Threadline(base_url, api_key=api_key, http_client=http, **options), sent


def test_404_unknown_session(base_url: str, api_key: str) -> None:
    tl, sent = counting_client(base_url, api_key, max_retries=3)
    missing = unique("missing")
    with pytest.raises(ThreadlineError) as caught:
        tl.sessions.get(missing)
    error = caught.value
    assert (error.status, error.code) == (404, "SESSION.NOT_FOUND")
    assert missing in error.detail and error.is_not_found
    assert len(sent) == 1, "a 404 is not retried"
    with pytest.raises(ThreadlineError) as turn:
        tl.turns.get(unique("turn"))
    assert (turn.value.status, turn.value.code) == (404, "TURN.NOT_FOUND")


def test_409_session_exists_and_ended(client: Threadline) -> None:
    session = client.sessions.create(user_id=unique("u"))
    with pytest.raises(ThreadlineError) as exists:
        client.sessions.create(session_id=session.session_id)
    assert (exists.value.status, exists.value.code) == (409, "SESSION.ALREADY_EXISTS")
    assert exists.value.is_conflict and exists.value.is_("SESSION.")
    client.sessions.end(session.session_id)
    with pytest.raises(ThreadlineError) as ended:
        client.turns.log(session.session_id, user_input="too late")
    assert (ended.value.status, ended.value.code) == (409, "SESSION.ALREADY_ENDED")


def test_409_turn_not_open(client: Threadline) -> None:
    session = client.sessions.create(user_id=unique("u"))
    turn = client.turns.log(session.session_id, user_input="done already")
    with pytest.raises(ThreadlineError) as caught:
        client.turns.complete(turn.turn_id)
    assert (caught.value.status, caught.value.code) == (409, "TURN.NOT_OPEN")


def test_412_stale_if_match(base_url: str, api_key: str) -> None:
    tl, sent = counting_client(base_url, api_key)
    session = tl.sessions.create(user_id=unique("u"))
    tl.sessions.update(session.session_id, title="v2", if_match=session.etag)
    sent.clear()
    with pytest.raises(ThreadlineError) as caught:
        tl.sessions.update(session.session_id, title="stale", if_match=session.version)
    assert (caught.value.status, caught.value.code) == (412, "SESSION.VERSION_MISMATCH")
    assert caught.value.is_precondition_failed and len(sent) == 1
    assert tl.sessions.get(session.session_id).title == "v2", "the stale write changed nothing"
    state = tl.state.patch(session.session_id, {"summary": "a"})
    tl.state.patch(session.session_id, {"summary": "b"}, if_match=state.version)
    with pytest.raises(ThreadlineError) as stale_state:
        tl.state.patch(session.session_id, {"summary": "c"}, if_match=state.version)
    assert stale_state.value.status == 412


def test_400_names_each_bad_field(base_url: str, api_key: str) -> None:
    tl, sent = counting_client(base_url, api_key, max_retries=3)
    session = tl.sessions.create(user_id=unique("u"))
    with pytest.raises(ThreadlineError) as caught:
        tl.turns.log(
            session.session_id,
            user_input="x",
            turn_id="not a valid id!",
            agent_responses=[{"agent_name": "", "response": "r"}],
        )
    error = caught.value
    assert (error.status, error.code) == (400, "REQUEST.INVALID")
    paths = {e.path for e in error.errors}
    assert {"turn_id", "agent_responses.0.agent_name"} <= paths
    assert all(isinstance(e, FieldError) and e.message for e in error.errors)
    assert len(sent) == 2, "one create, one refused log: a 400 is not retried"
    assert tl.turns.list(session.session_id).to_list() == [], "the refused turn was not logged"


def test_401_without_a_valid_key(base_url: str) -> None:
    with Threadline(base_url, api_key="tlk_not_a_key") as tl:
        with pytest.raises(ThreadlineError) as caught:
            tl.sessions.list(user_id="anyone").first_page()
    assert (caught.value.status, caught.value.code) == (401, "REQUEST.UNAUTHORIZED")


def test_429_rate_limited_is_retried_then_raised(base_url: str, limited_api_key: str) -> None:
    """The limited key may send 3 requests a window: the SDK retries the 429s (Retry-After is cut to
    `max_retry_delay`) and then raises RATE_LIMITED with the Retry-After it was given."""
    tl, sent = counting_client(base_url, limited_api_key, max_retries=2, max_retry_delay=0.05)
    statuses: list[int] = []
    with pytest.raises(ThreadlineError) as caught:
        for _ in range(10):
            tl.stats.user(unique("u"))
            statuses.append(200)
    error = caught.value
    assert (error.status, error.code) == (429, "REQUEST.RATE_LIMITED")
    assert error.retry_after is not None and error.retry_after >= 1
    assert len(statuses) <= 3
    assert len(sent) == len(statuses) + 3, "the refused call was tried 1 + max_retries times"


async def test_async_client_raises_the_same_errors(aclient: AsyncThreadline) -> None:
    with pytest.raises(ThreadlineError) as caught:
        await aclient.sessions.get(unique("missing"))
    assert (caught.value.status, caught.value.code) == (404, "SESSION.NOT_FOUND")
    with pytest.raises(ThreadlineError) as bad:
        await aclient.sessions.create(user_id="bad id!")
    assert bad.value.status == 400 and [e.path for e in bad.value.errors] == ["user_id"]


def test_unreachable_api_is_a_connection_error() -> None:
    with Threadline("http://127.0.0.1:9", api_key="k", max_retries=1, max_retry_delay=0.01) as tl:
        with pytest.raises(ThreadlineError) as caught:
            tl.health()
    assert caught.value.status is None and caught.value.code == "CONNECTION.FAILED"
