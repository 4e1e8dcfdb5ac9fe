"""Threadline's Python SDK: `Threadline` (sync) and `AsyncThreadline` (asyncio) over httpx.

```python
from threadline import Threadline

with Threadline(base_url="http://localhost:3000", api_key="tlk_...") as tl:
    session = tl.sessions.create(user_id="john_doe")
    tl.turns.log(session.session_id, user_input="Hi", agent_responses=[{"agent_name": "bot", "response": "Hello"}])
```

Models are in `threadline.types`; the LangChain adapter is `threadline.langchain`.
"""

from ._async import AsyncThreadline
from ._errors import FieldError, ThreadlineError
from ._paging import AsyncCursorPage, CursorPage
from ._sync import Threadline

__version__ = "0.1.0"

__all__ = [
    "AsyncCursorPage",
    "AsyncThreadline",
    "CursorPage",
    "FieldError",
    "Threadline",
    "ThreadlineError",
    "__version__",
]
