"""Sigma semantics of the evaluator, one test per rule of the specification it implements."""
from __future__ import annotations

import time

import pytest

from checks.evaluator import MISSING, CompileError, EventView, compile_rule
from checks.rulefile import build_rule


def compiled(detection: dict, placeholders: dict | None = None):
    data = {"title": "t", "logsource": {"product": "windows"}, "detection": detection}
    rule, errors = build_rule(data)
    assert not errors, errors
    return compile_rule(rule, placeholders, data=data)


def sel(key: str, value, **extra):
    return compiled({"sel": {key: value, **extra}, "condition": "sel"})


def m(c, event) -> bool:
    fast, full = c.matches(event), c.evaluate(event, full=True).matched
    assert fast == full == c.evaluate(event).matched
    return fast


def test_case_insensitive_by_default_and_cased():
    c = sel("Image", "C:\\Windows\\cmd.exe")
    assert m(c, {"Image": "c:\\windows\\CMD.EXE"})
    assert not m(c, {"Image": "c:\\windows\\cmd.exe2"})
    cased = sel("Image|cased", "cmd.exe")
    assert m(cased, {"Image": "cmd.exe"})
    assert not m(cased, {"Image": "CMD.exe"})
    cased_contains = sel("Image|contains|cased", "Cmd")
    assert m(cased_contains, {"Image": "xCmdx"}) and not m(cased_contains, {"Image": "xcmdx"})


def test_wildcards_and_escapes():
    assert m(sel("f", "a*c"), {"f": "abbbc"}) and m(sel("f", "a*c"), {"f": "ac"})
    assert m(sel("f", "a?c"), {"f": "abc"}) and not m(sel("f", "a?c"), {"f": "ac"})
    assert m(sel("f", "*"), {"f": ""}) and not m(sel("f", "*"), {})
    # \* is a literal star, \? a literal question mark
    assert m(sel("f", "a\\*c"), {"f": "a*c"}) and not m(sel("f", "a\\*c"), {"f": "abc"})
    assert m(sel("f", "a\\?"), {"f": "a?"}) and not m(sel("f", "a\\?"), {"f": "ab"})
    # \\* is a backslash followed by a wildcard; a lone backslash stays a backslash
    assert m(sel("f", "C:\\\\*"), {"f": "C:\\anything"})
    # ...while a single backslash before * escapes the wildcard (the spec's own rule)
    assert m(sel("f", "C:\\Windows\\*"), {"f": "c:\\windows*"})
    assert not m(sel("f", "C:\\Windows\\*"), {"f": "c:\\windows\\x"})
    assert m(sel("f", "a\\\\\\\\b"), {"f": "a\\\\b"})  # four backslashes are two
    # Wildcards span newlines
    assert m(sel("f", "a*b"), {"f": "a\nb"})


def test_value_lists_are_or_and_all_is_and():
    c = sel("CommandLine|contains", ["-enc", "-nop"])
    assert m(c, {"CommandLine": "powershell -nop"})
    assert not m(c, {"CommandLine": "powershell"})
    c = sel("CommandLine|contains|all", ["-enc", "-nop"])
    assert m(c, {"CommandLine": "powershell -nop -enc AAA"})
    assert not m(c, {"CommandLine": "powershell -nop"})
    r = c.evaluate({"CommandLine": "x -nop"}, full=True)
    assert r.items[0].matched_values == [1] and not r.items[0].matched


def test_list_of_maps_selection_is_or_of_ands():
    c = compiled({"sel": [{"Image|endswith": "\\a.exe", "User": "x"}, {"Description": "Test"}],
                  "condition": "sel"})
    assert m(c, {"Image": "C:\\a.exe", "User": "X"})
    assert not m(c, {"Image": "C:\\a.exe", "User": "y"})
    assert m(c, {"Description": "test"})
    r = c.evaluate({"Description": "test"}, full=True)
    assert [it.yaml_path for it in r.items] == [
        ("detection", "sel", 0, "Image|endswith"), ("detection", "sel", 0, "User"),
        ("detection", "sel", 1, "Description")]
    assert [it.matched for it in r.items] == [False, False, True]


