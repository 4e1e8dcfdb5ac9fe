"""pydantic v2 models of the API's bodies, written by hand from the gateway's OpenAPI document
(`openapi.json`; `tests/test_models_openapi.py` fails when a schema and its model drift apart).

Answers (`Session`, `Turn`, ...) keep fields the API adds later (`extra="allow"`), so a newer gateway
does not break an older SDK. Inputs (`AgentResponseInput`, `ToolCallInput`, ...) are what the write
methods accept besides plain dicts; the API validates them (limits, patterns) and answers 400
`REQUEST.INVALID` with the bad fields. Times are `datetime` (UTC), durations ms, costs USD.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = [
    "AgentFailureProblem",
    "AgentResponse",
    "AgentResponseInput",
    "AgentUsage",
    "CleanupReport",
    "GlobalStats",
    "HealthChecks",
    "HealthReport",
    "LiveReport",
    "ReadinessReport",
    "HistoryEvent",
    "ModelUsage",
    "Problem",
    "ProblemField",
    "QueryMetadata",
    "QueryParameters",
    "QueryReply",
    "Session",
    "SessionContext",
    "SessionCounts",
    "SessionHistoryPage",
    "SessionPage",
    "SessionState",
    "SessionStats",
    "StateToolCall",
    "ToolCall",
    "ToolCallCounts",
    "ToolCallInput",
    "Turn",
    "TurnPage",
    "Usage",
    "UsageInput",
    "UsageRow",
    "UsageStats",
    "UserErasureReceipt",
    "UserStats",
    "UserToken",
]

SessionStatus = Literal["active", "ended", "expired"]
TurnStatus = Literal["in_progress", "completed", "failed"]
ToolCallStatus = Literal["pending", "running", "completed", "failed"]


class _Answer(BaseModel):
    """An answer of the API: unknown fields are kept, names are the API's (snake_case).

    The top-level answer of a call also tells its HTTP status, `ETag` and `X-Threadline-Position`.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    _http_status: int | None = PrivateAttr(default=None)
    _etag: str | None = PrivateAttr(default=None)
    _position: int | None = PrivateAttr(default=None)

    @property
    def http_status(self) -> int | None:
        """Status of the answer (e.g. 201 when `sessions.get_or_create` created the session, else 200)."""
        return self._http_status

    @property
    def etag(self) -> str | None:
        """`ETag` of the answer (`'"3"'`): pass it (or `.version`) as `if_match`."""
        return self._etag

    @property
    def write_position(self) -> int | None:
        """`X-Threadline-Position` of a write: pass it as `min_position` to read your own write."""
        return self._position


