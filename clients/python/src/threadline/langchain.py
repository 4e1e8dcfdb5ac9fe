"""LangChain chat message history stored in Threadline (`pip install "threadline[langchain]"`).

```python
from langchain_core.runnables.history import RunnableWithMessageHistory
from threadline import Threadline
from threadline.langchain import ThreadlineChatMessageHistory

tl = Threadline()
chain = RunnableWithMessageHistory(
    model, lambda session_id: ThreadlineChatMessageHistory(tl, session_id, user_id="john_doe")
)
```

The stored form is the one of the TypeScript adapter (`libs/client-langchain`): every `add_messages`
call is one turn, and a `threadline.transcript` tool-call entry keeps the exact messages.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
    messages_from_dict,
    messages_to_dict,
)

from ._async import AsyncThreadline
from ._errors import ThreadlineError
from ._sync import Threadline
from .types import Turn

__all__ = [
    "TRANSCRIPT_FORMAT",
    "TRANSCRIPT_TOOL_NAME",
    "ThreadlineChatMessageHistory",
    "messages_of_turn",
    "turn_of_messages",
]

TRANSCRIPT_TOOL_NAME = "threadline.transcript"
"""Name and `tool_call_id` of the entry holding a turn's exact messages (`request` names the format,
`result` is the messages as LangChain's stored-message dicts, `messages_to_dict`)."""
TRANSCRIPT_FORMAT = {"format": "langchain.stored_messages", "version": 1}

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_\-.:@]{1,128}$")
_MAX_NAME = 128
_MAX_ERROR = 10_000
_PAGE = 200


def _json_copy(value: Any) -> Any:
    """What the API stores is JSON: a copy through JSON (non-JSON values become strings)."""
    return json.loads(json.dumps(value, default=str))


def turn_of_messages(messages: Sequence[BaseMessage], agent_name: str = "assistant") -> dict[str, Any]:
    """One `add_messages` call as the body of one turn (`POST /sessions/{id}/turns`):

    - `user_input`: the text of the human messages, joined by a blank line (`""` when none);
    - `agent_responses`: one per AI message in order: `response` its text, `agent_name` its `name`
      or `agent_name`, `model` from `response_metadata["model_name"]` (or `["model"]`), `usage` from
      `usage_metadata` (tokens; `input_token_details.cache_read` as cached,
      `output_token_details.reasoning` as reasoning). Without `usage_metadata` the API estimates usage;
    - `tool_calls`: one per tool call of the AI messages (`request` its args), completed or failed
      with the result of the tool message answering it (`status="error"` is failed), pending when none
      does; a tool message answering no call of this write becomes a call of its own;
    - system messages, ids and everything else have no field of a turn: the exact messages are kept in
      one more entry, `threadline.transcript`, which `messages_of_turn` reads back.
    """
    humans: list[str] = []
    responses: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    used = {TRANSCRIPT_TOOL_NAME}

    def id_for(wanted: str | None) -> str:
        candidate = wanted if wanted is not None and _IDENTIFIER.match(wanted) else f"call-{len(used)}"
        while candidate in used:
            candidate = f"call-{len(used)}-{candidate}"[:_MAX_NAME]
        used.add(candidate)
        return candidate

    for message in messages:
        if isinstance(message, HumanMessage):
            humans.append(message.text)
        elif isinstance(message, AIMessage):
            responses.append(_response_of(message, len(responses), agent_name))
            for call in message.tool_calls:
                entry = {
                    "tool_call_id": id_for(call.get("id")),
                    "name": call["name"],
                    "request": _json_copy(call["args"]),
                    "status": "pending",
                }
                calls.append(entry)
                if call.get("id") is not None:
                    by_id[str(call["id"])] = entry
        elif isinstance(message, ToolMessage):
            failed = message.status == "error"
            answered = by_id.get(message.tool_call_id)
            entry = answered or {"tool_call_id": id_for(message.tool_call_id), "name": message.name or "tool"}
            entry["status"] = "failed" if failed else "completed"
            entry["result"] = _json_copy(message.content)
            if failed:
                entry["error"] = message.text[:_MAX_ERROR] or "tool error"
            if answered is None:
                calls.append(entry)
        # System and other messages have no field of a turn: the transcript keeps them.

    calls.append(
        {
            "tool_call_id": TRANSCRIPT_TOOL_NAME,
            "name": TRANSCRIPT_TOOL_NAME,
            "request": dict(TRANSCRIPT_FORMAT),
            "status": "completed",
            "result": _json_copy(messages_to_dict(list(messages))),
        }
    )
    return {"user_input": "\n\n".join(humans), "agent_responses": responses, "tool_calls": calls}


