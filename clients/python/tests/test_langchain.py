"""The LangChain adapter on the real stack: human, AI (tool calls, usage, model), tool and system
messages round-trip exactly, one add_messages is one write, and the stored turn carries the fields
Threadline's analytics count."""

from __future__ import annotations

import warnings

import httpx
import pytest
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    messages_to_dict,
)
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from support import unique
from threadline import AsyncThreadline, Threadline, ThreadlineError
from threadline.langchain import TRANSCRIPT_TOOL_NAME, ThreadlineChatMessageHistory, messages_of_turn

CONVERSATION = [
    SystemMessage("You are a weather bot."),
    HumanMessage("Weather in Paris?"),
    AIMessage(
        content="",
        tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}],
        usage_metadata={
            "input_tokens": 12,
            "output_tokens": 7,
            "total_tokens": 19,
            "input_token_details": {"cache_read": 2},
            "output_token_details": {"reasoning": 3},
        },
        response_metadata={"model_name": "gpt-4o-mini"},
        id="ai-1",
    ),
    ToolMessage('{"temp": 21}', tool_call_id="call_1", name="weather"),
    ToolMessage("no such city", tool_call_id="call_2", name="weather", status="error"),
    AIMessage("It is 21 degrees.", name="forecaster", response_metadata={"model_name": "gpt-4o"}),
]


def test_messages_round_trip_exactly(client: Threadline) -> None:
    session_id = unique("lc")
    history = ThreadlineChatMessageHistory(client, session_id, user_id=unique("u"), title="weather")
    assert history.messages == []
    history.add_messages(CONVERSATION)
    history.add_messages([HumanMessage("Thanks"), AIMessage("You're welcome")])

    other_process_view = ThreadlineChatMessageHistory(client, session_id)
    assert messages_to_dict(other_process_view.messages) == messages_to_dict(
        [*CONVERSATION, HumanMessage("Thanks"), AIMessage("You're welcome")]
    )

    turn = client.turns.list(session_id).to_list()[0]
    assert turn.user_input == "Weather in Paris?"
    assert [(r.agent_name, r.model) for r in turn.agent_responses] == [
        ("assistant", "gpt-4o-mini"),
        ("forecaster", "gpt-4o"),
    ]
    first = turn.agent_responses[0]
    assert (first.usage.input_tokens, first.usage.output_tokens, first.usage.total_tokens) == (12, 7, 19)
    assert (first.usage.cached_tokens, first.usage.reasoning_tokens, first.usage_source) == (2, 3, "reported")
    calls = {c.tool_call_id: c for c in turn.tool_calls}
    assert calls["call_1"].status == "completed" and calls["call_1"].request == {"city": "Paris"}
    assert calls["call_1"].result == '{"temp": 21}'
    assert calls["call_2"].status == "failed" and calls["call_2"].error == "no such city"
    assert TRANSCRIPT_TOOL_NAME in calls
    assert client.sessions.get(session_id).created_from == "langchain"


def test_one_add_messages_is_one_write(base_url: str, api_key: str, client: Threadline) -> None:
    session = client.sessions.create(user_id=unique("u"))
    sent: list[httpx.Request] = []
    with Threadline(base_url, api_key=api_key, http_client=httpx.Client(event_hooks={"request": [sent.append]})) as tl:
        ThreadlineChatMessageHistory(tl, session.session_id).add_messages(CONVERSATION)
    assert [(r.method, r.url.path) for r in sent] == [("POST", f"/sessions/{session.session_id}/turns")]


def test_turns_logged_without_the_adapter_read_as_messages(client: Threadline) -> None:
    session = client.sessions.create(user_id=unique("u"))
    client.turns.log(
        session.session_id,
        user_input="hi",
        agent_responses=[
            {
                "agent_name": "bot",
                "response": "hello",
                "model": "m1",
                "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
            }
        ],
        tool_calls=[{"tool_call_id": "t1", "name": "lookup", "request": {"q": "x"}, "result": "found"}],
    )
    messages = ThreadlineChatMessageHistory(client, session.session_id).messages
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[1].tool_calls[0]["args"] == {"q": "x"}  # type: ignore[attr-defined]
    assert messages[2].content == "found"
    assert messages[3].response_metadata == {"model_name": "m1"}
    assert messages[3].usage_metadata["total_tokens"] == 3  # type: ignore[attr-defined,index]


def test_clear_deletes_the_turns(client: Threadline) -> None:
    session_id = unique("lc")
    history = ThreadlineChatMessageHistory(client, session_id, user_id=unique("u"))
    history.add_messages([HumanMessage("a"), AIMessage("b")])
    history.clear()
    assert history.messages == [] and client.sessions.exists(session_id)


def test_an_ended_session_refuses_writes(client: Threadline) -> None:
    session = client.sessions.create(user_id=unique("u"))
    client.sessions.end(session.session_id)
    with pytest.raises(ThreadlineError) as caught:
        ThreadlineChatMessageHistory(client, session.session_id).add_messages([HumanMessage("late")])
    assert caught.value.code == "SESSION.ALREADY_ENDED"


async def test_async_history(aclient: AsyncThreadline) -> None:
    session_id = unique("alc")
    history = ThreadlineChatMessageHistory(None, session_id, user_id=unique("u"), async_client=aclient)
    await history.aadd_messages(CONVERSATION)
    assert messages_to_dict(await history.aget_messages()) == messages_to_dict(CONVERSATION)
    await history.aclear()
    assert await history.aget_messages() == []


def test_runnable_with_message_history(client: Threadline) -> None:
    seen: list[int] = []

    def model(messages: list) -> AIMessage:  # type: ignore[type-arg]
        seen.append(len(messages))
        return AIMessage(f"answer {len(seen)}", response_metadata={"model_name": "scripted"})

    user = unique("u")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chain = RunnableWithMessageHistory(
            RunnableLambda(model), lambda sid: ThreadlineChatMessageHistory(client, sid, user_id=user)
        )
    config = {"configurable": {"session_id": unique("rwmh")}}
    chain.invoke([HumanMessage("one")], config=config)
    chain.invoke([HumanMessage("two")], config=config)
    assert seen == [1, 3], "the second call saw the first exchange"
    session_id = config["configurable"]["session_id"]
    turns = client.turns.list(session_id).to_list()
    assert [(x.user_input, x.agent_responses[0].response) for x in turns] == [("one", "answer 1"), ("two", "answer 2")]
    assert [m.type for m in messages_of_turn(turns[1])] == ["human", "ai"]
