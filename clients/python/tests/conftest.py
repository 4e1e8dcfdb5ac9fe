"""Fixtures of the SDK's tests: they talk to a REAL running stack (no mocked server), given by
`THREADLINE_BASE_URL` and `THREADLINE_API_KEY` (an admin key); `THREADLINE_LIMITED_API_KEY` is a key
allowed 3 requests a window, for the 429 test. `npm test` starts the stack and sets them
(clients/python/jest/pytest.e2e-spec.ts)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from threadline import AsyncThreadline, Threadline

REPO_ROOT = Path(__file__).resolve().parents[3]
PYTHON_ROOT = Path(__file__).resolve().parents[1]


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: these tests need a running stack (npm test starts one)", pytrace=False)
    return value


@pytest.fixture(scope="session")
def base_url() -> str:
    return _env("THREADLINE_BASE_URL")


@pytest.fixture(scope="session")
def api_key() -> str:
    return _env("THREADLINE_API_KEY")


@pytest.fixture(scope="session")
def limited_api_key() -> str:
    return _env("THREADLINE_LIMITED_API_KEY")


@pytest.fixture(scope="session")
def openapi(base_url: str) -> dict[str, Any]:
    """The OpenAPI document: the committed repo-root `openapi.json` when there is one, else the
    running gateway's `/docs/json` (the same document, served)."""
    committed = REPO_ROOT / "openapi.json"
    if committed.exists():
        document: dict[str, Any] = json.loads(committed.read_text())
    else:
        document = httpx.get(base_url + "/docs/json", timeout=30).json()
    return document


@pytest.fixture()
def client(base_url: str, api_key: str) -> Iterator[Threadline]:
    with Threadline(base_url, api_key=api_key) as tl:
        yield tl


@pytest.fixture()
async def aclient(base_url: str, api_key: str) -> AsyncIterator[AsyncThreadline]:
    async with AsyncThreadline(base_url, api_key=api_key) as tl:
        yield tl
