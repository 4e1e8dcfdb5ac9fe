"""The SDK covers every operation of the OpenAPI document, in both clients: the methods' marks
(`@operation`) list every (method, path) pair, and a walk through every resource method against the
running stack sends a request to each pair (recorded on the wire, matched to the document's paths)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from support import unique
from threadline import AsyncThreadline, Threadline
from threadline import types as t

RESOURCES = ("sessions", "turns", "state", "stats", "users", "auth")
METHODS = {"get", "head", "post", "put", "patch", "delete"}


def openapi_operations(openapi: dict[str, Any]) -> set[str]:
    return {
        f"{method.upper()} {path}" for path, item in openapi["paths"].items() for method in item if method in METHODS
    }


def declared_operations(client_class: type) -> dict[str, set[str]]:
    """Operation -> the methods (`"sessions.create"`) marked as calling it, for one client class."""
    found: dict[str, set[str]] = {}
    targets: list[tuple[str, type]] = [("", client_class)]
    init = inspect.getsource(client_class.__init__)
    for resource in RESOURCES:
        match = re.search(rf"self\.{resource} = (\w+)\(self\)", init)
        assert match, f"{client_class.__name__} has no {resource} resource"
        module = inspect.getmodule(client_class)
        targets.append((resource + ".", getattr(module, match.group(1))))
    for prefix, cls in targets:
        for name, fn in inspect.getmembers(cls, inspect.isfunction):
            for op in getattr(fn, "__threadline_operations__", ()):
                found.setdefault(op, set()).add(prefix + name)
    return found


def recorder(openapi: dict[str, Any]) -> tuple[set[str], Callable[[httpx.Request], None]]:
    """A request hook recording the document's operation of every request sent."""
    templates = []
    for path, item in openapi["paths"].items():
        regex = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        for method in item:
            if method in METHODS:
                templates.append((method.upper(), path, regex, path.count("{")))
    seen: set[str] = set()

    def record(request: httpx.Request) -> None:
        matches = [
            (params, path)
            for method, path, regex, params in templates
            if method == request.method and regex.match(request.url.path)
        ]
        assert matches, f"{request.method} {request.url.path} is no operation of the OpenAPI document"
        seen.add(f"{request.method} {min(matches)[1]}")  # a static path wins over a parametric one

    return seen, record


@pytest.mark.parametrize("client_class", [Threadline, AsyncThreadline])
def test_methods_declare_every_operation(openapi: dict[str, Any], client_class: type) -> None:
    declared = declared_operations(client_class)
    assert sorted(openapi_operations(openapi) - set(declared)) == [], "operations without an SDK method"
    assert sorted(set(declared) - openapi_operations(openapi)) == [], "SDK methods of no operation"


def test_sync_and_async_clients_are_twins() -> None:
    def shape(client_class: type) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for op, methods in declared_operations(client_class).items():
            for method in methods:
                owner = client_class if "." not in method else None
                resource, _, name = method.rpartition(".")
                if owner is None:
                    module = inspect.getmodule(client_class)
                    init = inspect.getsource(client_class.__init__)
                    cls_name = re.search(rf"self\.{resource} = (\w+)\(self\)", init).group(1)  # type: ignore[union-attr]
                    owner = getattr(module, cls_name)
                out[f"{op} {method}"] = list(inspect.signature(getattr(owner, name)).parameters)
        return out

    assert shape(Threadline) == shape(AsyncThreadline)


@pytest.mark.parametrize(
    ("method", "model", "extra"),
    [
        (lambda c: c.sessions.create, t.CreateSessionRequest, set()),
        (lambda c: c.sessions.update, t.UpdateSessionRequest, set()),
        (lambda c: c.sessions.get_or_create, t.CurrentSessionRequest, set()),
        (lambda c: c.auth.create_user_token, t.UserTokenRequest, set()),
        (lambda c: c.turns.log, t.LogTurnRequest, set()),
        (lambda c: c.turns.add_response, t.TurnResponseRequest, set()),
        (lambda c: c.turns.complete, t.CompleteTurnRequest, set()),
        (lambda c: c.turns.fail, t.FailTurnRequest, set()),
        (lambda c: c.state.set_tool_call, t.PutToolCallRequest, set()),
        (lambda c: c.query, t.QueryRequest, set()),
    ],
)
def test_write_methods_take_every_body_field(method: Any, model: type, extra: set[str]) -> None:
    client = Threadline("http://127.0.0.1:9", api_key="unused")
    params = set(inspect.signature(method(client)).parameters)
    assert sorted(set(model.model_fields) - params) == []


