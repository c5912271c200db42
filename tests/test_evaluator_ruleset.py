"""RuleSet's prefilter never changes an outcome: it only skips rules that cannot match."""
from __future__ import annotations

import random

from hypothesis import given, settings

from bench.evaluator_corpus import make_events, make_rule
from checks.evaluator import EventView, RuleSet, compile_rule
from checks.rulefile import build_rule
from tests.test_evaluator_differential import COMPILED, EVENTS


def _corpus(n: int):
    r = random.Random(3)
    out = []
    for i in range(n):
        data = make_rule(r, i)
        rule, errors = build_rule(data)
        assert not errors, errors
        out.append(compile_rule(rule, data=data))
    return out


CORPUS = _corpus(300)
CORPUS_SET = RuleSet(CORPUS)
DIFF_RULES = [ours for ours, _ in COMPILED.values()]
DIFF_SET = RuleSet(DIFF_RULES)


def test_ruleset_equals_brute_force_on_synthetic_catalog():
    total = 0
    for event in make_events(300, seed=5):
        view = EventView(event)
        expected = [c for c in CORPUS if c.matches(view)]
        assert CORPUS_SET.matching(event) == expected
        total += len(expected)
    assert total > 50  # the workload really matches something
    assert len(CORPUS_SET.always) < len(CORPUS) // 4  # and the index really filters


@settings(max_examples=150, deadline=None)
@given(EVENTS)
def test_ruleset_equals_brute_force_on_every_modifier(event):
    assert DIFF_SET.matching(event) == [c for c in DIFF_RULES if c.matches(event)]


def test_rules_with_only_negations_are_always_candidates():
    data = {"title": "t", "logsource": {"product": "x"},
            "detection": {"filter": {"a": "x"}, "condition": "not filter"}}
    rule, _ = build_rule(data)
    c = compile_rule(rule, data=data)
    rs = RuleSet([c])
    assert rs.always == [0]
    assert rs.matching({"b": 1}) == [c] and rs.matching({"a": "X"}) == []


def test_a_failing_set_match_makes_every_clause_hold():
    class Broken:
        def Match(self, text):  # what the RE2 binding returns when its DFA runs out of memory
            return None

    field, _, targets, every = DIFF_SET.sets[0]
    DIFF_SET.sets[0] = (field, Broken(), targets, every)
    try:
        view = EventView({field: "anything"})
        rules_of_field = {DIFF_SET.clause_rule[c] for c in every}
        candidates = set(DIFF_SET.candidates(view))
        assert {r for r in rules_of_field if DIFF_SET.need[r] == 1} <= candidates
    finally:
        DIFF_SET.sets[0] = (field, _, targets, every)


def test_cidr_atoms_admit_every_address_the_matcher_accepts():
    data = {"title": "t", "logsource": {"product": "x"},
            "detection": {"sel": {"ip|cidr": ["10.0.0.0/8", "192.168.1.7/32"]}, "condition": "sel"}}
    rule, _ = build_rule(data)
    c = compile_rule(rule, data=data)
    rs = RuleSet([c])
    assert rs.always == []  # the atoms index it
    for ip in ("10.1.2.3", " 10.1.2.3\\n", "\\x0b10.9.9.9\\u3000", "192.168.1.7", "\\t192.168.1.7 "):
        ev = {"ip": ip.encode().decode("unicode_escape")}
        assert c.matches(ev) and rs.matching(ev) == [c], ip
    assert rs.matching({"ip": "11.0.0.1"}) == []