def test_contains_startswith_endswith():
    assert m(sel("f|contains", "mid"), {"f": "aMIDb"}) and not m(sel("f|contains", "mid"), {"f": "mi d"})
    assert m(sel("f|startswith", "pre"), {"f": "PREfix"}) and not m(sel("f|startswith", "pre"), {"f": "xpre"})
    assert m(sel("f|endswith", ".exe"), {"f": "a.EXE"}) and not m(sel("f|endswith", ".exe"), {"f": "a.exe "})
    # wildcards inside a modified value still work
    assert m(sel("f|contains", "a*c"), {"f": "xxabbbcxx"})


def test_re_with_flags():
    assert m(sel("f|re", "^ab+c$"), {"f": "abbbc"})
    assert not m(sel("f|re", "^ab+c$"), {"f": "ABBC"})  # case-sensitive by default
    assert m(sel("f|re|i", "^ab+c$"), {"f": "ABBC"})
    assert m(sel("f|re|m", "^b$"), {"f": "a\nb\nc"}) and not m(sel("f|re", "^b$"), {"f": "a\nb\nc"})
    assert m(sel("f|re|s", "a.b"), {"f": "a\nb"}) and not m(sel("f|re", "a.b"), {"f": "a\nb"})
    # unanchored search, look-arounds supported
    assert m(sel("f|re", "b+"), {"f": "abbbc"})
    assert m(sel("f|re", "cmd(?!\\.exe)"), {"f": "cmd.com"}) and not m(sel("f|re", "cmd(?!\\.exe)"), {"f": "cmd.exe"})


def test_hostile_regex_times_out_and_is_reported():
    c = sel("f|re", "(?=a)(a|aa)+$")
    event = {"f": "a" * 40 + "!"}
    t = time.monotonic()
    r = c.evaluate(event, full=True)
    assert time.monotonic() - t < 5
    assert not r.matched
    assert r.errors and "timed out" in r.errors[0]
    assert not c.matches(event)
    # the limit is paid once per pattern: further events are refused at once, still reported
    t = time.monotonic()
    for _ in range(20):
        r = c.evaluate({"f": "a" * 30 + "?"}, full=True)
        assert not r.matched and "timed out" in r.errors[0]
    assert time.monotonic() - t < 1


def test_cidr_ipv4_and_ipv6():
    c = sel("ip|cidr", ["10.0.0.0/8", "192.168.1.0/25"])
    assert m(c, {"ip": "10.200.3.4"}) and m(c, {"ip": "192.168.1.127"})
    assert not m(c, {"ip": "192.168.1.128"}) and not m(c, {"ip": "11.0.0.1"}) and not m(c, {"ip": "10.x"})
    c6 = sel("ip|cidr", "2001:db8::/32")
    assert m(c6, {"ip": "2001:db8:1::5"}) and m(c6, {"ip": "2001:DB8::1"})
    assert not m(c6, {"ip": "2001:db9::1"}) and not m(c6, {"ip": "10.0.0.1"})


def test_cidr_rules_sharing_one_event_view():
    """Addresses are parsed once per event field and shared by every CIDR value that reads it."""
    v4, v6 = sel("ip|cidr", "10.0.0.0/8"), sel("ip|cidr", "2001:db8::/32")
    view = EventView({"ip": ["not an address", " 10.1.2.3 ", "2001:db8::9"]})
    assert v4.matches(view) and v6.matches(view)
    view = EventView({"ip": ["10.1.2.3x", "2001:db9::1"]})
    assert not v4.matches(view) and not v6.matches(view)
    assert not m(v4, {"ip": 167837953})  # 10.1.1.1 as an integer: not address text


def test_windash():
    c = sel("CommandLine|windash|contains", "-exec bypass")
    for dash in "-/\u2013\u2014\u2015":
        assert m(c, {"CommandLine": f"powershell {dash}exec bypass"}), dash
    assert not m(c, {"CommandLine": "powershell exec bypass"})


def test_base64_and_base64offset():
    import base64
    c = sel("f|base64", "http://")
    assert m(c, {"f": base64.b64encode(b"http://").decode()})
    assert not m(c, {"f": base64.b64encode(b"xhttp://").decode()})
    c = sel("f|base64offset|contains", "http://")
    for prefix in (b"", b"a", b"ab", b"abc"):
        encoded = base64.b64encode(prefix + b"http://evil/" ).decode()
        assert m(c, {"f": f"powershell -enc {encoded}"}), prefix
    assert not m(c, {"f": base64.b64encode(b"ftp://").decode()})


