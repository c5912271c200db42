"""The syntax check reports each problem at the line and column of the offending element."""
from __future__ import annotations

import textwrap

import pytest

from sigma.validators.core import validators as core_validators

from checks.config import Config, ConfigError, parse_config
from checks.runner import run_checks
from checks.source import MemorySource
from checks.validation import NOT_IN_ALL

GOOD = """\
title: Certutil Download From Internet
id: 3c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b11
status: test
description: Detects certutil used to download a file from a URL with its url cache verb.
references:
    - https://lolbas-project.github.io/lolbas/Binaries/Certutil/
author: Detection Engineering
date: 2026-09-14
tags:
    - attack.command-and-control
    - attack.t1105
logsource:
    category: process_creation
    product: windows
detection:
    selection_img:
        Image|endswith: '\\certutil.exe'
    selection_cli:
        CommandLine|contains|all:
            - 'urlcache'
            - 'http'
    condition: all of selection_*
falsepositives:
    - Administrators fetching certificate revocation lists by hand
level: high
"""
# pySigma's core validators only (SigmaHQ's conventions stay out unless a test asks for them): these tests
# are about positions, and the file names here are short on purpose.
CORE_ONLY = "validators:\n  validators: [{}]\n".format(", ".join(
    sorted(set(core_validators) - NOT_IN_ALL - {"filename_length"})))


def run_syntax(files: dict[str, str | bytes], config: str | None = None):
    raw = {p: (c.encode() if isinstance(c, str) else c) for p, c in files.items()}
    cfg = parse_config(config) if config is not None else Config()
    return run_checks(MemorySource(raw), cfg, only=["syntax"]).findings


def line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln]
    return hits[nth - 1]


def col_of(text: str, needle: str) -> int:
    ln = text.splitlines()[line_of(text, needle) - 1]
    return ln.index(needle) + 1


def only(findings, title_part: str):
    hits = [f for f in findings if title_part in f.title or title_part in f.message]
    assert hits, f"no finding with {title_part!r} in {[(f.title, f.message) for f in findings]}"
    return hits


def mutate(old: str, new: str, base: str = GOOD) -> str:
    assert old in base
    return base.replace(old, new, 1)


def test_clean_rule_has_no_failure():
    findings = run_syntax({"rules/proc_creation_win_certutil_download.yml": GOOD})
    assert [f for f in findings if f.level == "failure"] == []


@pytest.mark.parametrize("old,new,needle,title", [
    ("date: 2026-09-14", "date: 2026-13-45", "2026-13-45", "Sigma date error"),
    ("id: 3c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b11", "id: not-a-uuid", "not-a-uuid", "Sigma identifier error"),
    ("level: high", "level: urgent", "urgent", "Sigma level error"),
    ("status: test", "status: done", "done", "Sigma status error"),
    ("    - attack.t1105", "    - t1105", "t1105", "Sigma tag error"),
    ("Image|endswith:", "Image|endwith:", "Image|endwith", "Sigma modifier error"),
    ("Image|endswith: '\\certutil.exe'", "Image|re: '(certutil'", "(certutil", "Sigma regular expression error"),
    ("Image|endswith: '\\certutil.exe'", "DestinationIp|cidr: '10.0.0.300/8'", "10.0.0.300/8", "Sigma type error"),
])
def test_sigma_error_at_offending_value(old, new, needle, title):
    text = mutate(old, new)
    f = only(run_syntax({"rules/r.yml": text}, CORE_ONLY), title)[0]
    assert f.level == "failure"
    assert (f.start_line, f.start_column) == (line_of(text, needle), col_of(text, needle.split("|")[0]))
    assert f.rule_id == (None if "not-a-uuid" in text else "3c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b11") or \
        f.rule_id == "not-a-uuid"


