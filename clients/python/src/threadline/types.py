"""pydantic v2 models of the API's bodies, written by hand from the gateway's OpenAPI document
(`openapi.json`; `tests/test_models_openapi.py` fails when a schema and its model drift apart).

Answers (`Session`, `Turn`, ...) keep fields the API adds later (`extra="allow"`), so a newer gateway
does not break an older SDK. Inputs (`AgentResponseInput`, `ToolCallInput`, ...) are what the write
methods accept besides plain dicts; the API validates them (limits, patterns) and answers 400
`REQUEST.INVALID` with the bad fields. Times are `datetime` (UTC), durations ms, costs USD.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional, Union

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

    _http_status: Optional[int] = PrivateAttr(default=None)
    _etag: Optional[str] = PrivateAttr(default=None)
    _position: Optional[int] = PrivateAttr(default=None)

    @property
    def http_status(self) -> Optional[int]:
        """Status of the answer (e.g. 201 when `sessions.get_or_create` created the session, else 200)."""
        return self._http_status

    @property
    def etag(self) -> Optional[str]:
        """`ETag` of the answer (`'"3"'`): pass it (or `.version`) as `if_match`."""
        return self._etag

    @property
    def write_position(self) -> Optional[int]:
        """`X-Threadline-Position` of a write: pass it as `min_position` to read your own write."""
        return self._position


class _Input(BaseModel):
    """A body part the SDK sends: unknown fields are refused here, as the API would (400)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- sessions ---------------------------------------------------------------------------------


class SessionContext(_Answer):
    """What the session remembers of its latest turn (seed 004's context); `last_response` <= 500 chars."""

    last_query: Optional[str]
    last_response: Optional[str]
    last_agent_used: Optional[str]
    last_execution_time_ms: Optional[int]
    error_count: int
    last_error: Optional[str]


class Session(_Answer):
    """A session (`thread_id` is the same as `session_id`); `version` is its ETag (`If-Match`)."""

    session_id: str
    thread_id: str
    user_id: Optional[str]
    title: str
    status: SessionStatus
    metadata: dict[str, Any]
    created_from: Optional[str]
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    ended_at: Optional[datetime]
    version: int
    turn_count: int
    context: SessionContext


class SessionPage(_Answer):
    """One page of sessions; `next_cursor` is `None` on the last page; `total` counts every match."""

    sessions: list[Session]
    next_cursor: Optional[str]
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


class HealthReport(_Answer):
    """`GET /health`: `status` ok when Postgres and NATS answer."""

    status: Literal["ok", "down"]
    checks: HealthChecks


# --- turns ------------------------------------------------------------------------------------


class UsageInput(_Input):
    """Token usage of one agent response as reported by the model (tokens); absent parts are estimated."""

    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cached_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None
    total_tokens: Optional[int] = None


class AgentResponseInput(_Input):
    """One agent's answer within a turn. `execution_time_ms` ms; `cost_usd` USD (priced when absent)."""

    agent_name: str
    response: str
    turn_order: Optional[int] = None
    model: Optional[str] = None
    started_at: Optional[datetime] = None
    execution_time_ms: Optional[int] = None
    usage: Optional[UsageInput] = None
    cost_usd: Optional[float] = None


class ToolCallInput(_Input):
    """One tool call within a turn: `request` and `result` are any JSON; `status` default completed."""

    name: str
    tool_call_id: Optional[str] = None
    request: Any = None
    status: Optional[ToolCallStatus] = None
    result: Any = None
    error: Optional[str] = None


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
    model: Optional[str]
    started_at: Optional[datetime]
    execution_time_ms: Optional[int]
    usage: Usage
    usage_source: Literal["reported", "estimated"]
    cost_usd: float


class ToolCall(_Answer):
    tool_call_id: str
    name: str
    request: Any
    status: ToolCallStatus
    result: Any
    error: Optional[str]
    updated_at: datetime


class Turn(_Answer):
    """One turn of a session's conversation; `conversation_turn` numbers it from 1 in its session."""

    turn_id: str
    session_id: str
    user_id: Optional[str]
    conversation_turn: int
    user_input: str
    agent_responses: list[AgentResponse]
    tool_calls: list[ToolCall]
    usage: Usage
    cost_usd: float
    vector_cache_hit: bool
    processing_time_ms: Optional[int]
    status: TurnStatus
    error: Optional[str]
    started_at: datetime
    completed_at: Optional[datetime]
    updated_at: datetime


class TurnPage(_Answer):
    turns: list[Turn]
    next_cursor: Optional[str]


# --- state and history ------------------------------------------------------------------------


class StateToolCall(_Answer):
    name: str
    description: Optional[str]
    status: ToolCallStatus
    result: Any
    error: Optional[str]
    planned_at: datetime
    updated_at: datetime


