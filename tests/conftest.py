"""Test-wide settings."""

from __future__ import annotations

import os

from hypothesis import settings

# No per-example deadline: a loaded 2-core CI machine must not turn slowness into failures.
# In CI the examples are derandomized so that a run is reproducible.
settings.register_profile("dev", deadline=None, print_blob=True)
settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
