import json

from bot.cli import main


def test_check_example_repo_json(capsys):
    from tests.conftest import EXAMPLES
    code = main(["check", str(EXAMPLES), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert out["rules"] >= 1
    assert code == (1 if any(f["level"] == "failure" for f in out["findings"]) else 0)


def test_check_missing_dir_is_usage_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_yaml_error_reported_at_line(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.yml").write_text("title: x\ndetection:\n  sel: [a\n  condition: sel\n")
    assert main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("rules/bad.yml:4:")
    assert "YAML error" in out


def test_changed_config_checks_every_rule(tmp_path, capsys):
    """A config change (globs, placeholders, validators, levels) changes every rule's verdict."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "bad.yml").write_text("title: x\ndetection:\n  sel: [a\n  condition: sel\n")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "detbot.yml").write_text("checks:\n  ads: false\n")
    assert main(["check", str(tmp_path), "--changed-only", ".github/detbot.yml"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("rules/bad.yml:4:")
    assert ".github/detbot.yml changed: checking every rule" in captured.err
    # The same file named from the shell (not relative to the repository) counts as well.
    assert main(["check", str(tmp_path), "--changed-only", str(tmp_path / ".github" / "detbot.yml")]) == 1
    # Another file alone still checks only the rules it belongs to.
    assert main(["check", str(tmp_path), "--changed-only", "README.md"]) == 0
