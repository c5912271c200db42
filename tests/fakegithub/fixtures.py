"""pytest fixtures for the fake GitHub (registered for all tests by tests/conftest.py)."""
from __future__ import annotations

from typing import AsyncIterator

import pytest

from .server import FakeGitHub


@pytest.fixture
async def fake_github(request: pytest.FixtureRequest) -> AsyncIterator[FakeGitHub]:
    """A running fake GitHub; the test fails at teardown if the bot sent a request GitHub would refuse
    (unless the test called `fake_github.expect_invalid()`). `@pytest.mark.fake_github_prefix("/api/v3")`
    serves it like GitHub Enterprise Server."""
    marker = request.node.get_closest_marker("fake_github_prefix")
    fake = FakeGitHub(path_prefix=marker.args[0] if marker else "")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
    fake.assert_valid()
