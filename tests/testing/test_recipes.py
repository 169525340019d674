"""The recipes of docs/testing.md are the test files in examples/testing/: each one runs, as a
user's test session would run it, and passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "examples" / "testing"


def test_every_recipe_passes() -> None:
    files = sorted(p.name for p in RECIPES.glob("test_*.py"))
    assert len(files) == 5
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-o", "asyncio_default_fixture_loop_scope=function", str(RECIPES)],
                          capture_output=True, text=True, timeout=300, cwd=RECIPES)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "11 passed" in done.stdout.splitlines()[-1]
