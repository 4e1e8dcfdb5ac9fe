"""`Threadline`: the synchronous client (httpx). `_async.py` is its twin; keep them in step."""

from __future__ import annotations

import builtins
import time
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
from ._paging import CursorPage

__all__ = ["Threadline"]

M = TypeVar("M", bound=BaseModel)
AgentResponses = Sequence[t.AgentResponseInput | Mapping[str, Any]]
ToolCalls = Sequence[t.ToolCallInput | Mapping[str, Any]]


class Threadline:
    """The Threadline HTTP API as a synchronous client.

    ```python
    with Threadline(base_url="http://localhost:3000", api_key="tlk_...") as tl:
        session = tl.sessions.create(user_id="john_doe", metadata={"source": "chat_app"})
        reply = tl.query("I am a Python programmer", thread_id=session.session_id, user_id="john_doe")
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
        http_client: an `httpx.Client` of your own (its transport, proxies, limits); not closed by `close()`.

    Every method raises `ThreadlineError` (status, code, detail, errors) when the API refuses or
    cannot be reached after the retries. Use the client as a context manager, or call `close()`.
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
        http_client: httpx.Client | None = None,
    ) -> None:
        self._config = ClientConfig(
            base_url, api_key, user_token, timeout, max_retries, max_retry_delay, read_your_writes, headers
        )
        self._own_http = http_client is None
        self._http = http_client or httpx.Client()
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

    def close(self) -> None:
        """Closes the connection pool (not an `http_client` given to the constructor)."""
        if self._own_http:
            self._http.close()

    def __enter__(self) -> Threadline:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- transport ---

    def _send(self, op: Op) -> httpx.Response:
        """Sends `op`, retrying 429/503/network errors; answers the response or raises ThreadlineError."""
        config = self._config
        key = config.idempotency_key_of(op)
        headers = config.request_headers(op, key)
        timeout = op.timeout if op.timeout is not None else config.timeout
        retry = 0
        while True:
            try:
                response = self._http.request(
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
                time.sleep(config.retry_delay(retry, None))
                continue
            if response.status_code < 400 or response.status_code in op.ok_statuses:
                return response
            failure = error_of(response)
            if response.status_code not in RETRYABLE_STATUSES or retry >= config.max_retries:
                raise failure
            retry += 1
            time.sleep(config.retry_delay(retry, failure.retry_after))

    def _call(self, op: Op, model: type[M]) -> M:
        response = self._send(op)
        position = self._config.note_position(response)
        return answer(model, response, position)

    def _call_none(self, op: Op) -> int | None:
        response = self._send(op)
        return self._config.note_position(response)

    # --- top-level operations ---

    @operation("POST /query")
    def query(
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
        return self._call(ops.query(values, idempotency_key, timeout), t.QueryReply)

    @operation("GET /health")
    def health(self, *, timeout: float | None = None) -> t.HealthReport:
        """Postgres and NATS reachable (`status == "ok"`) or not (`"down"`, answered, not raised)."""
        return self._call(ops.health(timeout), t.HealthReport)

    @operation("GET /health/live")
    def health_live(self, *, timeout: float | None = None) -> t.LiveReport:
        """The gateway process is up (`status == "ok"`); it checks nothing else."""
        return self._call(ops.health_live(timeout), t.LiveReport)

    @operation("GET /health/ready")
    def health_ready(self, *, timeout: float | None = None) -> t.ReadinessReport:
        """Postgres, NATS, the JetStream stream and each backend service, by name (`status == "ok"`),
        or the ones down in `error` (`status == "error"`, answered with 503: returned, not raised)."""
        return self._call(ops.health_ready(timeout), t.ReadinessReport)


class _Resource:
    def __init__(self, client: Threadline) -> None:
        self._client = client


class Sessions(_Resource):
    """`/sessions` and `/users/{user_id}/sessions`."""

    @operation("POST /sessions")
    def create(
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
        return self._client._call(ops.session_create(values, idempotency_key, timeout), t.Session)

    @operation("GET /sessions/{session_id}")
    def get(self, session_id: str, *, timeout: float | None = None) -> t.Session:
        """The session; raises 404 `SESSION.NOT_FOUND` (unknown, deleted, or another user's)."""
        return self._client._call(ops.session_get(session_id, timeout), t.Session)

    @operation("HEAD /sessions/{session_id}")
    def exists(self, session_id: str, *, timeout: float | None = None) -> bool:
        """True when the session exists (and this caller may see it)."""
        return self._client._send(ops.session_exists(session_id, timeout)).status_code == 200

    @operation("PATCH /sessions/{session_id}")
    def update(
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
        return self._client._call(ops.session_update(session_id, values, if_match, idempotency_key, timeout), t.Session)

    @operation("POST /sessions/{session_id}/end")
    def end(self, session_id: str, *, idempotency_key: str | None = None, timeout: float | None = None) -> t.Session:
        """Ends the session (ending an ended one changes nothing); raises 404."""
        return self._client._call(ops.session_end(session_id, idempotency_key, timeout), t.Session)

    @operation("DELETE /sessions/{session_id}")
    def delete(
        self, session_id: str, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> int | None:
        """Deletes the session (404 everywhere afterwards); answers the write's position."""
        return self._client._call_none(ops.session_delete(session_id, idempotency_key, timeout))

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
    ) -> CursorPage[t.Session, t.SessionPage]:
        """A user's sessions (`user_id`), or with no `user_id` every session of the tenant (admin keys).
        `status` active|ended|expired|all; `limit` per page (1-200); `sort` created_at|last_activity_at;
        `order` asc|desc; `metadata` filters on equal string values. Iterate it for every session."""

        def fetch(cursor: str | None) -> t.SessionPage:
            op = ops.session_list(user_id, status, limit, sort, order, metadata, cursor, timeout)
            return self._client._call(op, t.SessionPage)

        return CursorPage(fetch, "sessions")

    @operation("GET /users/{user_id}/sessions/current")
    def current(self, user_id: str, *, timeout: float | None = None) -> t.Session:
        """The user's most recent active session; raises 404 `SESSION.NOT_FOUND` when none."""
        return self._client._call(ops.session_current(user_id, timeout), t.Session)

    @operation("POST /users/{user_id}/sessions/current")
    def get_or_create(
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
        return self._client._call(ops.session_get_or_create(user_id, values, idempotency_key, timeout), t.Session)

    @operation("POST /sessions/cleanup")
    def cleanup(self, *, idempotency_key: str | None = None, timeout: float | None = None) -> t.CleanupReport:
        """Runs a cleanup pass now (admin keys): expires idle sessions, deletes old ended ones."""
        return self._client._call(ops.session_cleanup(idempotency_key, timeout), t.CleanupReport)


class Turns(_Resource):
    """`/sessions/{session_id}/turns`, `/turns/{turn_id}` and `/users/{user_id}/turns`."""

    @operation("POST /sessions/{session_id}/turns")
    def log(
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
        return self._client._call(ops.turn_log(session_id, values, idempotency_key, timeout), t.Turn)

    @operation("POST /sessions/{session_id}/turns")
    def start(
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
        return self._client._call(ops.turn_log(session_id, values, idempotency_key, timeout), t.Turn)

    @operation("POST /turns/{turn_id}/responses")
    def add_response(
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
        return self._client._call(ops.turn_add_response(turn_id, values, idempotency_key, timeout), t.Turn)

    @operation("POST /turns/{turn_id}/complete")
    def complete(
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
        return self._client._call(ops.turn_complete(turn_id, values, idempotency_key, timeout), t.Turn)

    @operation("POST /turns/{turn_id}/fail")
    def fail(
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
        return self._client._call(ops.turn_fail(turn_id, values, idempotency_key, timeout), t.Turn)

    @operation("GET /sessions/{session_id}/turns")
    def list(
        self,
        session_id: str,
        *,
        order: str | None = None,
        limit: int | None = None,
        last: int | None = None,
        timeout: float | None = None,
    ) -> CursorPage[t.Turn, t.TurnPage]:
        """The session's turns, oldest first (`order="desc"` newest first); `last=N` the N most recent
        (one page, ascending). Raises 404 for an unknown session while iterating."""

        def fetch(cursor: str | None) -> t.TurnPage:
            return self._client._call(ops.turn_list(session_id, order, limit, last, cursor, timeout), t.TurnPage)

        return CursorPage(fetch, "turns")

    @operation("GET /turns/{turn_id}")
    def get(self, turn_id: str, *, timeout: float | None = None) -> t.Turn:
        """The turn; raises 404 `TURN.NOT_FOUND`."""
        return self._client._call(ops.turn_get(turn_id, timeout), t.Turn)

    @operation("DELETE /turns/{turn_id}")
    def delete(self, turn_id: str, *, idempotency_key: str | None = None, timeout: float | None = None) -> int | None:
        """Deletes the turn from every read model; answers the write's position."""
        return self._client._call_none(ops.turn_delete(turn_id, idempotency_key, timeout))

    @operation("GET /users/{user_id}/turns")
    def list_for_user(
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
        page = self._client._call(ops.turn_list_for_user(user_id, q, user_input, limit, timeout), t.TurnPage)
        return page.turns


class State(_Resource):
    """`/sessions/{session_id}/state`, `/tool-calls/{name}` and `/history` (seed 003's workflow state)."""

    @operation("GET /sessions/{session_id}/state")
    def get(
        self, session_id: str, *, version: int | None = None, at: str | None = None, timeout: float | None = None
    ) -> t.SessionState:
        """The state now, at `version`, or `at` an ISO-8601 time. Raises 404; 400 past the current version."""
        return self._client._call(ops.state_get(session_id, version, at, timeout), t.SessionState)

    @operation("PATCH /sessions/{session_id}/state")
    def patch(
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
        return self._client._call(
            ops.state_patch(session_id, patch, if_match, idempotency_key, timeout), t.SessionState
        )

    @operation("PUT /sessions/{session_id}/tool-calls/{name}")
    def set_tool_call(
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
        return self._client._call(op, t.SessionState)

    @operation("GET /sessions/{session_id}/history")
    def history(
        self, session_id: str, *, limit: int | None = None, timeout: float | None = None
    ) -> CursorPage[t.HistoryEvent, t.SessionHistoryPage]:
        """Every event of the session's lifecycle and state, oldest first (`limit` per page, 1-200)."""

        def fetch(cursor: str | None) -> t.SessionHistoryPage:
            return self._client._call(ops.state_history(session_id, limit, cursor, timeout), t.SessionHistoryPage)

        return CursorPage(fetch, "events")


class Stats(_Resource):
    """The analytics read models. `min_position` (a write's `write_position`) waits until the
    projection applied it (at most the gateway's STATS_WAIT_MS, else 503)."""

    @operation("GET /sessions/stats")
    def tenant(self, *, min_position: int | None = None, timeout: float | None = None) -> t.GlobalStats:
        """The tenant's figures: sessions, users, turns, tokens, cost (USD), per agent and model (API keys)."""
        op = ops.stats_tenant(self._client._config.min_position(min_position), timeout)
        return self._client._call(op, t.GlobalStats)

    @operation("GET /sessions/{session_id}/stats")
    def session(
        self, session_id: str, *, min_position: int | None = None, timeout: float | None = None
    ) -> t.SessionStats:
        """A session's summary (seed 002); raises 404 for an unknown or deleted session."""
        op = ops.stats_session(session_id, self._client._config.min_position(min_position), timeout)
        return self._client._call(op, t.SessionStats)

    @operation("GET /users/{user_id}/stats")
    def user(self, user_id: str, *, min_position: int | None = None, timeout: float | None = None) -> t.UserStats:
        """A user's figures (zeros for a user without sessions)."""
        op = ops.stats_user(user_id, self._client._config.min_position(min_position), timeout)
        return self._client._call(op, t.UserStats)

    @operation("GET /stats/usage")
    def usage(
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
        return self._client._call(op, t.UsageStats)


class Users(_Resource):
    """`/users/{user_id}`. (No export route exists yet.)"""

    @operation("DELETE /users/{user_id}")
    def erase(
        self, user_id: str, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> t.UserErasureReceipt:
        """Erases every session, turn and state of the user everywhere; a repeat answers zeros."""
        return self._client._call(ops.user_erase(user_id, idempotency_key, timeout), t.UserErasureReceipt)


class Auth(_Resource):
    """`/auth`: user tokens."""

    @operation("POST /auth/user-tokens")
    def create_user_token(
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
        return self._client._call(ops.user_token(values, idempotency_key, timeout), t.UserToken)