class SessionState(_Answer):
    """A session's workflow state (seed 003); `version` is its ETag (`If-Match`)."""

    session_id: str
    version: int
    constraints: Any
    strategy: Any
    response_plan: Any
    summary: Optional[str]
    status: Optional[str]
    tool_calls: list[StateToolCall]
    is_complete: bool
    updated_at: Optional[datetime]


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
    next_cursor: Optional[str]


# --- query ------------------------------------------------------------------------------------


class QueryParameters(_Input):
    """Sampling parameters passed to the agent backend (OpenAI names)."""

    temperature: Optional[float] = None
    top_p: Optional[float] = None
    max_tokens: Optional[int] = None
    presence_penalty: Optional[float] = None
    frequency_penalty: Optional[float] = None
    seed: Optional[int] = None
    stop: Union[str, list[str], None] = None


class QueryMetadata(_Answer):
    """Seed 004's metadata: `query_count` turns so far, times in ms, `cost_usd` USD."""

    thread_id: str
    user_id: Optional[str]
    query_count: int
    agent_type: str
    model: Optional[str]
    execution_time_ms: Optional[int]
    processing_time_ms: Optional[int]
    created_session: bool
    context_turns: Optional[int]
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
    instance: Optional[str] = None
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
    avg_execution_time_ms: Optional[float]
    p95_execution_time_ms: Optional[float]


class AgentUsage(_UsageFigures):
    agent_name: str


class ModelUsage(_UsageFigures):
    model: Optional[str]


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
    user_id: Optional[str]
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
    avg_response_time_ms: Optional[float]
    p95_response_time_ms: Optional[float]
    duration_ms: float
    created_at: datetime
    first_activity_at: datetime
    last_activity_at: datetime
    tool_calls: ToolCallCounts
    vector_cache_hit_rate: Optional[float]
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
    last_activity_at: Optional[datetime]
    as_of_position: int


class UsageRow(_UsageFigures):
    """One row of `stats.usage`: `day` (group_by=day, with `model`), `model` or `agent_name`."""

    day: Optional[str] = None
    model: Optional[str] = None
    agent_name: Optional[str] = None


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
    in_: Optional[Literal["body", "path", "query", "header"]] = Field(default=None, alias="in")


class Problem(_Answer):
    """An RFC 9457 problem body, as `ThreadlineError` reads it."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: Optional[str] = None
    errors: Optional[list[ProblemField]] = None


# --- request bodies (what the write methods send; built from their keyword arguments) ----------


class CreateSessionRequest(_Input):
    user_id: Optional[str] = None
    session_id: Optional[str] = None
    title: Optional[str] = None
    metadata: Optional[dict[str, Any]] = None
    created_from: Optional[str] = None


class UpdateSessionRequest(_Input):
    """`metadata` is a merge patch: a key set to `None` is removed."""

    title: Optional[str] = None
    metadata: Optional[dict[str, Any]] = None


class CurrentSessionRequest(_Input):
    title: Optional[str] = None
    metadata: Optional[dict[str, Any]] = None


class UserTokenRequest(_Input):
    """`ttl_seconds`: the token's lifetime in seconds (API default 900, at most 86,400)."""

    user_id: str
    ttl_seconds: Optional[int] = None


class LogTurnRequest(_Input):
    """A whole turn (`status` completed, the default, or failed) or the start of one (`in_progress`)."""

    user_input: str
    turn_id: Optional[str] = None
    status: Optional[TurnStatus] = None
    agent_responses: Optional[list[AgentResponseInput]] = None
    tool_calls: Optional[list[ToolCallInput]] = None
    vector_cache_hit: Optional[bool] = None
    processing_time_ms: Optional[int] = None
    error: Optional[str] = None
    started_at: Optional[datetime] = None
    completed_at: Optional[datetime] = None


class TurnResponseRequest(_Input):
    """Exactly one of `agent_response` or `tool_call`."""

    agent_response: Optional[AgentResponseInput] = None
    tool_call: Optional[ToolCallInput] = None


class CompleteTurnRequest(_Input):
    processing_time_ms: Optional[int] = None
    vector_cache_hit: Optional[bool] = None


class FailTurnRequest(_Input):
    error: str
    processing_time_ms: Optional[int] = None


class StatePatchRequest(_Input):
    """A JSON merge patch (RFC 7396) of the workflow state: a field set to `None` is removed."""

    constraints: Any = None
    strategy: Any = None
    response_plan: Any = None
    summary: Optional[str] = None
    status: Optional[str] = None


class PutToolCallRequest(_Input):
    status: ToolCallStatus
    result: Any = None
    error: Optional[str] = None
    description: Optional[str] = None


class QueryRequest(_Input):
    """`POST /query` (seed 004): no `thread_id` creates a session; an unknown one creates it with that id."""

    query: str
    thread_id: Optional[str] = None
    user_id: Optional[str] = None
    agent_type: Optional[str] = None
    parameters: Optional[QueryParameters] = None


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
