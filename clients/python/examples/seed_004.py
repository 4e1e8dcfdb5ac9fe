"""Seed 004's session flow with the SDK: create a session, ask two questions in it (`/query`, the agent
gets the first as context), list the user's sessions, read the statistics.

    THREADLINE_BASE_URL=http://localhost:3000 THREADLINE_API_KEY=tlk_... python examples/seed_004.py [user_id]

Offline: the gateway answers with its echo agent when no AGENT_BASE_URL is configured.
"""

from __future__ import annotations

import sys
import uuid

from threadline import Threadline


def main(user_id: str) -> None:
    with Threadline(read_your_writes=True) as tl:  # base URL and key from the environment
        session = tl.sessions.create(user_id=user_id, metadata={"source": "chat_app"})
        print(f"session {session.session_id}")

        first = tl.query("I am a Python programmer", thread_id=session.session_id, user_id=user_id)
        second = tl.query("What tools do you recommend for work?", thread_id=session.session_id, user_id=user_id)
        print(f"answer 1: {first.response}")
        print(f"answer 2: {second.response} (context turns: {second.metadata.context_turns})")

        stats = tl.stats.session(session.session_id)  # waits for the two turns (read_your_writes)
        user = tl.stats.user(user_id)
        print(f"stats interactions={stats.interactions} tokens={stats.total_tokens} user_turns={user.turns}")

        for s in tl.sessions.list(user_id=user_id):
            print(f"listed {s.session_id} status={s.status}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else f"john_doe-{uuid.uuid4().hex[:8]}")
