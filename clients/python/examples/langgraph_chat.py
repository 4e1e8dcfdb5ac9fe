"""A LangGraph `StateGraph` over `MessagesState` whose history lives in Threadline, with a scripted
chat model (no network). Each run loads the thread's messages from Threadline, runs the graph on them
plus the new human message, and stores the new messages as one turn; run it twice with the same
thread id, in two processes, and the second run's model sees the first run's messages.

    python examples/langgraph_chat.py THREAD_ID "Hello"
    python examples/langgraph_chat.py THREAD_ID "And again"   # -> remembers 2 earlier messages

Needs `pip install "threadline[langchain,langgraph]"`; base URL and key from the environment.
"""

from __future__ import annotations

import sys

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from threadline import Threadline
from threadline.langchain import ThreadlineChatMessageHistory


def call_model(state: MessagesState) -> dict[str, list[AIMessage]]:
    """The scripted model: answers from the whole conversation it is given."""
    messages = state["messages"]
    answer = AIMessage(
        content=f"You said: {messages[-1].text}. I remember {len(messages) - 1} earlier messages.",
        usage_metadata={"input_tokens": 4 * len(messages), "output_tokens": 9, "total_tokens": 4 * len(messages) + 9},
        response_metadata={"model_name": "scripted-echo"},
    )
    return {"messages": [answer]}


def build_graph():  # type: ignore[no-untyped-def]
    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_edge(START, "model")
    graph.add_edge("model", END)
    return graph.compile()


def main(thread_id: str, text: str, user_id: str = "langgraph-user") -> None:
    with Threadline() as tl:
        history = ThreadlineChatMessageHistory(tl, thread_id, user_id=user_id)
        past = history.messages
        result = build_graph().invoke({"messages": [*past, HumanMessage(text)]})
        new_messages = result["messages"][len(past) :]
        history.add_messages(new_messages)  # the human message and the answer: one turn
        print(new_messages[-1].content)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