def test_every_operation_through_the_sync_client(openapi: dict[str, Any], base_url: str, api_key: str) -> None:
    seen, record = recorder(openapi)
    http = httpx.Client(event_hooks={"request": [record]})
    user = unique("ops-user")
    with Threadline(base_url, api_key=api_key, http_client=http) as tl:
        assert tl.health().status == "ok"
        assert tl.health_live().status == "ok"
        assert tl.health_ready().status == "ok"
        token = tl.auth.create_user_token(user, ttl_seconds=60)
        assert token.user_id == user and token.token_type == "Bearer"

        first = tl.sessions.create(user_id=user, title="first", metadata={"source": "sdk"})
        assert first.http_status == 201 and first.etag == f'"{first.version}"'
        second = tl.sessions.create(user_id=user, title="second")
        assert tl.sessions.get(first.session_id).title == "first"
        assert tl.sessions.exists(first.session_id) is True
        assert tl.sessions.exists(unique("missing")) is False
        updated = tl.sessions.update(first.session_id, title="renamed", metadata={"k": "v"}, if_match=first.version)
        assert updated.title == "renamed" and updated.metadata == {"source": "sdk", "k": "v"}

        listed = tl.sessions.list(user_id=user, limit=1)
        assert {s.session_id for s in listed} == {first.session_id, second.session_id}
        assert len(list(listed.pages())) >= 2, "limit=1 pages through both sessions"
        assert [s.session_id for s in tl.sessions.list(user_id=user, metadata={"k": "v"})] == [first.session_id]
        assert listed.first_page().total == 2
        assert any(s.session_id == first.session_id for s in tl.sessions.list(status="active", limit=200))
        assert tl.sessions.current(user).session_id in {first.session_id, second.session_id}
        current = tl.sessions.get_or_create(user)
        assert current.http_status == 200 and current.user_id == user

        whole = tl.turns.log(
            first.session_id,
            user_input="what is the weather in Paris",
            agent_responses=[
                {
                    "agent_name": "planner",
                    "response": "sunny",
                    "model": "gpt-4o-mini",
                    "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
                },
            ],
            tool_calls=[{"tool_call_id": "c1", "name": "weather", "request": {"city": "Paris"}, "result": {"t": 21}}],
        )
        assert whole.conversation_turn == 1 and whole.usage.total_tokens == 15
        opened = tl.turns.start(first.session_id, user_input="and tomorrow?")
        assert opened.status == "in_progress"
        tl.turns.add_response(opened.turn_id, agent_response={"agent_name": "planner", "response": "rain"})
        tl.turns.add_response(opened.turn_id, tool_call={"tool_call_id": "c2", "name": "weather", "status": "running"})
        done = tl.turns.complete(opened.turn_id, processing_time_ms=12)
        assert done.status == "completed" and [r.response for r in done.agent_responses] == ["rain"]
        failing = tl.turns.start(first.session_id, user_input="and next week?")
        failed = tl.turns.fail(failing.turn_id, error="agent timed out")
        assert failed.status == "failed" and failed.error == "agent timed out"
        turns = tl.turns.list(first.session_id, limit=1)
        assert [x.turn_id for x in turns] == [whole.turn_id, opened.turn_id, failing.turn_id]
        assert [x.turn_id for x in tl.turns.list(first.session_id, last=1)] == [failing.turn_id]
        assert tl.turns.get(whole.turn_id).tool_calls[0].result == {"t": 21}
        found = tl.turns.list_for_user(user, q="Paris")
        assert [x.turn_id for x in found] == [whole.turn_id]
        assert tl.turns.delete(failing.turn_id) is not None

        state = tl.state.patch(first.session_id, {"summary": "weather talk", "constraints": {"city": "Paris"}})
        assert state.summary == "weather talk"
        state = tl.state.set_tool_call(
            first.session_id, "forecast", status="completed", result=[1, 2], if_match=state.version
        )
        assert tl.state.get(first.session_id).tool_calls[0].name == "forecast"
        assert tl.state.get(first.session_id, version=1).summary == "weather talk"
        history = tl.state.history(first.session_id, limit=2).to_list()
        assert len(history) >= 4 and [e.position for e in history] == sorted(e.position for e in history)

        reply = tl.query("Hello agent", thread_id=second.session_id, user_id=user)
        assert reply.thread_id == second.session_id and reply.response

        position = tl.last_position
        assert position is not None
        assert tl.stats.session(first.session_id, min_position=position).interactions == 2
        assert tl.stats.user(user, min_position=position).turns == 3
        assert tl.stats.tenant(min_position=position).turns >= 3
        assert tl.stats.usage(group_by="model", min_position=position).group_by == "model"

        assert tl.sessions.end(second.session_id).status == "ended"
        assert tl.sessions.delete(second.session_id) is not None
        assert tl.sessions.exists(second.session_id) is False
        assert tl.sessions.cleanup().took_ms >= 0
        receipt = tl.users.erase(user)
        assert receipt.sessions_deleted >= 1
    http.close()
    assert sorted(openapi_operations(openapi) - seen) == [], "operations the walk did not reach"


