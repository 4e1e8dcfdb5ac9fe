"""Helpers of the tests (conftest.py has the fixtures)."""

from __future__ import annotations

import uuid


def unique(prefix: str) -> str:
    """An id no other test (or run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
