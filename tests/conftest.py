import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "rules-repo"
sys.path.insert(0, str(ROOT))

# The fake GitHub's fixtures (`fake_github`) and the bot's clients to it (`gh_app`, `gh`) for every test module.
pytest_plugins = ["tests.fakegithub.fixtures", "tests.ghflow_support"]


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_replay_cache(tmp_path_factory, monkeypatch):
    """The bot keeps one replay cache per process in the user's cache directory: each test gets its own, so no
    test sees another's (or a developer's) cached parse results."""
    import bot.replay_flow as flow
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.setattr(flow, "_cache", None, raising=False)
    monkeypatch.setattr(flow, "_cache_failed", False, raising=False)
    yield
    if getattr(flow, "_cache", None) is not None:
        flow._cache.close()
