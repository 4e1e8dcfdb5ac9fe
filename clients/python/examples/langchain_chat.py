"""A LangChain chat whose history lives in Threadline: `RunnableWithMessageHistory` around a scripted
chat model (no network, no API key of a model vendor). Run it twice with the same session id, in two
processes: the second run's model sees the first run's messages.

    python examples/langchain_chat.py SESSION_ID "Hello"      # -> remembers 0 earlier messages
    python examples/langchain_chat.py SESSION_ID "And again"  # -> remembers 2 earlier messages

Base URL and key from THREADLINE_BASE_URL / THREADLINE_API_KEY.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from langchain_core._api import LangChainDeprecationWarning
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from threadline import Threadline
from threadline.langchain import ThreadlineChatMessageHistory


def scripted_model(prompt: Any) -> AIMessage:
    """A stand-in chat model: answers from the messages it is given, with usage and a model name.
    (langchain-core's own fake chat models need a package the machine's index lacks.)"""
    messages: list[BaseMessage] = prompt.to_messages() if isinstance(prompt, PromptValue) else list(prompt)
    last = messages[-1].text if messages else ""
    earlier = len(messages) - 1
    return AIMessage(
        content=f"You said: {last}. I remember {earlier} earlier messages.",
        usage_metadata={"input_tokens": 4 * len(messages), "output_tokens": 9, "total_tokens": 4 * len(messages) + 9},
        response_metadata={"model_name": "scripted-echo"},
    )


# langchain-core 1.x marks RunnableWithMessageHistory deprecated (in favour of LangGraph persistence);
# it is still the runner of BaseChatMessageHistory, and the one this example shows.
warnings.filterwarnings("ignore", category=LangChainDeprecationWarning)


def main(session_id: str, text: str, user_id: str = "langchain-user") -> None:
    with Threadline() as tl:
        chat = RunnableWithMessageHistory(
            RunnableLambda(scripted_model),
            lambda sid: ThreadlineChatMessageHistory(tl, sid, user_id=user_id, agent_name="assistant"),
        )
        reply = chat.invoke([HumanMessage(text)], config={"configurable": {"session_id": session_id}})
        print(reply.content)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
