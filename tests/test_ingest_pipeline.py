"""Pipeline-level behaviour: on_failure / ignore_failure, conditions, load errors, hostile input."""
from __future__ import annotations

import time

import pytest

from checks.replay.ingest.condition import Condition, ConditionError
from checks.replay.ingest.document import ProcessorError
from checks.replay.ingest.grok import Grok, standard_patterns
from checks.replay.ingest.pipeline import Pipeline, PipelineError

RENAME_FAILS = {"rename": {"field": "foo", "target_field": "bar", "tag": "r1"}}


def test_processor_on_failure_runs_handlers_with_failure_metadata_and_continues():
    p = Pipeline({"processors": [
        {**RENAME_FAILS, "rename": {**RENAME_FAILS["rename"], "on_failure": [
            {"set": {"field": "error.message", "value": "{{ _ingest.on_failure_message }}"}},
            {"set": {"field": "error.type", "value": "{{_ingest.on_failure_processor_type}}/"
                                                    "{{_ingest.on_failure_processor_tag}}"}}]}},
        {"set": {"field": "after", "value": "ran"}}]})
    out = p.run({}).source
    assert out["error"] == {"message": "field [foo] doesn't exist", "type": "rename/r1"}
    assert out["after"] == "ran"


def test_pipeline_on_failure_stops_the_remaining_processors_and_reports_a_warning():
    p = Pipeline({"processors": [RENAME_FAILS, {"set": {"field": "after", "value": "ran"}}],
                  "on_failure": [{"set": {"field": "failed_in", "value": "{{_ingest.on_failure_processor_type}}"}}]})
    result = p.run({})
    assert result.status == "ok" and result.source == {"failed_in": "rename"}
    assert any("doesn't exist" in w for w in result.warnings)


def test_ignore_failure_skips_silently_and_unhandled_failure_rejects_the_document():
    p = Pipeline({"processors": [{**RENAME_FAILS, "rename": {**RENAME_FAILS["rename"], "ignore_failure": True}},
                                 {"set": {"field": "after", "value": 1}}]})
    assert p.run({}).source == {"after": 1}
    result = Pipeline({"processors": [RENAME_FAILS]}).run({})
    assert result.status == "failed" and "processor [rename] (tag r1)" in result.error


def test_failure_inside_on_failure_handler_rejects_the_document():
    p = Pipeline({"processors": [{"rename": {"field": "a", "target_field": "b",
                                             "on_failure": [{"fail": {"message": "handler broke"}}]}}]})
    result = p.run({})
    assert result.status == "failed" and "handler broke" in result.error


def test_if_condition_skips_and_failing_condition_is_a_processor_failure():
    p = Pipeline({"processors": [{"set": {"field": "t", "value": "x", "if": "ctx.a?.b == 'y'"}}]})
    assert p.run({"a": {"b": "y"}}).source == {"a": {"b": "y"}, "t": "x"}
    assert p.run({}).source == {}
    strict = Pipeline({"processors": [{"set": {"field": "t", "value": "x", "if": "ctx.a.b == 'y'"}}]})
    assert "on null" in strict.run({}).error
    handled = Pipeline({"processors": [{"set": {"field": "t", "value": "x", "if": "ctx.a.b == 'y'",
                                                "ignore_failure": True}}]})
    assert handled.run({}).status == "ok"


@pytest.mark.parametrize("source,ctx,expected", [
    ("ctx.event?.code == '4624' && ctx.user?.name != null", {"event": {"code": "4624"}, "user": {"name": "x"}}, True),
    ("ctx.event?.code == '4624' && ctx.user?.name != null", {"event": {"code": "4624"}}, False),
    ("ctx.msg?.contains('error') || ctx.level == 'ERR'", {"msg": "an error"}, True),
    ("!(ctx.path?.startsWith('/tmp') == true)", {"path": "/tmp/x"}, False),
    ("ctx.tags?.contains('vip') == true", {"tags": ["a", "vip"]}, True),
    ("ctx.n >= 10 && ctx.n < 20.5", {"n": 10}, True),
    ("ctx['event']['code'] == '1'", {"event": {"code": "1"}}, True),
    ("ctx.name?.toLowerCase()?.endsWith('.exe') == true", {"name": "A.EXE"}, True),
    ("ctx.a == null", {}, True),
    ("ctx.s.equalsIgnoreCase(\"YES\")", {"s": "yes"}, True),
])
def test_condition_subset(source, ctx, expected):
    assert Condition(source)(ctx) is expected


