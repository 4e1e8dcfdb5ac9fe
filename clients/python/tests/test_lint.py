"""The package is lint-clean and typed: ruff (lint and format) over the package, tests, examples and
bench, and mypy --strict over the package it ships as `py.typed`."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = ["src", "tests", "examples", "bench"]


def check(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"


def test_ruff_lint() -> None:
    check("ruff", "check", "--no-cache", *TREES)


def test_ruff_format() -> None:
    check("ruff", "format", "--check", "--no-cache", *TREES)


def test_mypy_strict() -> None:
    # The cache lives outside the work tree and keeps later runs short (a cold mypy run is slow).
    check("mypy", "--cache-dir", str(Path(tempfile.gettempdir()) / "threadline-mypy-cache"), "src/threadline")