def test_undefined_selection_in_condition_points_at_the_name():
    text = mutate("condition: all of selection_*", "condition: selection_img and not filter_admin")
    f = only(run_syntax({"rules/r.yml": text}, CORE_ONLY), "filter_admin")[0]
    assert f.title == "Sigma condition error"
    assert (f.start_line, f.start_column) == (line_of(text, "condition:"), col_of(text, "filter_admin"))


def test_quoted_condition_column_counts_the_quote():
    text = mutate("condition: all of selection_*", "condition: 'selection_img and nope'")
    f = only(run_syntax({"rules/r.yml": text}, CORE_ONLY), "nope")[0]
    assert f.start_column == col_of(text, "nope")


def test_condition_syntax_error_at_its_character():
    text = mutate("condition: all of selection_*", "condition: selection_img or (selection_cli")
    f = only(run_syntax({"rules/r.yml": text}, CORE_ONLY), "Sigma condition error")[0]
    assert f.start_line == line_of(text, "condition:")
    # pyparsing reports the end of the text: the column just past the last character
    assert f.start_column == len(text.splitlines()[f.start_line - 1]) + 1


def test_selector_matching_nothing():
    text = mutate("condition: all of selection_*", "condition: 1 of filter_*")
    f = only(run_syntax({"rules/r.yml": text}, CORE_ONLY), "filter_*")[0]
    assert (f.start_line, f.start_column) == (line_of(text, "condition:"), col_of(text, "filter_*"))


def test_undefined_name_found_even_when_detection_is_otherwise_broken():
    text = mutate("condition: all of selection_*", "condition: selection_img and not gone")
    text = mutate("Image|endswith:", "Image|endwith:", text)
    findings = run_syntax({"rules/r.yml": text}, CORE_ONLY)
    assert only(findings, "Sigma modifier error")
    f = only(findings, "'gone'")[0]
    assert f.start_column == col_of(text, "gone")


def test_missing_sections():
    text = "\n".join(ln for ln in GOOD.splitlines() if not ln.startswith(("title:",)))
    f = only(run_syntax({"rules/r.yml": text}, CORE_ONLY), "Sigma title error")[0]
    assert f.start_line == 1
    no_logsource = GOOD.replace("logsource:\n    category: process_creation\n    product: windows\n", "")
    assert only(run_syntax({"rules/r.yml": no_logsource}, CORE_ONLY), "Sigma logsource error")


# -- validator issues -----------------------------------------------------------------------------
def test_validator_issue_at_the_tag():
    text = mutate("    - attack.t1105", "    - attack.t1105\n    - attack.t9999")
    f = only(run_syntax({"rules/r.yml": text}, CORE_ONLY), "validator attacktag")[0]
    assert f.level == "warning"  # medium severity
    assert (f.start_line, f.start_column) == (line_of(text, "attack.t9999"), col_of(text, "attack.t9999"))


def test_validator_issue_at_the_detection_item_and_value():
    text = mutate("        Image|endswith: '\\certutil.exe'",
                  "        Image|endswith: '\\certutil.exe'\n        ParentImage: '*explorer*'\n        Count: '5'")
    findings = run_syntax({"rules/r.yml": text}, CORE_ONLY)
    wild = only(findings, "validator wildcards_instead_of_modifiers")[0]
    assert (wild.start_line, wild.start_column) == (line_of(text, "ParentImage"), col_of(text, "ParentImage"))
    assert "ParentImage: *explorer*" in wild.message
    num = only(findings, "validator number_as_string")[0]
    assert (num.start_line, num.start_column) == (line_of(text, "Count:"), col_of(text, "'5'"))
    assert num.level == "notice"  # low severity


def test_validator_issue_at_dangling_selection():
    text = mutate("    condition:", "    unused_sel:\n        User: admin\n    condition:")
    f = only(run_syntax({"rules/r.yml": text}, CORE_ONLY), "validator dangling_detection")[0]
    assert f.start_line == line_of(text, "unused_sel:")
    assert f.level == "failure"  # high severity


