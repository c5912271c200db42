"""Compile-time caches (condition parse trees by text, expanded trees by text and identifier names,
CIDR atoms by network) must be invisible: every rule evaluates its own detections."""
from __future__ import annotations

import pytest

from checks.evaluator import CompileError, RuleSet, compile_rule
from checks.rulefile import build_rule

COND = "1 of selection_* and not 1 of filter_*"


def compiled(detection: dict):
    data = {"title": "t", "logsource": {"product": "windows"}, "detection": detection}
    rule, errors = build_rule(data)
    assert not errors, errors
    return compile_rule(rule, data=data)


def test_same_condition_text_other_identifiers():
    a = compiled({"selection_a": {"Image|endswith": "\\a.exe"}, "filter_x": {"User": "x"}, "condition": COND})
    b = compiled({"selection_a": {"Image|endswith": "\\a.exe"}, "selection_b": {"Image|endswith": "\\b.exe"},
                  "filter_y": {"User": "y"}, "condition": COND})
    assert a.identifiers == ["selection_a", "filter_x"]
    assert b.identifiers == ["selection_a", "selection_b", "filter_y"]
    assert b.matches({"Image": "c:\\b.exe", "User": "x"}) and not a.matches({"Image": "c:\\b.exe", "User": "x"})
    assert a.matches({"Image": "c:\\a.exe", "User": "y"}) and not b.matches({"Image": "c:\\a.exe", "User": "y"})
    assert not a.matches({"Image": "c:\\a.exe", "User": "x"})


def test_same_condition_and_identifiers_other_values_and_modifiers():
    det = {"selection_1": {"Image|endswith": "\\a.exe"}, "filter_1": {"User|contains": "adm"}, "condition": COND}
    a = compiled(det)
    b = compiled({"selection_1": {"Image|startswith": "c:\\tools"}, "filter_1": {"User|cased": "Adm"},
                  "condition": COND})
    assert a.trees == b.trees  # one shared tree is fine; its leaves are bound per rule
    e1 = {"Image": "c:\\tools\\a.exe", "User": "Admin"}
    assert not a.matches(e1) and b.matches(e1)
    e2 = {"Image": "c:\\tools\\a.exe", "User": "Adm"}
    assert not a.matches(e2) and not b.matches(e2)
    e3 = {"Image": "d:\\a.exe", "User": "bob"}
    assert a.matches(e3) and not b.matches(e3)
    # the same through a rule set, whose index is built from each rule's own detections
    rs = RuleSet([a, b])
    assert rs.matching(e1) == [b] and rs.matching(e3) == [a] and rs.matching(e2) == []
    full = b.evaluate(e1, full=True)
    assert [(i.identifier, i.field, i.modifiers) for i in full.items] == [
        ("selection_1", "Image", ["startswith"]), ("filter_1", "User", ["cased"])]


def test_all_of_them_follows_each_rules_identifiers():
    a = compiled({"s1": {"A": "1"}, "condition": "all of them"})
    b = compiled({"s1": {"A": "1"}, "s2": {"B": "2"}, "condition": "all of them"})
    assert a.matches({"A": "1"}) and not b.matches({"A": "1"}) and b.matches({"A": "1", "B": "2"})


def test_a_failed_compile_does_not_poison_the_condition_text():
    data = {"title": "t", "logsource": {"product": "windows"},
            "detection": {"selection": {"A": "1"}, "condition": "selection and not filter"}}
    rule, _ = build_rule(data)
    with pytest.raises(CompileError):
        compile_rule(rule, data=data)
    ok = compiled({"selection": {"A": "1"}, "filter": {"B": "2"}, "condition": "selection and not filter"})
    assert ok.matches({"A": "1"}) and not ok.matches({"A": "1", "B": "2"})


def test_same_network_in_rules_on_other_fields():
    a = compiled({"sel": {"src|cidr": "10.0.0.0/12"}, "condition": "sel"})
    b = compiled({"sel": {"dst|cidr": "10.0.0.0/12"}, "condition": "sel"})
    rs = RuleSet([a, b])
    assert rs.matching({"src": "10.15.0.1", "dst": "10.16.0.1"}) == [a]
    assert rs.matching({"src": "10.16.0.1", "dst": "10.0.0.9"}) == [b]
