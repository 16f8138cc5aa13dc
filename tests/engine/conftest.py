"""Fixtures shared by the engine's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.engine.webproc import CHROMIUM_ARGS, chromium


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