def test_sigmahq_validators_included_and_located():
    text = mutate("title: Certutil Download From Internet", "title: certutil download from internet.")
    findings = run_syntax({"rules/windows/proc_creation_win_certutil_download.yml": text})
    names = {f.title for f in findings}
    assert {"validator sigmahq_title_end", "validator sigmahq_title_case"} <= names
    case = [f for f in findings if f.title == "validator sigmahq_title_case" and "download" in f.message][0]
    assert (case.start_line, case.start_column) == (1, col_of(text, "download"))


def test_validator_selection_and_exclusion_per_rule():
    text = mutate("    - attack.t1105", "    - attack.t1105\n    - attack.t9999")
    cfg = CORE_ONLY.replace("[", "[all, -tag_format, ")
    assert only(run_syntax({"rules/r.yml": text}, cfg), "attacktag")
    excluded = cfg + "  exclusions:\n    3c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b11: [attacktag]\n"
    assert not [f for f in run_syntax({"rules/r.yml": text}, excluded) if "attacktag" in f.title]
    narrowed = "validators:\n  validators: [dangling_detection]\n"
    assert not [f for f in run_syntax({"rules/r.yml": text}, narrowed) if f.title.startswith("validator")]


def test_validator_config_passed_to_constructor():
    long_title = "title: " + "Certutil Download " * 8
    text = mutate("title: Certutil Download From Internet", long_title.strip())
    base = "validators:\n  validators: [sigmahq_title_length]\n"
    assert only(run_syntax({"rules/r.yml": text}, base), "sigmahq_title_length")
    relaxed = base + "  config:\n    sigmahq_title_length: {max_length: 200}\n"
    assert not run_syntax({"rules/r.yml": text}, relaxed)


def test_unknown_validator_is_a_config_error_at_its_line(tmp_path, capsys):
    cfg = "rules: ['rules/**/*.yml']\nvalidators:\n  validators:\n    - all\n    - -no_such_validator\n"
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert (e.value.line, e.value.key) == (5, "validators.validators.1")
    assert "no_such_validator" in str(e.value)
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "detbot.yml").write_text(cfg)
    from bot.cli import main
    assert main(["check", str(tmp_path)]) == 2
    assert ".github/detbot.yml:5" in capsys.readouterr().err
    bad_exclusion = "validators:\n  exclusions:\n    some-id: [attacktag, nope]\n"
    with pytest.raises(ConfigError) as e:
        parse_config(bad_exclusion)
    assert e.value.line == 3


def test_invalid_validator_config_built_in_code_is_a_finding():
    cfg = Config(validators={"validators": ["all", "-no_such_validator"]})
    findings = run_checks(MemorySource({"rules/r.yml": GOOD.encode()}), cfg, only=["syntax"]).findings
    f = only(findings, "Invalid validator config")[0]
    assert (f.path, f.level) == (".github/detbot.yml", "failure")


def test_legacy_defense_evasion_satisfies_v19_tactic():
    text = GOOD.replace("    - attack.command-and-control\n    - attack.t1105",
                        "    - attack.defense-evasion\n    - attack.t1218.011")
    cfg = "validators:\n  validators: [attacktag, sigmahq_tags_techniques_without_tactics]\n"
    assert run_syntax({"rules/r.yml": text}, cfg) == []
    # without any tactic tag the v19 successor is named
    bare = text.replace("    - attack.defense-evasion\n", "")
    f = only(run_syntax({"rules/r.yml": bare}, cfg), "attack.stealth")[0]
    assert f.start_line == line_of(bare, "attack.t1218.011")