class _Input(BaseModel):
    """A body part the SDK sends: unknown fields are refused here, as the API would (400)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- sessions ---------------------------------------------------------------------------------


class SessionContext(_Answer):
    """What the session remembers of its latest turn (seed 004's context); `last_response` <= 500 chars."""

    last_query: str | None
    last_response: str | None
    last_agent_used: str | None
    last_execution_time_ms: int | None
    error_count: int
    last_error: str | None


class Session(_Answer):
    """A session (`thread_id` is the same as `session_id`); `version` is its ETag (`If-Match`)."""

    session_id: str
    thread_id: str
    user_id: str | None
    title: str
    status: SessionStatus
    metadata: dict[str, Any]
    created_from: str | None
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None
    version: int
    turn_count: int
    context: SessionContext


class SessionPage(_Answer):
    """One page of sessions; `next_cursor` is `None` on the last page; `total` counts every match."""

    sessions: list[Session]
    next_cursor: str | None
    total: int


class UserToken(_Answer):
    """A short-lived token for one user (`Authorization: Bearer <token>`), from `auth.create_user_token`."""

    token: str
    token_type: Literal["Bearer"]
    user_id: str
    tenant_id: str
    expires_at: datetime


class HealthChecks(_Answer):
    postgres: Literal["up", "down"]
    nats: Literal["up", "down"]
    #: Each backend service (session-service, ...): up when an instance answers and its Postgres does.
    services: dict[str, Literal["up", "down"]]


class HealthReport(_Answer):
    """`GET /health`: `status` ok when Postgres, NATS and every backend service answer."""

    status: Literal["ok", "down"]
    checks: HealthChecks


class LiveReport(_Answer):
    """`GET /health/live`: the gateway process is up."""

    status: Literal["ok"]


class ReadinessReport(_Answer):
    """`GET /health/ready` (@nestjs/terminus): each check (`postgres`, `nats`, `jetstream`, each
    service) by name in `details` with `status` up or down; the ones down also in `error`."""

    status: Literal["ok", "error", "shutting_down"]
    details: dict[str, dict[str, Any]]
    info: dict[str, dict[str, Any]] | None = None
    error: dict[str, dict[str, Any]] | None = None


# --- turns ------------------------------------------------------------------------------------


class UsageInput(_Input):
    """Token usage of one agent response as reported by the model (tokens); absent parts are estimated."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None


class AgentResponseInput(_Input):
    """One agent's answer within a turn. `execution_time_ms` ms; `cost_usd` USD (priced when absent)."""

    agent_name: str
    response: str
    turn_order: int | None = None
    model: str | None = None
    started_at: datetime | None = None
    execution_time_ms: int | None = None
    usage: UsageInput | None = None
    cost_usd: float | None = None


class ToolCallInput(_Input):
    """One tool call within a turn: `request` and `result` are any JSON; `status` default completed."""

    name: str
    tool_call_id: str | None = None
    request: Any = None
    status: ToolCallStatus | None = None
    result: Any = None
    error: str | None = None


class Usage(_Answer):
    """Tokens (`total_tokens` = input + output)."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    total_tokens: int


class AgentResponse(_Answer):
    """An agent's answer as stored: `usage_source` says whether usage was reported or estimated."""

    agent_name: str
    response: str
    turn_order: int
    model: str | None
    started_at: datetime | None
    execution_time_ms: int | None
    usage: Usage
    usage_source: Literal["reported", "estimated"]
    cost_usd: float


class ToolCall(_Answer):
    tool_call_id: str
    name: str
    request: Any
    status: ToolCallStatus
    result: Any
    error: str | None
    updated_at: datetime


class Turn(_Answer):
    """One turn of a session's conversation; `conversation_turn` numbers it from 1 in its session."""

    turn_id: str
    session_id: str
    user_id: str | None
    conversation_turn: int
    user_input: str
    agent_responses: list[AgentResponse]
    tool_calls: list[ToolCall]
    usage: Usage
    cost_usd: float
    vector_cache_hit: bool
    processing_time_ms: int | None
    status: TurnStatus
    error: str | None
    started_at: datetime
    completed_at: datetime | None
    updated_at: datetime


class TurnPage(_Answer):
    turns: list[Turn]
    next_cursor: str | None


# --- state and history ------------------------------------------------------------------------


class StateToolCall(_Answer):
    name: str
    description: str | None
    status: ToolCallStatus
    result: Any
    error: str | None
    planned_at: datetime
    updated_at: datetime


class SessionState(_Answer):
    """A session's workflow state (seed 003); `version` is its ETag (`If-Match`)."""

    session_id: str
    version: int
    constraints: Any
    strategy: Any
    response_plan: Any
    summary: str | None
    status: str | None
    tool_calls: list[StateToolCall]
    is_complete: bool
    updated_at: datetime | None


class HistoryEvent(_Answer):
    """One event of a session's history: `version` its position in its stream, `position` the global one."""

    event_id: str
    stream: Literal["session", "session_state"]
    type: str
    version: int
    position: int
    time: datetime
    data: Any


class SessionHistoryPage(_Answer):
    events: list[HistoryEvent]
    next_cursor: str | None


# --- query ------------------------------------------------------------------------------------


class QueryParameters(_Input):
    """Sampling parameters passed to the agent backend (OpenAI names)."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None


class QueryMetadata(_Answer):
    """Seed 004's metadata: `query_count` turns so far, times in ms, `cost_usd` USD."""

    thread_id: str
    user_id: str | None
    query_count: int
    agent_type: str
    model: str | None
    execution_time_ms: int | None
    processing_time_ms: int | None
    created_session: bool
    context_turns: int | None
    usage_source: Literal["reported", "estimated"]
    cost_usd: float


class QueryReply(_Answer):
    """`POST /query`: the agent's answer, in the session `thread_id`, logged as turn `turn_id`."""

    response: str
    thread_id: str
    turn_id: str
    usage: Usage
    metadata: QueryMetadata


class AgentFailureProblem(_Answer):
    """The 502 of `POST /query` (in `ThreadlineError.body`): the failed turn was logged as `turn_id`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    turn_id: str
    thread_id: str


# --- stats ------------------------------------------------------------------------------------


class SessionCounts(_Answer):
    active: int
    ended: int
    expired: int
    total: int


class _UsageFigures(_Answer):
    turns: int
    calls: int
    total_tokens_in: int
    total_tokens_out: int
    total_tokens_cached: int
    total_tokens: int
    cost_usd: float
    avg_execution_time_ms: float | None
    p95_execution_time_ms: float | None


class AgentUsage(_UsageFigures):
    agent_name: str


class ModelUsage(_UsageFigures):
    model: str | None


class GlobalStats(_Answer):
    """The tenant's figures; `as_of_position` is the projection's position the answer reflects."""

    sessions: SessionCounts
    active_sessions: int
    users: int
    turns: int
    turns_failed: int
    total_tokens_in: int
    total_tokens_out: int
    total_tokens_cached: int
    total_tokens: int
    cost_usd: float
    by_agent: list[AgentUsage]
    by_model: list[ModelUsage]
    events_projected: int
    head_position: int
    projection_lag: int
    as_of_position: int


class ToolCallCounts(_Answer):
    pending: int
    running: int
    completed: int
    failed: int
    total: int


class SessionStats(_Answer):
    """A session's summary (seed 002); times in ms, `cost_usd` USD, `vector_cache_hit_rate` 0..1."""

    session_id: str
    user_id: str | None
    status: SessionStatus
    interactions: int
    turns_completed: int
    turns_failed: int
    turns_in_progress: int
    total_tokens_in: int
    total_tokens_out: int
    total_tokens_cached: int
    total_tokens: int
    cost_usd: float
    avg_response_time_ms: float | None
    p95_response_time_ms: float | None
    duration_ms: float
    created_at: datetime
    first_activity_at: datetime
    last_activity_at: datetime
    tool_calls: ToolCallCounts
    vector_cache_hit_rate: float | None
    errors: int
    as_of_position: int


class UserStats(_Answer):
    user_id: str
    sessions: SessionCounts
    turns: int
    turns_failed: int
    total_tokens_in: int
    total_tokens_out: int
    total_tokens_cached: int
    total_tokens: int
    cost_usd: float
    last_activity_at: datetime | None
    as_of_position: int


class UsageRow(_UsageFigures):
    """One row of `stats.usage`: `day` (group_by=day, with `model`), `model` or `agent_name`."""

    day: str | None = None
    model: str | None = None
    agent_name: str | None = None


class UsageStats(_Answer):
    from_: str = Field(alias="from")
    to: str
    group_by: Literal["day", "model", "agent"]
    rows: list[UsageRow]
    as_of_position: int


# --- users and operators ----------------------------------------------------------------------


class UserErasureReceipt(_Answer):
    user_id: str
    sessions_deleted: int
    turns_deleted: int
    events_erased: int
    jetstream_messages_deleted: int
    completed_at: datetime


class CleanupReport(_Answer):
    """`took_ms` in milliseconds."""

    expired: int
    deleted: int
    took_ms: int


class ProblemField(_Answer):
    path: str
    message: str
    in_: Literal["body", "path", "query", "header"] | None = Field(default=None, alias="in")


class Problem(_Answer):
    """An RFC 9457 problem body, as `ThreadlineError` reads it."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[ProblemField] | None = None


# --- request bodies (what the write methods send; built from their keyword arguments) ----------


class CreateSessionRequest(_Input):
    user_id: str | None = None
    session_id: str | None = None
    title: str | None = None
    metadata: dict[str, Any] | None = None
    created_from: str | None = None


class UpdateSessionRequest(_Input):
    """`metadata` is a merge patch: a key set to `None` is removed."""

    title: str | None = None
    metadata: dict[str, Any] | None = None


class CurrentSessionRequest(_Input):
    title: str | None = None
    metadata: dict[str, Any] | None = None


class UserTokenRequest(_Input):
    """`ttl_seconds`: the token's lifetime in seconds (API default 900, at most 86,400)."""

    user_id: str
    ttl_seconds: int | None = None


class LogTurnRequest(_Input):
    """A whole turn (`status` completed, the default, or failed) or the start of one (`in_progress`)."""

    user_input: str
    turn_id: str | None = None
    status: TurnStatus | None = None
    agent_responses: list[AgentResponseInput] | None = None
    tool_calls: list[ToolCallInput] | None = None
    vector_cache_hit: bool | None = None
    processing_time_ms: int | None = None
    error: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None


class TurnResponseRequest(_Input):
    """Exactly one of `agent_response` or `tool_call`."""

    agent_response: AgentResponseInput | None = None
    tool_call: ToolCallInput | None = None


class CompleteTurnRequest(_Input):
    processing_time_ms: int | None = None
    vector_cache_hit: bool | None = None


class FailTurnRequest(_Input):
    error: str
    processing_time_ms: int | None = None


class StatePatchRequest(_Input):
    """A JSON merge patch (RFC 7396) of the workflow state: a field set to `None` is removed."""

    constraints: Any = None
    strategy: Any = None
    response_plan: Any = None
    summary: str | None = None
    status: str | None = None


class PutToolCallRequest(_Input):
    status: ToolCallStatus
    result: Any = None
    error: str | None = None
    description: str | None = None


class QueryRequest(_Input):
    """`POST /query` (seed 004): no `thread_id` creates a session; an unknown one creates it with that id."""

    query: str
    thread_id: str | None = None
    user_id: str | None = None
    agent_type: str | None = None
    parameters: QueryParameters | None = None


__all__ += [
    "CompleteTurnRequest",
    "CreateSessionRequest",
    "CurrentSessionRequest",
    "FailTurnRequest",
    "LogTurnRequest",
    "PutToolCallRequest",
    "QueryRequest",
    "StatePatchRequest",
    "TurnResponseRequest",
    "UpdateSessionRequest",
    "UserTokenRequest",
]
