"""`AsyncThreadline`: the asyncio client (httpx), twin of `_sync.py`'s `Threadline`; keep them in step."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from . import _ops as ops
from . import types as t
from ._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_S,
    MAX_RETRY_DELAY_S,
    RETRYABLE_STATUSES,
    ClientConfig,
    Op,
    answer,
    connection_error,
    error_of,
    operation,
)
from ._paging import AsyncCursorPage

__all__ = ["AsyncThreadline"]

M = TypeVar("M", bound=BaseModel)
AgentResponses = Sequence[t.AgentResponseInput | Mapping[str, Any]]
ToolCalls = Sequence[t.ToolCallInput | Mapping[str, Any]]


class AsyncThreadline:
    """The Threadline HTTP API as an asyncio client: `Threadline`'s methods, awaited.

    ```python
    async with AsyncThreadline(base_url="http://localhost:3000", api_key="tlk_...") as tl:
        session = await tl.sessions.create(user_id="john_doe")
        async for s in tl.sessions.list(user_id="john_doe"):
            print(s.session_id)
    ```

    Args:
        base_url: the gateway, e.g. `http://localhost:3000` (default: env `THREADLINE_BASE_URL`).
        api_key: an API key (`tlk_...`; default: env `THREADLINE_API_KEY`), sent as `Authorization: Bearer`.
        user_token: instead of a key, a user token from `auth.create_user_token` (sees one user only).
        timeout: per-request timeout in seconds (default 30); each call may pass its own `timeout`.
        max_retries: retries after the first try on 429, 503 and network errors (default 2); never
            on other statuses. A write keeps its `Idempotency-Key` across retries, so a retried write
            is applied once.
        max_retry_delay: longest wait between tries, seconds (default 8); a longer `Retry-After` is cut to it.
        read_your_writes: when True, stats calls without `min_position` wait for this client's last write.
        headers: extra headers sent on every request.
        http_client: an `httpx.AsyncClient` of your own (its transport, proxies, limits); not closed by `close()`.

    Every method raises `ThreadlineError` (status, code, detail, errors) when the API refuses or
    cannot be reached after the retries. Use the client as an async context manager, or `await close()`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        user_token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_delay: float = MAX_RETRY_DELAY_S,
        read_your_writes: bool = False,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = ClientConfig(
            base_url, api_key, user_token, timeout, max_retries, max_retry_delay, read_your_writes, headers
        )
        self._own_http = http_client is None
        self._http = http_client or httpx.AsyncClient()
        self.sessions = Sessions(self)
        self.turns = Turns(self)
        self.state = State(self)
        self.stats = Stats(self)
        self.users = Users(self)
        self.auth = Auth(self)

    @property
    def base_url(self) -> str:
        return self._config.base_url

    @property
    def last_position(self) -> int | None:
        """Highest `X-Threadline-Position` any write of this client answered (`None` before one)."""
        return self._config.last_position

    async def close(self) -> None:
        """Closes the connection pool (not an `http_client` given to the constructor)."""
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncThreadline:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # --- transport ---

    async def _send(self, op: Op) -> httpx.Response:
        """Sends `op`, retrying 429/503/network errors; answers the response or raises ThreadlineError."""
        config = self._config
        key = config.idempotency_key_of(op)
        headers = config.request_headers(op, key)
        timeout = op.timeout if op.timeout is not None else config.timeout
        retry = 0
        while True:
            try:
                response = await self._http.request(
                    op.method,
                    config.base_url + op.path,
                    params=op.params,
                    json=op.json,
                    headers=headers,
                    timeout=timeout,
                )
            except httpx.TransportError as error:
                if retry >= config.max_retries:
                    raise connection_error(error) from error
                retry += 1
                await asyncio.sleep(config.retry_delay(retry, None))
                continue
            if response.status_code < 400 or response.status_code in op.ok_statuses:
                return response
            failure = error_of(response)
            if response.status_code not in RETRYABLE_STATUSES or retry >= config.max_retries:
                raise failure
            retry += 1
            await asyncio.sleep(config.retry_delay(retry, failure.retry_after))

    async def _call(self, op: Op, model: type[M]) -> M:
        response = await self._send(op)
        position = self._config.note_position(response)
        return answer(model, response, position)

    async def _call_none(self, op: Op) -> int | None:
        response = await self._send(op)
        return self._config.note_position(response)

    # --- top-level operations ---

    @operation("POST /query")
    async def query(
        self,
        query: str,
        *,
        thread_id: str | None = None,
        user_id: str | None = None,
        agent_type: str | None = None,
        parameters: t.QueryParameters | Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.QueryReply:
        """Asks the agent within a session and logs the turn (seed 004). No `thread_id` creates a
        session; an unknown one creates it with that id. Raises ThreadlineError: 404 another user's
        session, 409 `SESSION.ALREADY_ENDED`, 502 `AGENT.BACKEND_FAILED` (the failed turn is logged:
        `error.body["turn_id"]`). A retry with the same key returns the first answer."""
        values = dict(query=query, thread_id=thread_id, user_id=user_id, agent_type=agent_type, parameters=parameters)
        return await self._call(ops.query(values, idempotency_key, timeout), t.QueryReply)

    @operation("GET /health")
    async def health(self, *, timeout: float | None = None) -> t.HealthReport:
        """Postgres and NATS reachable (`status == "ok"`) or not (`"down"`, answered, not raised)."""
        return await self._call(ops.health(timeout), t.HealthReport)

    @operation("GET /health/live")
    async def health_live(self, *, timeout: float | None = None) -> t.LiveReport:
        """The gateway process is up (`status == "ok"`); it checks nothing else."""
        return await self._call(ops.health_live(timeout), t.LiveReport)

    @operation("GET /health/ready")
    async def health_ready(self, *, timeout: float | None = None) -> t.ReadinessReport:
        """Postgres, NATS, the JetStream stream and each backend service, by name (`status == "ok"`),
        or the ones down in `error` (`status == "error"`, answered with 503: returned, not raised)."""
        return await self._call(ops.health_ready(timeout), t.ReadinessReport)


class _Resource:
    def __init__(self, client: AsyncThreadline) -> None:
        self._client = client


class Sessions(_Resource):
    """`/sessions` and `/users/{user_id}/sessions`."""

    @operation("POST /sessions")
    async def create(
        self,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        created_from: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.Session:
        """Creates a session (id generated unless `session_id`). Raises 409 `SESSION.ALREADY_EXISTS`."""
        values = dict(user_id=user_id, session_id=session_id, title=title, metadata=metadata, created_from=created_from)
        return await self._client._call(ops.session_create(values, idempotency_key, timeout), t.Session)

    @operation("GET /sessions/{session_id}")
    async def get(self, session_id: str, *, timeout: float | None = None) -> t.Session:
        """The session; raises 404 `SESSION.NOT_FOUND` (unknown, deleted, or another user's)."""
        return await self._client._call(ops.session_get(session_id, timeout), t.Session)

    @operation("HEAD /sessions/{session_id}")
    async def exists(self, session_id: str, *, timeout: float | None = None) -> bool:
        """True when the session exists (and this caller may see it)."""
        return (await self._client._send(ops.session_exists(session_id, timeout))).status_code == 200

    @operation("PATCH /sessions/{session_id}")
    async def update(
        self,
        session_id: str,
        *,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.Session:
        """Changes the title and/or merges `metadata` (a key set to None is removed). With `if_match`
        (a version, or the ETag), a stale version raises 412 `SESSION.VERSION_MISMATCH`."""
        values = dict(title=title, metadata=metadata)
        return await self._client._call(
            ops.session_update(session_id, values, if_match, idempotency_key, timeout), t.Session
        )

    @operation("POST /sessions/{session_id}/end")
    async def end(
        self, session_id: str, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> t.Session:
        """Ends the session (ending an ended one changes nothing); raises 404."""
        return await self._client._call(ops.session_end(session_id, idempotency_key, timeout), t.Session)

    @operation("DELETE /sessions/{session_id}")
    async def delete(
        self, session_id: str, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> int | None:
        """Deletes the session (404 everywhere afterwards); answers the write's position."""
        return await self._client._call_none(ops.session_delete(session_id, idempotency_key, timeout))

    @operation("GET /sessions", "GET /users/{user_id}/sessions")
    def list(
        self,
        *,
        user_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        sort: str | None = None,
        order: str | None = None,
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> AsyncCursorPage[t.Session, t.SessionPage]:
        """A user's sessions (`user_id`), or with no `user_id` every session of the tenant (admin keys).
        `status` active|ended|expired|all; `limit` per page (1-200); `sort` created_at|last_activity_at;
        `order` asc|desc; `metadata` filters on equal string values. `async for` it for every session."""

        async def fetch(cursor: str | None) -> t.SessionPage:
            op = ops.session_list(user_id, status, limit, sort, order, metadata, cursor, timeout)
            return await self._client._call(op, t.SessionPage)

        return AsyncCursorPage(fetch, "sessions")

    @operation("GET /users/{user_id}/sessions/current")
    async def current(self, user_id: str, *, timeout: float | None = None) -> t.Session:
        """The user's most recent active session; raises 404 `SESSION.NOT_FOUND` when none."""
        return await self._client._call(ops.session_current(user_id, timeout), t.Session)

    @operation("POST /users/{user_id}/sessions/current")
    async def get_or_create(
        self,
        user_id: str,
        *,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.Session:
        """The user's active session, or a new one (`http_status` 201); concurrent calls give one session."""
        values = dict(title=title, metadata=metadata)
        return await self._client._call(ops.session_get_or_create(user_id, values, idempotency_key, timeout), t.Session)

    @operation("POST /sessions/cleanup")
    async def cleanup(self, *, idempotency_key: str | None = None, timeout: float | None = None) -> t.CleanupReport:
        """Runs a cleanup pass now (admin keys): expires idle sessions, deletes old ended ones."""
        return await self._client._call(ops.session_cleanup(idempotency_key, timeout), t.CleanupReport)


class Turns(_Resource):
    """`/sessions/{session_id}/turns`, `/turns/{turn_id}` and `/users/{user_id}/turns`."""

    @operation("POST /sessions/{session_id}/turns")
    async def log(
        self,
        session_id: str,
        *,
        user_input: str,
        turn_id: str | None = None,
        status: str | None = None,
        agent_responses: AgentResponses | None = None,
        tool_calls: ToolCalls | None = None,
        vector_cache_hit: bool | None = None,
        processing_time_ms: int | None = None,
        error: str | None = None,
        started_at: str | None = None,
        completed_at: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.Turn:
        """Logs a whole turn (`status` completed, the default, or failed) with its agent responses and
        tool calls; usage not given is estimated, cost priced. Raises 404 unknown session, 409 ended
        session or `turn_id` taken. A retry with the same key logs the turn once."""
        values = dict(
            user_input=user_input,
            turn_id=turn_id,
            status=status,
            agent_responses=None if agent_responses is None else list(agent_responses),
            tool_calls=None if tool_calls is None else list(tool_calls),
            vector_cache_hit=vector_cache_hit,
            processing_time_ms=processing_time_ms,
            error=error,
            started_at=started_at,
            completed_at=completed_at,
        )
        return await self._client._call(ops.turn_log(session_id, values, idempotency_key, timeout), t.Turn)

    @operation("POST /sessions/{session_id}/turns")
    async def start(
        self,
        session_id: str,
        *,
        user_input: str,
        turn_id: str | None = None,
        started_at: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.Turn:
        """Starts a turn (`in_progress`); follow with `add_response`, then `complete` or `fail`."""
        values = dict(user_input=user_input, turn_id=turn_id, status="in_progress", started_at=started_at)
        return await self._client._call(ops.turn_log(session_id, values, idempotency_key, timeout), t.Turn)

    @operation("POST /turns/{turn_id}/responses")
    async def add_response(
        self,
        turn_id: str,
        *,
        agent_response: t.AgentResponseInput | Mapping[str, Any] | None = None,
        tool_call: t.ToolCallInput | Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.Turn:
        """Appends one agent response or one tool call (a known `tool_call_id` updates it) to an open
        turn. Raises ValueError unless exactly one is given; 409 `TURN.NOT_OPEN` when the turn is closed."""
        values = dict(agent_response=agent_response, tool_call=tool_call)
        return await self._client._call(ops.turn_add_response(turn_id, values, idempotency_key, timeout), t.Turn)

    @operation("POST /turns/{turn_id}/complete")
    async def complete(
        self,
        turn_id: str,
        *,
        processing_time_ms: int | None = None,
        vector_cache_hit: bool | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.Turn:
        """Completes an open turn; raises 409 `TURN.NOT_OPEN` when it is no longer in progress."""
        values = dict(processing_time_ms=processing_time_ms, vector_cache_hit=vector_cache_hit)
        return await self._client._call(ops.turn_complete(turn_id, values, idempotency_key, timeout), t.Turn)

    @operation("POST /turns/{turn_id}/fail")
    async def fail(
        self,
        turn_id: str,
        *,
        error: str,
        processing_time_ms: int | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.Turn:
        """Fails an open turn with `error` (what it holds is kept); raises 409 when it is closed."""
        values = dict(error=error, processing_time_ms=processing_time_ms)
        return await self._client._call(ops.turn_fail(turn_id, values, idempotency_key, timeout), t.Turn)

    @operation("GET /sessions/{session_id}/turns")
    def list(
        self,
        session_id: str,
        *,
        order: str | None = None,
        limit: int | None = None,
        last: int | None = None,
        timeout: float | None = None,
    ) -> AsyncCursorPage[t.Turn, t.TurnPage]:
        """The session's turns, oldest first (`order="desc"` newest first); `last=N` the N most recent
        (one page, ascending). Raises 404 for an unknown session while iterating."""

        async def fetch(cursor: str | None) -> t.TurnPage:
            return await self._client._call(ops.turn_list(session_id, order, limit, last, cursor, timeout), t.TurnPage)

        return AsyncCursorPage(fetch, "turns")

    @operation("GET /turns/{turn_id}")
    async def get(self, turn_id: str, *, timeout: float | None = None) -> t.Turn:
        """The turn; raises 404 `TURN.NOT_FOUND`."""
        return await self._client._call(ops.turn_get(turn_id, timeout), t.Turn)

    @operation("DELETE /turns/{turn_id}")
    async def delete(
        self, turn_id: str, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> int | None:
        """Deletes the turn from every read model; answers the write's position."""
        return await self._client._call_none(ops.turn_delete(turn_id, idempotency_key, timeout))

    @operation("GET /users/{user_id}/turns")
    async def list_for_user(
        self,
        user_id: str,
        *,
        q: str | None = None,
        user_input: str | None = None,
        limit: int | None = None,
        timeout: float | None = None,
    ) -> builtins.list[t.Turn]:
        """The user's recent turns across sessions, newest first (`limit`, default 50): `q` is a
        full-text search over inputs and responses, `user_input` an exact match of the input."""
        page = await self._client._call(ops.turn_list_for_user(user_id, q, user_input, limit, timeout), t.TurnPage)
        return page.turns


class State(_Resource):
    """`/sessions/{session_id}/state`, `/tool-calls/{name}` and `/history` (seed 003's workflow state)."""

    @operation("GET /sessions/{session_id}/state")
    async def get(
        self, session_id: str, *, version: int | None = None, at: str | None = None, timeout: float | None = None
    ) -> t.SessionState:
        """The state now, at `version`, or `at` an ISO-8601 time. Raises 404; 400 past the current version."""
        return await self._client._call(ops.state_get(session_id, version, at, timeout), t.SessionState)

    @operation("PATCH /sessions/{session_id}/state")
    async def patch(
        self,
        session_id: str,
        patch: t.StatePatchRequest | Mapping[str, Any],
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.SessionState:
        """Applies a JSON merge patch (constraints, strategy, response_plan, summary, status; None
        removes). With `if_match`, a stale version raises 412 `SESSION.VERSION_MISMATCH`."""
        return await self._client._call(
            ops.state_patch(session_id, patch, if_match, idempotency_key, timeout), t.SessionState
        )

    @operation("PUT /sessions/{session_id}/tool-calls/{name}")
    async def set_tool_call(
        self,
        session_id: str,
        name: str,
        *,
        status: str,
        result: Any = None,
        error: str | None = None,
        description: str | None = None,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.SessionState:
        """Sets a planned tool call's status (pending|running|completed|failed), result and error."""
        values = dict(status=status, result=result, error=error, description=description)
        op = ops.state_set_tool_call(session_id, name, values, if_match, idempotency_key, timeout)
        return await self._client._call(op, t.SessionState)

    @operation("GET /sessions/{session_id}/history")
    def history(
        self, session_id: str, *, limit: int | None = None, timeout: float | None = None
    ) -> AsyncCursorPage[t.HistoryEvent, t.SessionHistoryPage]:
        """Every event of the session's lifecycle and state, oldest first (`limit` per page, 1-200)."""

        async def fetch(cursor: str | None) -> t.SessionHistoryPage:
            return await self._client._call(ops.state_history(session_id, limit, cursor, timeout), t.SessionHistoryPage)

        return AsyncCursorPage(fetch, "events")


class Stats(_Resource):
    """The analytics read models. `min_position` (a write's `write_position`) waits until the
    projection applied it (at most the gateway's STATS_WAIT_MS, else 503)."""

    @operation("GET /sessions/stats")
    async def tenant(self, *, min_position: int | None = None, timeout: float | None = None) -> t.GlobalStats:
        """The tenant's figures: sessions, users, turns, tokens, cost (USD), per agent and model (API keys)."""
        op = ops.stats_tenant(self._client._config.min_position(min_position), timeout)
        return await self._client._call(op, t.GlobalStats)

    @operation("GET /sessions/{session_id}/stats")
    async def session(
        self, session_id: str, *, min_position: int | None = None, timeout: float | None = None
    ) -> t.SessionStats:
        """A session's summary (seed 002); raises 404 for an unknown or deleted session."""
        op = ops.stats_session(session_id, self._client._config.min_position(min_position), timeout)
        return await self._client._call(op, t.SessionStats)

    @operation("GET /users/{user_id}/stats")
    async def user(self, user_id: str, *, min_position: int | None = None, timeout: float | None = None) -> t.UserStats:
        """A user's figures (zeros for a user without sessions)."""
        op = ops.stats_user(user_id, self._client._config.min_position(min_position), timeout)
        return await self._client._call(op, t.UserStats)

    @operation("GET /stats/usage")
    async def usage(
        self,
        *,
        from_: str | None = None,
        to: str | None = None,
        group_by: str | None = None,
        min_position: int | None = None,
        timeout: float | None = None,
    ) -> t.UsageStats:
        """Usage over time, `group_by` day|model|agent; `from_`/`to` a day or ISO instant (default 30 days)."""
        op = ops.stats_usage(from_, to, group_by, self._client._config.min_position(min_position), timeout)
        return await self._client._call(op, t.UsageStats)


class Users(_Resource):
    """`/users/{user_id}`. (No export route exists yet.)"""

    @operation("DELETE /users/{user_id}")
    async def erase(
        self, user_id: str, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> t.UserErasureReceipt:
        """Erases every session, turn and state of the user everywhere; a repeat answers zeros."""
        return await self._client._call(ops.user_erase(user_id, idempotency_key, timeout), t.UserErasureReceipt)


class Auth(_Resource):
    """`/auth`: user tokens."""

    @operation("POST /auth/user-tokens")
    async def create_user_token(
        self,
        user_id: str,
        *,
        ttl_seconds: int | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> t.UserToken:
        """Mints a token for one user (`ttl_seconds`, default 900): pass it as `Threadline(user_token=...)`.
        API keys only (a user token gets 403 `REQUEST.FORBIDDEN`)."""
        values = dict(user_id=user_id, ttl_seconds=ttl_seconds)
        return await self._client._call(ops.user_token(values, idempotency_key, timeout), t.UserToken)
