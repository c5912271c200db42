"""pytest fixtures for the fake GitHub (registered for all tests by tests/conftest.py)."""
from __future__ import annotations

from typing import AsyncIterator

import pytest

from .server import FakeGitHub


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    """A running fake GitHub; the test fails at teardown if the bot sent a request GitHub would refuse
    (unless the test called `fake_github.expect_invalid()`)."""
    fake = FakeGitHub()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
    fake.assert_valid()
