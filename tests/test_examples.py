"""Every example runs to completion and shows what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_decode_stream_example() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "decode_stream.py")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["Connect", "Subscribe", "Publish"]
    assert lines[3].startswith("rejected:") and "0x81" in lines[3]