@pytest.mark.parametrize("source", [
    "ctx.a = 'x'", "Runtime.getRuntime().exec('id')", "ctx.a.getClass()", "def x = 1; x == 1",
    "ctx.a ==", "ctx.a =~ /x/", "ctx.a instanceof String", "(" * 40 + "true" + ")" * 40,
])
def test_condition_outside_the_subset_is_a_load_error(source):
    with pytest.raises(ConditionError):
        Condition(source)
    with pytest.raises(PipelineError, match="unsupported `if` condition"):
        Pipeline({"processors": [{"set": {"field": "a", "value": 1, "if": source}}]})


def test_condition_must_yield_a_boolean():
    with pytest.raises(ProcessorError, match="must return a boolean"):
        Condition("ctx.a")({"a": "text"})


def test_unsupported_processor_is_named_at_load_time_with_its_location():
    with pytest.raises(PipelineError) as e:
        Pipeline({"processors": [{"set": {"field": "a", "value": 1}},
                                 {"script": {"source": "ctx.a = 1"}}]})
    assert "processor [script] is not supported" in str(e.value)
    assert e.value.path == ("processors", 1, "script")


@pytest.mark.parametrize("definition,fragment", [
    ({"processors": "nope"}, "must be a list"),
    ({"description": "x"}, "[processors] required"),
    ({"processors": [], "extra": 1}, "unknown key"),
    ({"processors": [{"set": {"field": "a", "value": 1}, "rename": {}}]}, "exactly one key"),
    ({"processors": [{"set": {"field": "a", "value": 1, "on_failure": []}}]}, "on_failure must not be empty"),
    ({"processors": [{"set": {"field": "a", "value": "{{#section}}x{{/section}}"}}]}, "only {{field}}"),
])
def test_malformed_definitions_are_clear_load_errors(definition, fragment):
    with pytest.raises(PipelineError, match=None) as e:
        Pipeline(definition)
    assert fragment in str(e.value)


def test_pipeline_processor_calls_another_pipeline_and_missing_one_fails():
    inner = Pipeline({"processors": [{"set": {"field": "inner", "value": True}}]})
    outer = Pipeline({"processors": [{"pipeline": {"name": "inner"}}]},
                     resolver=lambda name: {"inner": inner}[name])
    assert outer.run({}).source == {"inner": True}
    missing = Pipeline({"processors": [{"pipeline": {"name": "nope"}}]},
                       resolver=lambda name: {}[name])
    assert "pipeline with id [nope] does not exist" in missing.run({}).error


