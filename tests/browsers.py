"""Headless Chromium for the browser tests: the browser, and its WebDriver (chromedriver).
Without them a test is skipped, except in CI, which installs both (see .ci/run)."""

from __future__ import annotations

import os
import shutil

import pytest


def _required(names: tuple[str, ...], package: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        raise AssertionError(f"CI installs {package} (see .ci/run)")
    pytest.skip(f"{package} is not installed (apt-get install {package})")


def require_chromium() -> str:
    return _required(("chromium", "chromium-browser"), "chromium")


def require_chromedriver() -> str:
    return _required(("chromedriver",), "chromium-driver")
