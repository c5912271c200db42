"""Correlation rules over ordered events: thresholds reached and not reached, group-by, timespan."""
from __future__ import annotations

from datetime import datetime, timedelta

from checks.evaluator import compile_rule, evaluate_correlation
from checks.rulefile import build_rule

T0 = datetime(2024, 1, 1, 12, 0, 0)


def base(name: str, detection: dict):
    data = {"title": name, "name": name, "id": f"00000000-0000-0000-0000-00000000000{len(name) % 10}",
            "logsource": {"product": "x"}, "detection": detection}
    rule, errors = build_rule(data)
    assert not errors, errors
    return compile_rule(rule, data=data)


FAILED = base("failed_logon", {"sel": {"EventID": 4625}, "condition": "sel"})
SUCCESS = base("successful_logon", {"sel": {"EventID": 4624}, "condition": "sel"})
RULES = {"failed_logon": FAILED, "successful_logon": SUCCESS}


def corr(body: dict):
    data = {"title": "c", "correlation": body}
    rule, errors = build_rule(data)
    assert not errors, errors
    return rule


def at(seconds: float, **event):
    return (event, T0 + timedelta(seconds=seconds))


def test_event_count_with_group_by_and_timespan():
    c = corr({"type": "event_count", "rules": ["failed_logon"], "group-by": ["User"],
              "timespan": "1m", "condition": {"gte": 3}})
    events = [at(0, EventID=4625, User="a"), at(10, EventID=4625, User="a"), at(20, EventID=4625, User="b"),
              at(30, EventID=4625, User="a"), at(40, EventID=4624, User="b")]
    r = evaluate_correlation(c, RULES, events)
    assert r.matched and r.threshold == ">= 3"
    assert r.groups[("a",)].reached and r.groups[("a",)].value == 3
    assert not r.groups[("b",)].reached and r.groups[("b",)].value == 1
    assert r.reached == [("a",)] and r.not_reached == [("b",)]
    # the same three events spread over more than the timespan do not correlate
    spread = [at(0, EventID=4625, User="a"), at(50, EventID=4625, User="a"), at(70, EventID=4625, User="a")]
    r = evaluate_correlation(c, RULES, spread)
    assert not r.matched and r.groups[("a",)].value == 2


def test_value_count_counts_distinct_values():
    c = corr({"type": "value_count", "rules": ["failed_logon"], "group-by": ["Source"],
              "timespan": "5m", "condition": {"gte": 3, "field": "User"}})
    events = [at(i, EventID=4625, Source="h1", User=u) for i, u in enumerate(["a", "b", "a", "c"])]
    events += [at(5, EventID=4625, Source="h2", User="a"), at(6, EventID=4625, Source="h2", User="a")]
    r = evaluate_correlation(c, RULES, events)
    assert r.groups[("h1",)].reached and r.groups[("h1",)].value == 3
    assert not r.groups[("h2",)].reached and r.groups[("h2",)].value == 1


def test_temporal_needs_every_rule_within_the_timespan():
    c = corr({"type": "temporal", "rules": ["failed_logon", "successful_logon"], "group-by": ["User"],
              "timespan": "10s"})
    ok = [at(0, EventID=4624, User="a"), at(5, EventID=4625, User="a")]
    assert evaluate_correlation(c, RULES, ok).matched  # any order
    late = [at(0, EventID=4625, User="a"), at(30, EventID=4624, User="a")]
    r = evaluate_correlation(c, RULES, late)
    assert not r.matched and r.groups[("a",)].value == 1 and r.groups[("a",)].rules == ["failed_logon", "successful_logon"]
    other_user = [at(0, EventID=4625, User="a"), at(1, EventID=4624, User="b")]
    assert not evaluate_correlation(c, RULES, other_user).matched


def test_temporal_ordered_needs_the_order():
    c = corr({"type": "temporal_ordered", "rules": ["failed_logon", "successful_logon"],
              "group-by": ["User"], "timespan": "1m"})
    assert evaluate_correlation(c, RULES, [at(0, EventID=4625, User="a"), at(5, EventID=4624, User="a")]).matched
    r = evaluate_correlation(c, RULES, [at(0, EventID=4624, User="a"), at(5, EventID=4625, User="a")])
    assert not r.matched and r.groups[("a",)].value == 1


def test_rules_referenced_by_id_and_aliases():
    c = corr({"type": "temporal", "rules": ["failed_logon", "successful_logon"], "group-by": ["account"],
              "timespan": "1m", "aliases": {"account": {"failed_logon": "TargetUser", "successful_logon": "User"}}})
    events = [at(0, EventID=4625, TargetUser="bob"), at(1, EventID=4624, User="bob")]
    r = evaluate_correlation(c, RULES, events)
    assert r.matched and list(r.groups) == [("bob",)]


def test_events_without_timestamps_fall_in_every_window():
    c = corr({"type": "event_count", "rules": ["failed_logon"], "timespan": "1s", "condition": {"gte": 2}})
    r = evaluate_correlation(c, RULES, [({"EventID": 4625}, None), ({"EventID": 4625}, None)])
    assert r.matched and r.groups[()].value == 2


def test_missing_referenced_rule_is_reported():
    c = corr({"type": "event_count", "rules": ["nope"], "timespan": "1m", "condition": {"gte": 1}})
    r = evaluate_correlation(c, RULES, [({"EventID": 4625}, T0)])
    assert not r.matched and "nope" in r.errors[0]


def test_temporal_with_extended_condition():
    c = corr({"type": "temporal", "group-by": ["User"], "timespan": "1m",
              "condition": "failed_logon and not successful_logon"})
    only_failed = [at(0, EventID=4625, User="a")]
    both = [at(0, EventID=4625, User="a"), at(2, EventID=4624, User="a")]
    assert evaluate_correlation(c, RULES, only_failed).matched
    r = evaluate_correlation(c, RULES, both)
    assert r.threshold == "failed_logon and not successful_logon"
    # a window starting at the success sees only it; the one starting at the failure sees both
    assert not r.groups[("a",)].reached


def test_events_are_taken_in_time_order():
    c = corr({"type": "temporal_ordered", "rules": ["failed_logon", "successful_logon"],
              "group-by": ["User"], "timespan": "1m"})
    # listed success first, but the failure happened first
    events = [at(10, EventID=4624, User="a"), at(0, EventID=4625, User="a")]
    r = evaluate_correlation(c, RULES, events)
    assert r.matched and r.groups[("a",)].events == [1, 0]
