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


RULE = "title: x\nlogsource: {product: windows}\ndetection:\n  sel: {a: b}\n  condition: sel\n"


def test_path_below_the_root_is_exit_2_naming_the_globs(tmp_path, capsys):
    """`detbot check rules/` matched nothing against `rules/**/*.yml`: it must not pass CI having checked nothing."""
    (tmp_path / "rules" / "windows").mkdir(parents=True)
    (tmp_path / "rules" / "windows" / "r.yml").write_text(RULE)
    assert main(["check", str(tmp_path / "rules")]) == 2
    err = capsys.readouterr().err
    assert "0 rules checked" in err and "rules/**/*.yml, rules/**/*.yaml" in err
    assert "(e.g. windows/r.yml)" in err and "is " + str(tmp_path / "rules") + " the repository root?" in err
    # The same repository from its root checks the rule.
    main(["check", str(tmp_path)])
    assert "1 rules checked" in capsys.readouterr().err


def test_repository_without_rules_yet_passes_with_the_hint(tmp_path, capsys):
    (tmp_path / "parsers").mkdir()
    (tmp_path / "parsers" / "m365.yml").write_text("processors: []\n")  # YAML, but no Sigma rule
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text("detection: not a rule, a hidden directory\n")
    assert main(["check", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "no rule under" in err and "(e.g. parsers/m365.yml)" in err and "look like Sigma rules" not in err
    # Nothing changed is not "nothing found": a pull request touching no rule stays quiet.
    assert main(["check", str(tmp_path), "--changed-only", "README.md"]) == 0
    assert "no rule under" not in capsys.readouterr().err
