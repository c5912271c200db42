"""Malformed rule files each become a finding at their line, and the run goes on to the other rules."""
from __future__ import annotations

import pytest

from bot.cli import main
from checks.config import Config
from checks.runner import run_checks
from checks.source import LocalSource, MemorySource
from tests.test_syntax import GOOD

# A valid rule with one deliberate Sigma error, to prove it was still checked after the bad files.
CANARY = GOOD.replace("level: high", "level: urgent")
CANARY_LINE = CANARY.splitlines().index("level: urgent") + 1

BOMB = b"""\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""

CASES: dict[str, tuple[bytes, int, str]] = {
    # name: (content, expected line, text expected in title or message)
    "invalid_yaml": (b"title: x\ndetection:\n  sel: [a\n  condition: sel\n", 4, "YAML error"),
    "alias_bomb": (BOMB, 6, "alias bomb"),  # the first anchor whose expansion is too big
    "alias_cycle": (b"title: x\ndetection: &d\n  sel: *d\n", 2, "alias"),
    "binary": (b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 4, 1, "binary"),
    "non_utf8": (b"title: x\ndescription: caf\xe9 au lait\n", 2, "UTF-8"),
    "non_mapping_list": (b"- title: x\n- id: y\n", 1, "not a mapping"),
    "non_mapping_scalar": (b"just some text\n", 1, "not a mapping"),
    "empty": (b"", 1, "Empty rule file"),
    "only_comments": (b"# nothing here\n", 1, "Empty rule file"),
    "deep_nesting": (b"a: " + b"[" * 50_000 + b"]" * 50_000 + b"\n", 1, "nesting"),
    "tab_indent": (b"title: x\ndetection:\n\tsel: 1\n", 3, "YAML error"),
    "python_tag": (b"title: !!python/object/apply:os.system ['id']\n", 1, "YAML error"),
    "unhashable_key": (b"title: x\n? [a, b]\n: c\n", 2, "YAML error"),
    "duplicate_key": (b"title: x\ntitle: y\n", 2, "Duplicate key"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_malformed_file_is_a_finding_and_the_run_goes_on(name):
    content, line, expected = CASES[name]
    files = {f"rules/{name}.yml": content, "rules/zz_canary.yml": CANARY.encode()}
    findings = run_checks(MemorySource(files), Config(), only=["syntax"]).findings
    bad = [f for f in findings if f.path == f"rules/{name}.yml"]
    assert any(expected in f.title or expected in f.message for f in bad), [(f.title, f.message) for f in bad]
    hit = [f for f in bad if expected in f.title or expected in f.message][0]
    assert hit.level == "failure" and hit.start_line == line
    canary = [f for f in findings if f.path == "rules/zz_canary.yml" and f.title == "Sigma level error"]
    assert [f.start_line for f in canary] == [CANARY_LINE]


def test_fifty_megabyte_file_is_refused_without_parsing(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.mkdir()
    with open(rules / "huge.yml", "wb") as fh:
        fh.write(b"title: x\n")
        chunk = b"# padding " * 10_000 + b"\n"
        for _ in range(50 * 1024 * 1024 // len(chunk) + 1):
            fh.write(chunk)
    assert (rules / "huge.yml").stat().st_size >= 50 * 1024 * 1024
    (rules / "zz_canary.yml").write_text(CANARY)
    assert main(["check", str(tmp_path), "--check", "syntax"]) == 1
    out = capsys.readouterr().out
    assert "rules/huge.yml:1:1: failure: YAML error: file is 52," in out
    assert f"rules/zz_canary.yml:{CANARY_LINE}:" in out


def test_unreadable_rule_file_is_a_finding(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "link.yml").symlink_to(tmp_path / "missing-target.yml")
    (rules / "zz_canary.yml").write_text(CANARY)
    findings = run_checks(LocalSource(tmp_path), Config(), only=["syntax"]).findings
    assert {f.path for f in findings} == {"rules/link.yml", "rules/zz_canary.yml"}


def test_too_many_documents_in_one_file():
    from checks.rulefile import MAX_DOCS
    content = ("---\n" + CANARY) * (MAX_DOCS + 3)
    findings = run_checks(MemorySource({"rules/many.yml": content.encode()}), Config(), only=["syntax"]).findings
    assert any(f"more than {MAX_DOCS}" in f.message for f in findings)


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_EDITS = st.lists(st.tuples(st.integers(0, len(GOOD)), st.integers(0, 12),
                            st.sampled_from(["", ":", "- ", "[", "]", "{", "}", "&a ", "*a", "|", "'", '"', "\n",
                                             "  ", "\t", "#", "!!binary ", "selection", "|re", "|cidr", "?",
                                             "\u00e9", "\x00", "%", "@", ",", "1 of ", " and not "])),
                  min_size=1, max_size=6)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_EDITS)
def test_random_edits_never_crash_the_check(edits):
    text = GOOD
    for at, cut, insert in edits:
        at = min(at, len(text))
        text = text[:at] + insert + text[at + cut:]
    findings = run_checks(MemorySource({"rules/r.yml": text.encode("utf-8", "surrogatepass")}), Config(),
                          only=["syntax"]).findings
    assert not [f for f in findings if f.title == "Internal error"], [f.message for f in findings]
    assert all(f.start_line >= 1 and (f.start_column or 1) >= 1 for f in findings)
    n_lines = max(1, len(text.splitlines()))
    assert all(f.start_line <= n_lines + 1 for f in findings if f.path == "rules/r.yml")


@pytest.mark.parametrize("key", ["&a ", "1", "~", "true"])
def test_search_identifier_named_by_a_non_string_key_is_no_internal_error(key):
    """Found by test_random_edits_never_crash_the_check: `&a : value` makes a detection key null; the condition's
    identifiers are then looked up by name when pySigma rejects the rule (here: an unknown modifier)."""
    text = GOOD.replace("selection_img:", f"{key}:", 1).replace("|contains|all", "|:contains|all")
    assert text.count(f"{key}:") == 1 and "|:contains" in text
    findings = run_checks(MemorySource({"rules/r.yml": text.encode()}), Config(), only=["syntax"]).findings
    assert not [f.message for f in findings if f.title == "Internal error"]
    assert findings and all(f.start_line >= 1 for f in findings)