# -- across files ---------------------------------------------------------------------------------
def test_duplicate_ids_reported_at_each_id_naming_the_other():
    other = GOOD.replace("title: Certutil Download From Internet", "title: Certutil Copy")
    findings = run_syntax({"rules/a.yml": GOOD, "rules/sub/b.yml": other}, CORE_ONLY)
    dups = only(findings, "Duplicate rule id")
    assert {(f.path, f.start_line) for f in dups} == {("rules/a.yml", 2), ("rules/sub/b.yml", 2)}
    a = [f for f in dups if f.path == "rules/a.yml"][0]
    assert "rules/sub/b.yml:2" in a.message and a.start_column == 5


def test_duplicate_id_in_pull_request_mode_sees_unchanged_files():
    other = GOOD.replace("title: Certutil Download From Internet", "title: Certutil Copy")
    source = MemorySource({"rules/a.yml": GOOD.encode(), "rules/b.yml": other.encode()})
    findings = run_checks(source, parse_config(CORE_ONLY), changed=["rules/b.yml"], only=["syntax"]).findings
    dups = only(findings, "Duplicate rule id")
    assert [(f.path, f.start_line) for f in dups] == [("rules/b.yml", 2)]
    assert "rules/a.yml:2" in dups[0].message


def test_multi_document_file_checks_each_document():
    second = mutate("id: 3c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b11", "id: 4c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b12")
    second = mutate("level: high", "level: urgent", second)
    text = GOOD + "---\n" + second
    findings = run_syntax({"rules/r.yml": text}, CORE_ONLY)
    assert only(findings, "Multi-document file")[0].level == "notice"
    lvl = only(findings, "Sigma level error")[0]
    assert lvl.start_line == line_of(text, "level: urgent") and lvl.rule_id == "4c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b12"


CORRELATION = """\
title: Many Certutil Downloads
id: 5d1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b13
status: test
correlation:
    type: event_count
    rules:
        - 3c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b11
        - certutil_named
        - missing_rule
    group-by:
        - Computer
    timespan: 1h
    condition:
        gte: 3
level: high
"""


def test_correlation_references_must_exist():
    named = mutate("status: test", "name: certutil_named\nstatus: test",
                   GOOD.replace("3c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b11", "6c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b14"))
    findings = run_syntax({"rules/a.yml": GOOD, "rules/b.yml": named, "rules/corr.yml": CORRELATION}, CORE_ONLY)
    refs = only(findings, "Unknown correlated rule")
    assert [(f.path, f.start_line, f.start_column) for f in refs] == \
        [("rules/corr.yml", line_of(CORRELATION, "missing_rule"), col_of(CORRELATION, "missing_rule"))]


@pytest.mark.parametrize("old,new,needle,title", [
    ("type: event_count", "type: not_a_type", "not_a_type", "Sigma correlation type error"),
    ("timespan: 1h", "timespan: 1x", "1x", "Sigma timespan error"),
    ("    group-by:\n        - Computer", "    group-by: 5", "5", "Sigma correlation rule error"),
    ("gte: 3", "gte: abc", "abc", "Sigma correlation condition error"),
])
def test_correlation_errors_at_their_attribute(old, new, needle, title):
    text = CORRELATION.replace(old, new)
    assert text != CORRELATION
    findings = run_syntax({"rules/a.yml": GOOD, "rules/corr.yml": text}, CORE_ONLY)
    f = only([f for f in findings if f.path == "rules/corr.yml"], title)[0]
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.endswith(": " + needle))
    assert (f.start_line, f.start_column) == (line, text.splitlines()[line - 1].index(needle) + 1)


def test_anything_pysigma_raises_becomes_a_finding(monkeypatch):
    from sigma.rule import SigmaRule

    def explode(*a, **k):
        raise RecursionError("deep")
    monkeypatch.setattr(SigmaRule, "from_dict", classmethod(lambda cls, *a, **k: explode()))
    findings = run_syntax({"rules/r.yml": GOOD, "rules/s.yml": GOOD.replace("3c1d", "4c1d")}, CORE_ONLY)
    crashed = only(findings, "pySigma crashed")
    assert {f.path for f in crashed} == {"rules/r.yml", "rules/s.yml"}
    assert "RecursionError" in crashed[0].message or "deep" in crashed[0].message


