"""Differential test: the evaluator against pySigma's SQLite backend (the Zircolite approach).

Each rule of RULES is converted to SQL; each hypothesis-generated event is one row of an in-memory
table whose columns are TEXT COLLATE NOCASE, as Zircolite creates them, with keyword searches over a
full-text column of all values. Wherever both engines support a rule they must agree, except the
cases listed in `known_difference`, each documented in docs/evaluator-vs-sqlite.md with the Sigma
specification text that makes the SQL result wrong.
"""
from __future__ import annotations

import base64
import os
import re
import sqlite3
from ipaddress import ip_address, ip_network

from hypothesis import HealthCheck, given, settings, strategies as st
from sigma.backends.sqlite import sqliteBackend

from checks.evaluator import compile_rule
from checks.evaluator.event import number_of, text_of
from checks.rulefile import build_rule

FIELDS = ["a", "b", "c", "d", "e", "f", "g", "n"]

# name -> detection; together they use every modifier the evaluator implements.
RULES: dict[str, dict] = {
    "plain": {"sel": {"a": "Foo"}},
    "list_or": {"sel": {"a": ["foo", "bar"]}},
    "wildcards": {"sel": {"a": "f?o*"}},
    "escaped_star": {"sel": {"a": "x\\*y"}},
    "backslash": {"sel": {"a": "C:\\Win\\x"}},
    "quote": {"sel": {"a": "it's"}},
    "cased": {"sel": {"a|cased": "Foo"}},
    "cased_contains": {"sel": {"a|contains|cased": "oO"}},
    "contains": {"sel": {"b|contains": "mid"}},
    "contains_all": {"sel": {"b|contains|all": ["mid", "end"]}},
    "startswith": {"sel": {"b|startswith": "pre"}},
    "endswith": {"sel": {"b|endswith": "end"}},
    "list_of_maps": {"sel": [{"a": "foo", "b|contains": "mid"}, {"c": "bar"}]},
    "re": {"sel": {"c|re": "^ab+c"}},
    "re_i": {"sel": {"c|re|i": "ab+c$"}},
    "re_m": {"sel": {"c|re|m": "^x$"}},
    "re_s": {"sel": {"c|re|s": "a.c"}},
    "cidr4": {"sel": {"d|cidr": "10.0.0.0/8"}},
    "cidr4_25": {"sel": {"d|cidr": "192.168.1.0/25"}},
    "cidr6": {"sel": {"d|cidr": "2001:db8::/32"}},
    "windash": {"sel": {"b|windash|contains": "-enc"}},
    "base64": {"sel": {"e|base64": "cmd"}},
    "base64offset": {"sel": {"e|base64offset|contains": "http"}},
    "wide_base64": {"sel": {"e|wide|base64offset|contains": "cmd"}},
    "utf16le_base64": {"sel": {"e|utf16le|base64offset|contains": "cmd"}},
    "utf16be_base64": {"sel": {"e|utf16be|base64offset|contains": "cmd"}},
    "utf16_base64": {"sel": {"e|utf16|base64": "cmd"}},
    "exists": {"sel": {"f|exists": True}},
    "not_exists": {"sel": {"f|exists": False}},
    "fieldref": {"sel": {"a|fieldref": "c"}},
    "fieldref_contains": {"sel": {"b|fieldref|contains": "a"}},
    "fieldref_startswith": {"sel": {"b|fieldref|startswith": "a"}},
    "lt": {"sel": {"n|lt": 10}},
    "lte": {"sel": {"n|lte": 10}},
    "gt": {"sel": {"n|gt": 10}},
    "gte": {"sel": {"n|gte": 10}},
    "null": {"sel": {"f": None}},
    "number": {"sel": {"n": 5}},
    "number_as_string": {"sel": {"n": "5"}},
    "bool": {"sel": {"g": True}},
    "keywords": {"kw": ["mimi", "evil"]},
    "keywords_all": {"kw": {"|all": ["mimi", "katz"]}},
    "not_filter": {"sel": {"a|contains": "o"}, "filter": {"b": "pre"}},
    "one_of": {"selection_1": {"a": "foo"}, "selection_2": {"c|startswith": "ab"}},
    "expand": {"sel": {"a|expand": "%names%"}},
    "nested": {"s1": {"a|startswith": "f"}, "s2": {"c|contains": "b"}, "f1": {"b|endswith": "end"},
               "f2": {"n": 5}},
    "all_of": {"sel_a": {"a|contains": "o"}, "sel_b": {"b|contains": "e"}},
    "null_filter": {"sel": {"a|contains": "o"}, "filter": {"f": None}},
    "windash_all": {"sel": {"b|windash|contains|all": ["-enc", "mid"]}},
    "keyword_number": {"kw": [5, "pre"]},
    "maps_negated": {"sel": [{"a": "foo"}, {"b|startswith": "pre", "n|gte": 10}], "f": {"c": "abc"}},
}
CONDITIONS = {"not_filter": "sel and not filter", "one_of": "1 of selection_*",
              "nested": "(s1 or s2) and not (f1 and f2)", "all_of": "all of sel_*",
              "null_filter": "sel and not filter", "maps_negated": "sel and not f"}