def _response_of(ai: AIMessage, order: int, agent_name: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "agent_name": (ai.name or agent_name)[:_MAX_NAME],
        "response": ai.text,
        "turn_order": order,
    }
    meta = ai.response_metadata or {}
    model = meta.get("model_name") or meta.get("model")
    if isinstance(model, str) and model:
        response["model"] = model[:_MAX_NAME]
    usage = ai.usage_metadata
    if usage is not None:
        out: dict[str, Any] = {
            "input_tokens": usage["input_tokens"],
            "output_tokens": usage["output_tokens"],
            "total_tokens": usage["total_tokens"],
        }
        cached = (usage.get("input_token_details") or {}).get("cache_read")
        reasoning = (usage.get("output_token_details") or {}).get("reasoning")
        if cached is not None:
            out["cached_tokens"] = cached
        if reasoning is not None:
            out["reasoning_tokens"] = reasoning
        response["usage"] = out
    return response


def _transcript_of(turn: Turn) -> list[dict[str, Any]] | None:
    entry = next((c for c in turn.tool_calls if c.tool_call_id == TRANSCRIPT_TOOL_NAME), None)
    if entry is None or entry.request != TRANSCRIPT_FORMAT:
        return None
    result = entry.result
    if not isinstance(result, list) or not all(isinstance(m, dict) and "type" in m and "data" in m for m in result):
        raise ValueError(f"turn {turn.turn_id}: its {TRANSCRIPT_TOOL_NAME} entry is not a list of stored messages")
    return result


def messages_of_turn(turn: Turn) -> list[BaseMessage]:
    """The messages of a turn. A turn this adapter (or the TypeScript one) wrote gives back exactly the
    messages it was written with. Any other turn is read from its fields: a human message with
    `user_input` (when not empty), an AI message asking for its tool calls followed by a tool message
    per finished call, then an AI message per agent response (`name` the agent,
    `response_metadata["model_name"]` the model, `usage_metadata` when usage was reported).
    Raises ValueError when the turn's transcript entry is malformed."""
    transcript = _transcript_of(turn)
    if transcript is not None:
        return messages_from_dict(transcript)
    messages: list[BaseMessage] = []
    if turn.user_input:
        messages.append(HumanMessage(turn.user_input))
    if turn.tool_calls:
        messages.append(
            AIMessage(
                content="",
                tool_calls=[
                    {
                        "id": c.tool_call_id,
                        "name": c.name,
                        "args": c.request if isinstance(c.request, dict) else {"input": c.request},
                        "type": "tool_call",
                    }
                    for c in turn.tool_calls
                ],
            )
        )
        for c in turn.tool_calls:
            if c.status not in ("completed", "failed"):
                continue
            result = c.result if c.result is not None else (c.error or "")
            messages.append(
                ToolMessage(
                    content=result if isinstance(result, str) else json.dumps(result),
                    tool_call_id=c.tool_call_id,
                    name=c.name,
                    status="error" if c.status == "failed" else "success",
                )
            )
    for r in turn.agent_responses:
        usage: Any = None
        if r.usage_source == "reported":
            usage = {
                "input_tokens": r.usage.input_tokens,
                "output_tokens": r.usage.output_tokens,
                "total_tokens": r.usage.total_tokens,
                "input_token_details": {"cache_read": r.usage.cached_tokens},
                "output_token_details": {"reasoning": r.usage.reasoning_tokens},
            }
        messages.append(
            AIMessage(
                content=r.response,
                name=r.agent_name,
                response_metadata={} if r.model is None else {"model_name": r.model},
                usage_metadata=usage,
            )
        )
    return messages


def _session_missing(error: ThreadlineError) -> bool:
    return error.code == "SESSION.NOT_FOUND"