def test_validator_crash_is_a_finding_not_a_crash(monkeypatch):
    from sigma.validators.core.tags import DuplicateTagValidator

    def boom(self, rule):
        raise KeyError("odd")
    monkeypatch.setattr(DuplicateTagValidator, "validate", boom)
    findings = run_syntax({"rules/r.yml": GOOD}, CORE_ONLY)
    f = only(findings, "validator duplicate_tag failed")[0]
    assert f.level == "warning"


def test_yaml_error_position():
    text = textwrap.dedent("""\
        title: x
        detection:
          sel: [a
          condition: sel
        """)
    f = only(run_syntax({"rules/r.yml": text}), "YAML error")[0]
    assert f.start_line == 4 and f.level == "failure"


def test_pull_request_mode_on_github_reads_no_extra_files():
    """On GitHub the bot's source lists the whole tree but holds only fetched files: the syntax check must
    not fetch every other rule, and must not call a correlated rule unknown when it could not look."""
    fetched = {"rules/corr.yml": CORRELATION.encode()}
    reads = []

    class TreeLike(MemorySource):
        def read(self, path):
            reads.append(path)
            return super().read(path)
    source = TreeLike(fetched, listing=["rules/a.yml", "rules/b.yml", "rules/corr.yml"])
    findings = run_checks(source, parse_config(CORE_ONLY), changed=["rules/corr.yml"], only=["syntax"]).findings
    assert set(reads) <= {"rules/corr.yml"}
    assert not [f for f in findings if f.title == "Unknown correlated rule"]


LEGACY = """\
action: global
title: Legacy Collection
id: 7d1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b17
status: test
level: high
detection:
    condition: selection
---
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\\\x.exe'
---
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        Image|endwith: '/x'
"""


def test_legacy_collection_documents_share_the_global_id():
    findings = run_syntax({"rules/coll.yml": LEGACY}, CORE_ONLY)
    assert not [f for f in findings if f.title == "Duplicate rule id"]
    assert only(findings, "Unknown modifier 'endwith'")[0].start_line == line_of(LEGACY, "endwith")
    other = GOOD.replace("3c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b11", "7d1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b17")
    dups = only(run_syntax({"rules/coll.yml": LEGACY, "rules/other.yml": other}, CORE_ONLY), "Duplicate rule id")
    assert sorted((f.path, f.start_line) for f in dups) == [("rules/coll.yml", 3), ("rules/other.yml", 2)]


def test_duplicate_key_in_a_document_merged_with_the_global_one_is_reported():
    text = LEGACY.replace("        Image|endswith: '\\\\x.exe'\n",
                          "        Image|endswith: '\\\\x.exe'\n        Image|endswith: '\\\\y.exe'\n")
    assert text != LEGACY
    dups = only(run_syntax({"rules/coll.yml": text}, CORE_ONLY), "Duplicate key")
    assert [f.start_line for f in dups] == [line_of(text, "y.exe")]


def test_issue_about_a_modifier_lands_on_the_key_using_it():
    text = mutate("        CommandLine|contains|all:\n            - 'urlcache'\n            - 'http'",
                  "        CommandLine|contains: 'urlcache'\n        CommandLine|endswith|all: 'http'")
    cfg = "validators:\n  validators: [sigmahq_invalid_all_modifier, all_of_them_condition]\n"
    text = mutate("condition: all of selection_*", "condition: selection_img and all of them", text)
    findings = run_syntax({"rules/r.yml": text}, cfg)
    f = only(findings, "sigmahq_invalid_all_modifier")[0]
    assert f.start_line == line_of(text, "CommandLine|endswith|all")
    them = only(findings, "all_of_them_condition")[0]
    assert (them.start_line, them.start_column) == (line_of(text, "condition:"), col_of(text, "them"))