def test_utf16_modifiers():
    import base64
    for mod, enc in (("utf16le", "utf-16-le"), ("wide", "utf-16-le"), ("utf16be", "utf-16-be")):
        c = sel(f"f|{mod}|base64offset|contains", "cmd")
        assert m(c, {"f": base64.b64encode("xcmd /c".encode(enc)).decode()}), mod
        assert not m(c, {"f": base64.b64encode(b"cmd /c").decode()}), mod
    c = sel("f|utf16|base64", "cmd")
    assert m(c, {"f": base64.b64encode(b"\xff\xfe" + "cmd".encode("utf-16-le")).decode()})


def test_exists():
    c = sel("f|exists", True)
    assert m(c, {"f": "x"}) and m(c, {"f": None}) and m(c, {"f": ""}) and not m(c, {})
    c = sel("f|exists", False)
    assert m(c, {"g": 1}) and not m(c, {"f": 0})


def test_fieldref():
    c = sel("a|fieldref", "b")
    assert m(c, {"a": "Same", "b": "same"}) and not m(c, {"a": "x", "b": "y"}) and not m(c, {"a": "x"})
    assert m(sel("a|fieldref|contains", "b"), {"a": "xxSAMExx", "b": "same"})
    assert m(sel("a|fieldref|startswith", "b"), {"a": "samexx", "b": "same"})
    assert m(sel("a|fieldref|endswith", "b"), {"a": "xxsame", "b": "same"})
    assert not m(sel("a|fieldref|endswith", "b"), {"a": "samexx", "b": "same"})
    assert "b" in sel("a|fieldref", "b").fields


def test_numeric_comparisons():
    assert m(sel("n|lt", 10), {"n": 9}) and not m(sel("n|lt", 10), {"n": 10})
    assert m(sel("n|lte", 10), {"n": 10}) and not m(sel("n|lte", 10), {"n": 11})
    assert m(sel("n|gt", 10), {"n": 11}) and not m(sel("n|gt", 10), {"n": 10})
    assert m(sel("n|gte", 10), {"n": "10"}) and not m(sel("n|gte", 10), {"n": "9"})
    assert m(sel("n|gt", 1.5), {"n": 1.75}) and not m(sel("n|gt", 1), {"n": "abc"}) and not m(sel("n|gt", 1), {})


def test_null_values():
    c = sel("f", None)
    assert m(c, {}) and m(c, {"f": None}) and not m(c, {"f": ""}) and not m(c, {"f": "x"})
    c = compiled({"sel": {"a": "x"}, "filter": {"f": None}, "condition": "sel and not filter"})
    assert m(c, {"a": "x", "f": "set"}) and not m(c, {"a": "x"})


def test_keywords_over_all_values_nested_too():
    c = compiled({"keywords": ["event::clear", "MIMIKATZ"], "condition": "keywords"})
    assert m(c, {"a": {"b": ["x", "run mimikatz now"]}})
    assert m(c, {"msg": "sekurlsa event::clear"})
    assert not m(c, {"msg": "nothing"})
    r = c.evaluate({"a": {"b": ["x", "run mimikatz now"]}}, full=True)
    assert r.items[0].field is None and r.items[0].yaml_path == ("detection", "keywords")
    assert r.items[0].matched_values == [1] and r.items[0].actual == "run mimikatz now"
    c = compiled({"keywords": {"|all": ["OabVirtualDirectory", " -ExternalUrl "]}, "condition": "keywords"})
    assert m(c, {"a": "Set-OabVirtualDirectory", "b": "x -ExternalUrl y"})
    assert not m(c, {"a": "Set-OabVirtualDirectory"})


def test_expand_placeholders_from_config():
    c = sel("User|expand", "%Admins%", )
    c = compiled({"sel": {"User|expand": "%Admins%"}, "condition": "sel"}, {"Admins": ["root", "adm*"]})
    assert m(c, {"User": "ROOT"}) and m(c, {"User": "admin"}) and not m(c, {"User": "bob"})
    c = compiled({"sel": {"Path|expand": "%Dirs%\\evil.exe"}, "condition": "sel"}, {"Dirs": ["C:\\Temp"]})
    assert m(c, {"Path": "c:\\temp\\evil.exe"})
    missing = compiled({"sel": {"User|expand": "%Nope%"}, "condition": "sel"}, {})
    assert missing.errors and "Nope" in missing.errors[0]
    assert not m(missing, {"User": "%Nope%"})
    assert missing.evaluate({"User": "x"}).errors