PLACEHOLDERS = {"names": ["foo", "b*r"]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


VOCAB = {
    "a": ["Foo", "foo", "FOO", "fao", "fxoyz", "bar", "x*y", "xzy", "C:\\Win\\x", "c:\\win\\X", "it's",
          "oO", "boOt", "abbc", "", "5"],
    "b": ["mid", "premidend", "PRE", "pre", "xend", "-enc", "/enc", "\u2013enc", "\u2014enc", "\u2015enc",
          "enc", "foo", "foobar", "fo", "MIDEND", "end"],
    "c": ["abc", "abbbc", "ABBC", "xabc", "a\nc", "x", "y\nx\nz", "abc\n", "bar", "Foo", "a\nb"],
    "d": ["10.1.2.3", "10.255.255.255", "11.0.0.1", "100.0.0.1", "192.168.1.127", "192.168.1.128",
          "2001:db8::1", "2001:DB8:ffff::1", "2001:db9::1", "::1", "10.x", " 10.1.2.3", "2001:0db8::1 "],
    "e": [b64(b"cmd"), b64(b"xhttp://"), b64(b"ahttps"), b64(b"abhttp"), b64("cmd".encode("utf-16-le")),
          b64("x cmd".encode("utf-16-le")), b64("cmd".encode("utf-16-be")), b64("ycmd".encode("utf-16-be")),
          b64(b"\xff\xfe" + "cmd".encode("utf-16-le")), "nothing"],
    "f": ["", "x", "0"],
    "g": [True, False, "true", "TRUE", "false", 1, 0, "1", "0", "yes"],
    "n": [5, "5", 10, "10", 9, "9", 11, 100, "100", 2.5, "abc", -1, "05"],
}
EXTRA_TEXT = st.text(alphabet="abcmidenpro*?\\'% _-/OFA", max_size=6)


def field_value(name: str):
    return st.one_of(st.sampled_from(VOCAB[name]), EXTRA_TEXT, st.none())


EVENTS = st.fixed_dictionaries({}, optional={f: field_value(f) for f in FIELDS}).map(
    lambda d: {**d, **({"k": "run mimikatz now"} if len(d) % 3 == 0 else {})})


def _compile_all():
    backend = sqliteBackend(fulltext_field="_raw")
    out = {}
    for name, det in RULES.items():
        detection = {**det, "condition": CONDITIONS.get(name, next(iter(det)))}
        data = {"title": name, "logsource": {"product": "test"}, "detection": detection}
        rule, errors = build_rule(data)
        assert not errors, (name, errors)
        ours = compile_rule(rule, PLACEHOLDERS, data=data)
        if name == "expand":
            sql = None  # the SQLite backend needs a pipeline for placeholders; tested on our side only
        else:
            queries = backend.convert_rule(rule)
            assert len(queries) == 1, name
            sql = queries[0]
        out[name] = (ours, sql)
    return out


COMPILED = _compile_all()


def _connection() -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.create_function("REGEXP", 2, lambda p, v: v is not None and re.search(p, str(v)) is not None,
                        deterministic=True)
    cols = ", ".join(f"`{f}` TEXT COLLATE NOCASE" for f in [*FIELDS, "k", "_raw"])
    con.execute(f"CREATE TABLE logs ({cols})")
    return con


CON = _connection()


def sqlite_matches(sql: str, event: dict) -> bool:
    CON.execute("DELETE FROM logs")
    cols = [*FIELDS, "k", "_raw"]
    row = [event.get(f) for f in FIELDS + ["k"]]
    raw = "\n".join(t for t in (text_of(v) for v in event.values() if v is not None) if t is not None)
    CON.execute(f"INSERT INTO logs VALUES ({', '.join('?' * len(cols))})", [*row, raw])
    return CON.execute(sql).fetchone() is not None


def _text(v) -> str | None:
    # What a TEXT-affinity column stores: Python True/False become 1/0 before becoming text.
    if isinstance(v, bool):
        return "1" if v else "0"
    return None if v is None else (str(v) if not isinstance(v, float) else repr(v))


_TEXT_OPS = {"lt": lambda a, b: a < b, "lte": lambda a, b: a <= b, "gt": lambda a, b: a > b,
             "gte": lambda a, b: a >= b}


def _items(name: str) -> list[tuple[str, object]]:
    return [(key, value) for sel in RULES[name].values()
            for mapping in (sel if isinstance(sel, list) else [sel]) if isinstance(mapping, dict)
            for key, value in mapping.items()]


def _comparisons(name: str) -> list[tuple[str, int]]:
    """The `n|lt: 10`-style comparisons a rule of RULES makes."""
    return [(key.split("|")[-1], value) for key, value in _items(name)  # type: ignore[misc]
            if key.startswith("n|") and key.split("|")[-1] in _TEXT_OPS]


def known_difference(name: str, event: dict) -> str | None:
    """The documented cases where the SQL result is wrong by the Sigma specification."""
    n, d = event.get("n"), event.get("d")
    for op, limit in _comparisons(name):
        if n is None:
            break
        # A TEXT column compares `n < 10` as text: "9" > "10", "abc" > "10".
        num = number_of(n)
        as_text = _TEXT_OPS[op](_text(n), str(limit))
        as_number = num is not None and _TEXT_OPS[op](num, limit)
        if as_text != as_number:
            return "numeric-as-text"
    if n is not None and any(key == "n" for key, _ in _items(name)):
        # "05" and 5.0 are the number 5, but not the text "5".
        if number_of(n) == 5 and _text(n) != "5":
            return "numeric-as-text"
    if name.startswith("cidr") and isinstance(d, str):
        # The backend expands a CIDR into text prefixes: "10.x" matches 10.%, 2001:0db8:: misses 2001:db8:%,
        # and so does an address with space around it (which the evaluator reads as the address).
        net = ip_network(RULES[name]["sel"]["d|cidr"])
        try:
            inside = ip_address(d.strip()) in net
        except ValueError:
            inside = False
        return "cidr-as-text" if inside != sqlite_matches(COMPILED[name][1], event) else None
    if name in ("exists", "not_exists") and "f" in event and event["f"] is None:
        # A present field whose value is null exists; SQL cannot tell it from an absent one.
        return "exists-null"
    return None


# CI runs 500 examples; a long hunt: DETBOT_DIFFERENTIAL_EXAMPLES=100000 pytest <this file>
EXAMPLES = int(os.environ.get("DETBOT_DIFFERENTIAL_EXAMPLES", "500"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS)
def test_evaluator_agrees_with_sqlite_backend(event):
    for name, (ours, sql) in COMPILED.items():
        if sql is None:
            continue
        mine = ours.matches(event)
        assert mine == ours.evaluate(event, full=True).matched, name
        theirs = sqlite_matches(sql, event)
        if mine != theirs and known_difference(name, event) is None:
            raise AssertionError(f"{name}: evaluator={mine} sqlite={theirs} event={event!r} sql={sql}")


def test_rule_set_uses_every_modifier():
    used = {m for det in RULES.values() for sel in det.values()
            for mapping in (sel if isinstance(sel, list) else [sel]) if isinstance(mapping, dict)
            for key in mapping for m in key.split("|")[1:]}
    assert used >= {"cased", "contains", "all", "startswith", "endswith", "re", "i", "m", "s", "cidr",
                    "windash", "base64", "base64offset", "utf16le", "utf16be", "utf16", "wide", "exists",
                    "fieldref", "lt", "lte", "gt", "gte", "expand"}


def test_known_differences_are_real():
    """Each documented exclusion is a case where the SQL backend really disagrees."""
    cases = [("gt", {"n": "9"}), ("lt", {"n": "9"}), ("cidr4", {"d": "10.x"}),
             ("cidr6", {"d": "2001:0db8::1"}),
             ("cidr4", {"d": " 10.1.2.3"}), ("not_exists", {"f": None})]
    for name, event in cases:
        ours, sql = COMPILED[name]
        assert ours.matches(event) != sqlite_matches(sql, event), name
        assert known_difference(name, event), name
