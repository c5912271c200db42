"""`detbot check` on a repository whose `.github/detbot.yml` has a mistake: exit 2, naming the key and its line,
whichever module owns the key -- never a silently ignored setting, never a finding (exit 1) instead."""
import pytest

from bot.cli import main as cli

RULE = """title: Whoami run by a service account
id: 0f3c2a55-7d4b-4f0e-9a8b-3c2d1e0f9a77
status: test
description: whoami executed
author: qa
date: 2024-01-01
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\\\\whoami.exe'
  condition: selection
level: low
"""

CASES = [
    # (config after a comment line, key named, line named)
    ("coverage:\n  value_level: loud\n", "coverage.value_level", 3),
    ("ads:\n  nope: 1\n", "ads.nope", 3),
    ("alerts:\n  store: 5\n", "alerts.store", 3),
    ("replay:\n  backends:\n    x: {type: ftp}\n", "replay.backends.x.type", 4),
    ("replay:\n  schedule: '25:00'\n", "replay.schedule", 3),
    ("github:\n  max_annotations: -1\n", "github.max_annotations", 3),
    # A check's settings under `checks:` were stored and never read.
    ("checks:\n  coverage: {value_min_percent: 50}\n", "checks.coverage.value_min_percent", 3),
    ("checks:\n  syntax:\n    levle: warning\n", "checks.syntax.levle", 4),
    # YAML keeps the last of two equal keys: the first `rules` would vanish.
    ("rules: ['rules/**/*.yml']\nexclude: []\nrules: ['nowhere/*.yml']\n", "rules", 4),
    ("checks:\n  syntax: false\n  syntax: true\n", "checks.syntax", 4),
    # An unknown placeholder in ads_path crashed every ADS lookup with a KeyError traceback.
    ("ads_path: '{dir}/{name}.{lang}.md'\n", "ads_path", 2),
    ("ads_path: '{dir}/{name}-{0}.md'\n", "ads_path", 2),
    # Glob syntax detbot does not support matched no file at all: 0 rules checked, exit 0.
    ("rules:\n  - 'rules/**/*.yml'\n  - 'rules/[a-z]*.yml'\n", "rules", 4),
    ("rules: ['rules/**/*.{yml,yaml}']\n", "rules", 2),
    ("rules: ['./rules/**/*.yml']\n", "rules", 2),
    ("exclude: ['/rules/deprecated/**']\n", "exclude", 2),
    # A validator option of the wrong type was stored as given, then failed on every rule as a warning (exit 0).
    ("validators:\n  config:\n    sigmahq_title_length:\n      max_length: x\n",
     "validators.config.sigmahq_title_length.max_length", 5),
    ("validators:\n  config:\n    sigmahq_title_case: {word_list: of}\n",
     "validators.config.sigmahq_title_case.word_list", 4),
    ("validators:\n  config:\n    sigmahq_title_length: {maxlen: 9}\n",
     "validators.config.sigmahq_title_length.maxlen", 4),
    # Configured though not selected (file-name conventions are not in `default`): still checked.
    ("validators:\n  config:\n    filename_length: {max_size: big}\n", "validators.config.filename_length.max_size", 4),
    # `kpi:` was accepted and never read: KPI settings live under `alerts:`.
    ("kpi:\n  days: 14\n", "kpi.days", 3),
]


@pytest.mark.parametrize("config,key,line", CASES, ids=[c[1] for c in CASES])
def test_config_mistake_is_exit_2_with_key_and_line(tmp_path, capsys, config, key, line):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "whoami.yml").write_text(RULE)
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "detbot.yml").write_text("# detbot\n" + config)
    assert cli(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f".github/detbot.yml:{line}: {key}:" in err, err


def test_the_example_config_is_valid(capsys):
    from tests.conftest import EXAMPLES
    assert cli(["check", str(EXAMPLES), "--check", "syntax"]) in (0, 1)
    assert "config error" not in capsys.readouterr().err