def test_numbers_against_strings():
    c = sel("EventID", 4688)
    assert m(c, {"EventID": 4688}) and m(c, {"EventID": "4688"}) and not m(c, {"EventID": "4689"})
    c = sel("EventID", "4688")
    assert m(c, {"EventID": 4688}) and m(c, {"EventID": "4688"})
    assert m(sel("EventID", [4688, 1]), {"EventID": "1"})
    assert m(sel("Enabled", True), {"Enabled": True}) and m(sel("Enabled", True), {"Enabled": "TRUE"})
    assert not m(sel("Enabled", True), {"Enabled": False})


def test_booleans_match_their_string_forms_like_other_values():
    # The specification says nothing of how a boolean value meets an event's value; the evaluator
    # compares every other value on string forms (rule 4688 matches "4688", rule "4688" matches
    # 4688) and took 1/0 for booleans, so the text "1"/"0" (Windows event XML, CSV exports, a TEXT
    # column) must not differ from the number 1/0. Found by the differential test against SQLite.
    t, f = sel("Enabled", True), sel("Enabled", False)
    for value in (True, "True", 1, "1"):
        assert m(t, {"Enabled": value}) and not m(f, {"Enabled": value}), value
    for value in (False, "FALSE", 0, "0"):
        assert m(f, {"Enabled": value}) and not m(t, {"Enabled": value}), value
    for value in ("yes", "01", 2, "", None):
        assert not m(t, {"Enabled": value}) and not m(f, {"Enabled": value}), value
    assert m(t, {"Enabled": ["0", "1"]}) and not m(t, {})


def test_nested_and_dotted_field_names():
    c = sel("user.email", "a@b.c")
    assert m(c, {"user": {"email": "A@B.C"}})
    assert m(c, {"user.email": "a@b.c"})
    assert m(c, {"user": {"email.x": 1, "email": "a@b.c"}})
    assert not m(c, {"user": {"mail": "a@b.c"}})
    assert m(sel("a.b.c", "v"), {"a.b": {"c": "v"}}) and m(sel("a.b.c", "v"), {"a": {"b.c": "v"}})
    assert m(sel("users.name", "bob"), {"users": [{"name": "alice"}, {"name": "bob"}]})


def test_field_value_list_any_element():
    c = sel("tags|contains", "admin")
    assert m(c, {"tags": ["user", "local-admin"]}) and not m(c, {"tags": ["user"]})
    assert m(sel("ports", 443), {"ports": [80, 443]})
    assert m(sel("tags|contains|all", ["a1", "b2"]), {"tags": ["xa1", "b2x"]})


def test_condition_operators_and_selectors():
    c = compiled({"selection_a": {"a": 1}, "selection_b": {"b": 1}, "filter_x": {"x": 1},
                  "condition": "1 of selection_* and not filter_x"})
    assert c.identifiers == ["selection_a", "selection_b", "filter_x"]
    assert m(c, {"b": 1}) and not m(c, {"b": 1, "x": 1}) and not m(c, {})
    assert c.outcome({"selection_a": False, "selection_b": True, "filter_x": False})
    assert not c.outcome({"selection_a": False, "selection_b": True, "filter_x": True})
    c = compiled({"s1": {"a": 1}, "s2": {"b": 1}, "_helper": {"z": 1}, "condition": "all of them"})
    assert c.identifiers == ["s1", "s2"]
    assert m(c, {"a": 1, "b": 1}) and not m(c, {"a": 1})


def test_full_evaluation_reports_every_identifier_and_item():
    c = compiled({"sel": {"a": "x", "b|contains": ["1", "2"]}, "filter": {"c": "y"},
                  "condition": "sel and not filter"})
    r = c.evaluate({"a": "z", "b": "12"}, full=True)
    assert r.identifiers == {"sel": False, "filter": False} and not r.matched
    assert [(it.identifier, it.field, it.matched, it.matched_values) for it in r.items] == [
        ("sel", "a", False, []), ("sel", "b", True, [0, 1]), ("filter", "c", False, [])]
    assert r.items[2].actual is MISSING and r.items[1].modifiers == ["contains"]
    assert r.items[1].values == ["1", "2"]
    assert c.fields == {"a", "b", "c"}
    fast = c.evaluate({"a": "z", "b": "12"})
    assert fast.identifiers == {"sel": False}  # short-circuit: filter never asked


