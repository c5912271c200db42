"""`detbot new-rule`: the scaffold's TODOs are flagged; once filled in, every check passes."""
from __future__ import annotations

import re
from pathlib import Path

from bot.cli import main
from checks.config import Config
from checks.runner import CHECK_MODULES, run_checks
from checks.scaffold import render
from checks.source import LocalSource

NAME = "proc_creation_win_certutil_fetch"
RULE_FILL = {
    "TODO describe the adversary behaviour this rule detects, in one sentence.":
        "Detects certutil.exe fetching a remote file with -urlcache, a living-off-the-land download.",
    "TODO a link to the write-up, report or documentation of the technique":
        "https://lolbas-project.github.io/lolbas/Binaries/Certutil/",
    "TODO your name": "Jane Doe",
    "attack.TODO-tactic": "attack.command-and-control",
    "attack.tTODO": "attack.t1105",
    "TODO-tool": "certutil",
    "TODO-argument": "-urlcache",
    "TODO-legit-parent": "ccmexec",
    "TODO a benign activity that triggers the rule": "Configuration Manager agents fetching revocation lists",
}
ADS_FILL = {
    "Goal": "Detect certutil.exe used to download files from the internet.",
    "Categorization": "- T1105 Ingress Tool Transfer",
    "Strategy Abstract": "Process creation events where certutil runs with -urlcache, unless started by the "
                         "Configuration Manager agent.",
    "Technical Context": "certutil is a signed Windows binary whose URL cache feature downloads arbitrary files.",
    "Blind Spots and Assumptions": "Renamed copies of certutil are missed; assumes process creation logging.",
    "False Positives": "- Configuration Manager agents fetching certificate revocation lists (parent ccmexec.exe).",
    "Validation": "1. Run `certutil -urlcache -f https://example.org/a.txt a.txt`\n2. Check the alert.",
    "Priority": "Medium.",
    "Response": "Find the downloaded file, hash it, and check the URL's reputation.",
    "Additional Resources": "- https://lolbas-project.github.io/lolbas/Binaries/Certutil/",
}


def fill(files: dict[str, str]) -> dict[str, str]:
    out = {}
    for path, text in files.items():
        if path.endswith(".ads.md"):
            for section, body in ADS_FILL.items():
                text = re.sub(rf"(## {section}\n\n)TODO:[^\n]*", lambda m: m.group(1) + body, text)
        else:
            for old, new in RULE_FILL.items():
                text = text.replace(old, new)
            text = re.sub(r"name: TODO ", "name: ", text)
        out[path] = text
    return out


def write(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


def test_cli_scaffolds_three_files_and_refuses_to_overwrite(tmp_path, capsys):
    assert main(["new-rule", NAME, "--dir", "rules/windows", "--repo", str(tmp_path)]) == 0
    out = capsys.readouterr().out.split()
    stem = f"rules/windows/{NAME}"
    assert [p for p in out if p.startswith("rules/")] == [f"{stem}.yml", f"{stem}.tests.yml", f"{stem}.ads.md"]
    assert all((tmp_path / p).is_file() for p in (f"{stem}.yml", f"{stem}.tests.yml", f"{stem}.ads.md"))
    assert main(["new-rule", NAME, "--dir", "rules/windows", "--repo", str(tmp_path)]) == 2
    assert "already exist" in capsys.readouterr().err
    assert main(["new-rule", "../evil", "--repo", str(tmp_path)]) == 2


def test_cli_refuses_a_directory_the_rules_globs_do_not_cover(tmp_path, capsys):
    """`--dir detections` scaffolded a rule that `detbot check` never looked at: it passed whatever it held."""
    assert main(["new-rule", NAME, "--dir", "detections", "--repo", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "detections/" in err and "rules/**/*.yml" in err, err
    assert not (tmp_path / "detections").exists()
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "detbot.yml").write_text("rules: ['detections/**/*.yml']\n")
    assert main(["new-rule", NAME, "--dir", "detections", "--repo", str(tmp_path)]) == 0


def test_unfilled_scaffold_flags_every_ads_section(tmp_path):
    write(tmp_path, render(NAME, "rules/windows").files)
    findings = run_checks(LocalSource(tmp_path), Config(), only=["ads"]).findings
    empty = sorted(f.message.split("'")[1] for f in findings if f.title == "ADS section empty")
    assert empty == sorted(["Goal", "Categorization", "Strategy Abstract", "Technical Context",
                            "Blind Spots and Assumptions", "False Positives", "Validation", "Priority", "Response"])
    assert all("placeholder" in f.message for f in findings)


def test_filled_scaffold_passes_every_check(tmp_path):
    files = fill(render(NAME, "rules/windows", title="Certutil Fetches A Remote File").files)
    assert not any("TODO" in text for text in files.values()), "the test's fill list misses a template TODO"
    write(tmp_path, files)
    result = run_checks(LocalSource(tmp_path), Config())
    assert set(result.checks_run) == set(CHECK_MODULES)
    failures = [f for f in result.findings if f.level == "failure"]
    assert failures == []
    assert [f for f in result.findings if f.check == "ads"] == []


def test_custom_ads_path_and_quoted_title():
    from checks.config import parse_config
    s = render("x", "rules", parse_config("ads_path: 'docs/{name}.md'\n"), title="Odd: title # with 'quotes'")
    assert "docs/x.md" in s.files
    import yaml
    assert yaml.safe_load(s.files["rules/x.yml"])["title"] == "Odd: title # with 'quotes'"