async def test_every_operation_through_the_async_client(openapi: dict[str, Any], base_url: str, api_key: str) -> None:
    seen, record = recorder(openapi)

    async def arecord(request: httpx.Request) -> None:
        record(request)

    http = httpx.AsyncClient(event_hooks={"request": [arecord]})
    user = unique("aops-user")
    async with AsyncThreadline(base_url, api_key=api_key, http_client=http, read_your_writes=True) as tl:
        assert (await tl.health()).status == "ok"
        assert (await tl.health_live()).status == "ok"
        assert (await tl.health_ready()).status == "ok"
        assert (await tl.auth.create_user_token(user)).user_id == user
        first = await tl.sessions.create(user_id=user, title="first")
        second = await tl.sessions.create(user_id=user)
        assert (await tl.sessions.get(first.session_id)).title == "first"
        assert await tl.sessions.exists(first.session_id)
        renamed = await tl.sessions.update(first.session_id, title="renamed", if_match=first.etag)
        assert renamed.title == "renamed"
        ids = {s.session_id async for s in tl.sessions.list(user_id=user, limit=1)}
        assert ids == {first.session_id, second.session_id}
        assert [s async for s in tl.sessions.list(limit=200)]
        assert (await tl.sessions.current(user)).user_id == user
        assert (await tl.sessions.get_or_create(user)).http_status == 200

        whole = await tl.turns.log(
            first.session_id,
            user_input="hello async",
            agent_responses=[t.AgentResponseInput(agent_name="a", response="hi")],
        )
        opened = await tl.turns.start(first.session_id, user_input="second")
        await tl.turns.add_response(opened.turn_id, agent_response={"agent_name": "a", "response": "ok"})
        await tl.turns.complete(opened.turn_id)
        third = await tl.turns.start(first.session_id, user_input="third")
        await tl.turns.fail(third.turn_id, error="boom")
        listed = [x.turn_id async for x in tl.turns.list(first.session_id, limit=2)]
        assert listed == [whole.turn_id, opened.turn_id, third.turn_id]
        assert (await tl.turns.get(whole.turn_id)).user_input == "hello async"
        assert [x.turn_id for x in await tl.turns.list_for_user(user, user_input="second")] == [opened.turn_id]
        await tl.turns.delete(third.turn_id)

        await tl.state.patch(first.session_id, {"status": "planning"})
        await tl.state.set_tool_call(first.session_id, "lookup", status="pending")
        assert (await tl.state.get(first.session_id)).status == "planning"
        assert len(await tl.state.history(first.session_id).to_list()) >= 3

        await tl.query("Hi", thread_id=first.session_id, user_id=user)
        # read_your_writes: each stats call waits for this client's last write.
        assert (await tl.stats.session(first.session_id)).interactions == 3
        assert (await tl.stats.user(user)).turns == 3
        assert (await tl.stats.tenant()).turns >= 3
        assert (await tl.stats.usage()).group_by == "day"

        await tl.sessions.end(second.session_id)
        await tl.sessions.delete(second.session_id)
        await tl.sessions.cleanup()
        assert (await tl.users.erase(user)).user_id == user
    await http.aclose()
    assert sorted(openapi_operations(openapi) - seen) == [], "operations the walk did not reach"