def test_paths_rebuilt_without_yaml_data():
    data = {"title": "t", "logsource": {"product": "x"},
            "detection": {"sel": {"a|contains|all": ["1", "2"]}, "condition": "sel"}}
    rule, _ = build_rule(data)
    r = compile_rule(rule).evaluate({"a": "12"}, full=True)
    assert r.items[0].yaml_path == ("detection", "sel", "a|contains|all")


def test_one_view_shared_by_many_rules():
    view = EventView({"Image": "C:\\x\\cmd.exe"})
    assert sel("Image|endswith", "cmd.exe").matches(view)
    assert not sel("Image|endswith", "pwsh.exe").matches(view)


def test_broken_condition_is_a_compile_error():
    data = {"title": "t", "logsource": {"product": "x"}, "detection": {"sel": {"a": 1}, "condition": "sel and"}}
    rule, _ = build_rule(data)
    with pytest.raises(CompileError):
        compile_rule(rule, data=data)


def test_neq_negates_the_item():
    c = sel("User|neq", "admin")
    assert m(c, {"User": "bob"}) and not m(c, {"User": "ADMIN"})


def test_timestamp_part_modifiers():
    assert m(sel("ts|hour", 13), {"ts": "2024-05-01T13:45:00Z"})
    assert not m(sel("ts|hour", 13), {"ts": "2024-05-01T14:45:00Z"})
    assert m(sel("ts|month", 5), {"ts": "2024-05-01 00:00:00"}) and not m(sel("ts|month", 5), {"ts": "junk"})


def test_condition_list_is_or():
    data = {"title": "t", "logsource": {"product": "x"},
            "detection": {"a": {"f": 1}, "b": {"g": 1}, "condition": ["a", "b"]}}
    rule, errors = build_rule(data)
    c = compile_rule(rule, data=data)
    assert c.identifiers == ["a", "b"]
    assert m(c, {"g": 1}) and m(c, {"f": 1}) and not m(c, {})


def test_regex_end_anchor_follows_pcre():
    # PCRE (the flavour the specification names) lets `$` match before a final newline
    assert m(sel("f|re", "abc$"), {"f": "xabc\n"})
    assert not m(sel("f|re", "abc$"), {"f": "abc\nx"})


def test_rules_with_lookarounds_load():
    data = {"title": "t", "logsource": {"product": "x"},
            "detection": {"sel": {"f|re": "(?<!\\\\)cmd(?=\\.exe)"}, "condition": "sel"}}
    rule, errors = build_rule(data)
    assert not errors
    c = compile_rule(rule, data=data)
    assert m(c, {"f": "c:/cmd.exe"}) and not m(c, {"f": "\\cmd.exe"}) and not m(c, {"f": "cmd.com"})


def test_yaml_timestamps_in_events_compare_as_iso_text():
    from datetime import datetime, timezone
    when = datetime(2024, 5, 1, 13, 45, tzinfo=timezone.utc)
    assert m(sel("ts|startswith", "2024-05-01T13"), {"ts": when})
    assert m(sel("ts|hour", 13), {"ts": when})


def test_hostile_events_do_not_crash():
    deep: dict = {"x": "mimikatz"}
    for _ in range(5000):
        deep = {"a": [deep]}
    c = compiled({"keywords": ["mimikatz"], "condition": "keywords"})
    assert m(c, deep)
    assert not m(sel("f", "x"), ["not", "a", "mapping"])  # type: ignore[arg-type]
    assert list(EventView({"a": [1, {"b": None, "c": "z"}], "d": True}).leaves().scalars) == [1, "z", True]
    nested: list = ["x"]
    for _ in range(5000):
        nested = [nested]
    assert m(sel("f", "x"), {"f": nested})
    users: list = [{"email": "a@b"}]
    for _ in range(5000):
        users = [users]
    assert m(sel("users.email", "a@b"), {"users": users})


def test_lone_surrogates_in_events_do_not_crash_re2():
    import json
    event = json.loads('{"f": "a\\ud800b", "g": "x\\udfff"}')
    assert m(sel("f|re", "a.b"), event)
    assert m(sel("f", "a*b"), event)
    assert m(compiled({"keywords": ["x"], "condition": "keywords"}), event)
    from checks.evaluator import RuleSet
    c = sel("f|contains", "a")
    assert RuleSet([c]).matching(event) == [c]
