import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "rules-repo"
sys.path.insert(0, str(ROOT))

# The fake GitHub's fixtures (`fake_github`) and the bot's clients to it (`gh_app`, `gh`) for every test module.
pytest_plugins = ["tests.fakegithub.fixtures", "tests.ghflow_support"]