class ThreadlineChatMessageHistory(BaseChatMessageHistory):
    """A LangChain `BaseChatMessageHistory` stored in one Threadline session.

    Every `add_messages` call is ONE turn (one `POST /sessions/{session_id}/turns`, mapped as
    `turn_of_messages` says), so Threadline's analytics count its responses, tokens, cost and tool
    calls; `messages` gives back exactly the messages written. The session is created on the first
    write when it does not exist. Use it as `get_session_history` of `RunnableWithMessageHistory`.

    Args:
        client: a `Threadline` client (the sync methods use it).
        session_id: the Threadline session (LangChain's session id).
        user_id: the end user the session belongs to (needed to create it with an API key).
        agent_name: `agent_name` of AI messages without a `name` (default `"assistant"`).
        title: the session's title when this history creates it.
        async_client: an `AsyncThreadline` for `aget_messages`/`aadd_messages`/`aclear`; without
            one, those run the sync methods in a thread (LangChain's default).

    Every method raises `ThreadlineError` when the API refuses or cannot be reached (e.g. 409
    `SESSION.ALREADY_ENDED`, 400 when a message exceeds the API's limits: 100,000 characters of text,
    50 AI messages or 100 tool calls per write); retries reuse the write's idempotency key.
    """

    def __init__(
        self,
        client: Threadline | None,
        session_id: str,
        *,
        user_id: str | None = None,
        agent_name: str = "assistant",
        title: str | None = None,
        async_client: AsyncThreadline | None = None,
    ) -> None:
        if client is None and async_client is None:
            raise ValueError("give client, async_client, or both")
        self.client = client
        self.async_client = async_client
        self.session_id = session_id
        self.user_id = user_id
        self.agent_name = agent_name
        self.title = title

    # --- sync ---

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message of the session, oldest first; `[]` when the session does not exist (yet)."""
        return [m for turn in self._turns() for m in messages_of_turn(turn)]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Adds the messages as one turn (one write); creates the session first when it is missing."""
        if not messages:
            return
        body = turn_of_messages(messages, self.agent_name)
        key = str(uuid.uuid4())
        client = self._sync()
        try:
            client.turns.log(self.session_id, idempotency_key=key, **body)
        except ThreadlineError as error:
            if not _session_missing(error):
                raise
            self._create_session()
            client.turns.log(self.session_id, idempotency_key=key, **body)

    def clear(self) -> None:
        """Deletes every turn of the session (the session stays, with no history)."""
        client = self._sync()
        for turn in self._turns():
            client.turns.delete(turn.turn_id)

    def _sync(self) -> Threadline:
        if self.client is None:
            raise ValueError("this history has only an async_client: use the a* methods")
        return self.client

    def _turns(self) -> list[Turn]:
        try:
            return self._sync().turns.list(self.session_id, order="asc", limit=_PAGE).to_list()
        except ThreadlineError as error:
            if _session_missing(error):
                return []
            raise

    def _create_session(self) -> None:
        try:
            self._sync().sessions.create(
                session_id=self.session_id, user_id=self.user_id, title=self.title, created_from="langchain"
            )
        except ThreadlineError as error:
            # Another process created it in between: the write's retry lands in it.
            if error.code != "SESSION.ALREADY_EXISTS":
                raise

    # --- async ---

    async def aget_messages(self) -> list[BaseMessage]:
        if self.async_client is None:
            return await super().aget_messages()
        return [m for turn in await self._aturns(self.async_client) for m in messages_of_turn(turn)]

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        if self.async_client is None:
            await super().aadd_messages(messages)
            return
        if not messages:
            return
        client = self.async_client
        body = turn_of_messages(messages, self.agent_name)
        key = str(uuid.uuid4())
        try:
            await client.turns.log(self.session_id, idempotency_key=key, **body)
        except ThreadlineError as error:
            if not _session_missing(error):
                raise
            try:
                await client.sessions.create(
                    session_id=self.session_id, user_id=self.user_id, title=self.title, created_from="langchain"
                )
            except ThreadlineError as create_error:
                if create_error.code != "SESSION.ALREADY_EXISTS":
                    raise
            await client.turns.log(self.session_id, idempotency_key=key, **body)

    async def aclear(self) -> None:
        if self.async_client is None:
            await super().aclear()
            return
        for turn in await self._aturns(self.async_client):
            await self.async_client.turns.delete(turn.turn_id)

    async def _aturns(self, client: AsyncThreadline) -> list[Turn]:
        try:
            return await client.turns.list(self.session_id, order="asc", limit=_PAGE).to_list()
        except ThreadlineError as error:
            if _session_missing(error):
                return []
            raise