def test_every_bundled_grok_pattern_compiles_and_common_ones_match():
    patterns = standard_patterns()
    for name in patterns:
        Grok([f"%{{{name}}}"])
    samples = {
        "IPV6": "2001:db8::ff00:42:8329", "IPV4": "192.168.0.1", "HOSTNAME": "srv-01.example.com",
        "TIMESTAMP_ISO8601": "2024-03-01T10:20:30.123+01:00", "SYSLOGTIMESTAMP": "Mar  1 10:20:30",
        "HTTPDATE": "10/Oct/2000:13:55:36 -0700", "URIPATHPARAM": "/a/b.php?x=1&y=2", "USERNAME": "j.doe-1",
        "QUOTEDSTRING": '"say \\"hi\\""', "UUID": "123e4567-e89b-12d3-a456-426614174000",
        "MAC": "00:1A:2b:3C:4d:5E", "LOGLEVEL": "WARNING", "POSINT": "42", "NUMBER": "-3.5",
        "UNIXPATH": "/var/log/auth-1.log", "WINPATH": "C:\\Windows\\System32\\cmd.exe", "PATH": "/tmp/x",
        "URI": "https://bob@example.com:8443/a/b.php?c=d&e=f", "EMAILADDRESS": "a.b@example.com",
        "HOSTPORT": "srv-1.example.com:8080", "TTY": "/dev/pts/1", "BASE16NUM": "0x1F", "DATE_US": "10/11/2024",
        "TIME": "12:34:56", "DATESTAMP": "10/11/2024 12:34:56", "URN": "urn:isbn:0451450523",
        "DATESTAMP_RFC2822": "Mon, 10 Oct 2000 13:55:36 +0700", "CISCOMAC": "0011.2233.4455",
        "COMBINEDAPACHELOG": '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 '
                             '"http://www.example.com/start.html" "Mozilla/4.08"',
        "SYSLOGBASE": "Mar  1 10:20:30 host1 sshd[123]:",
    }
    for name, sample in samples.items():
        hit = Grok([f"^%{{{name}:v}}$"]).match(sample)
        assert hit is not None and hit[1]["v"] == sample, name


def test_grok_catastrophic_backtracking_fails_within_its_time_limit():
    p = Pipeline({"processors": [{"grok": {"field": "m", "patterns": ["^(\\w|\\w\\w)*$"]}}]})
    start = time.monotonic()
    result = p.run({"m": "a" * 60 + "!"})
    assert time.monotonic() - start < 5
    assert result.status == "failed" and "exceeded its time limit" in result.error


def test_grok_recursive_pattern_definitions_are_a_load_error():
    with pytest.raises(PipelineError, match="circular reference"):
        Pipeline({"processors": [{"grok": {"field": "m", "patterns": ["%{A:a}"],
                                           "pattern_definitions": {"A": "%{B}", "B": "%{A}"}}}]})


def test_library_groups_are_made_non_capturing_without_changing_what_matches():
    from checks.replay.ingest.grok import non_capturing
    assert non_capturing(r"(a(?:b)\(c\)[(x)]([]a(])(?<n>z)(?!q)") == r"(?:a(?:b)\(c\)[(x)](?:[]a(])(?<n>z)(?!q)"
    assert non_capturing(r"[^]()](b)") == r"[^]()](?:b)"
    # The standard library keeps matching the same text once its groups stop capturing.
    assert Grok(["^%{URIPATHPARAM:u} %{IPV6:ip} %{UNIXPATH:p}$"]).match("/a/b(c)?x=[1] fe80::1%eth0 /tmp/x_y")[1] == \
        {"u": "/a/b(c)?x=[1]", "ip": "fe80::1%eth0", "p": "/tmp/x_y"}


def test_document_paths_walk_objects_and_lists():
    from checks.replay.ingest.document import IngestDocument
    doc = IngestDocument({"a": [{"b": 1}, {"b": 2}], "s": "x"})
    doc.set("a.1.b", 5)
    doc.set("a.0.c.d", 1)
    doc.set("n.m", 2)
    doc.set("_ingest.k", 3)
    assert doc.source == {"a": [{"b": 1, "c": {"d": 1}}, {"b": 5}], "s": "x", "n": {"m": 2}}
    assert doc.get("a.1.b") == 5 and doc.get("_source.n.m") == 2 and doc.get("_ingest.k") == 3
    for bad, message in (("s.x", "parent object of type [java.lang.String]"), ("a.9.x", "out of bounds for array with length [2]"),
                         ("a.x.y", "is not an integer")):
        with pytest.raises(ProcessorError, match=message.replace("[", r"\[").replace("]", r"\]")):
            doc.set(bad, 1)
    doc.remove("a.0")
    assert doc.get("a.0.b") == 5
