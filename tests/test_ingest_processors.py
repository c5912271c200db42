"""Each embedded processor against the behaviour Elasticsearch's reference documents for it, failures included."""
from __future__ import annotations

from typing import Any

import pytest

from checks.replay.ingest.pipeline import Pipeline, PipelineError


def run(processors: list[dict[str, Any]], source: dict[str, Any]):
    return Pipeline({"processors": processors}).run(source, timestamp="2024-01-01T00:00:00Z")


def ok(processors: list[dict[str, Any]], source: dict[str, Any]) -> dict[str, Any]:
    result = run(processors, source)
    assert result.status == "ok", result.error
    return result.source


def failure(processors: list[dict[str, Any]], source: dict[str, Any]) -> str:
    result = run(processors, source)
    assert result.status == "failed", result
    return result.error


# --- grok ---------------------------------------------------------------------------------------------

def test_grok_documented_example_with_types():
    out = ok([{"grok": {"field": "message", "patterns": [
        "%{IP:client} %{WORD:method} %{URIPATHPARAM:request} %{NUMBER:bytes:int} %{NUMBER:duration:double}"]}}],
        {"message": "55.3.244.1 GET /index.html 15824 0.043"})
    assert out["client"] == "55.3.244.1" and out["method"] == "GET" and out["request"] == "/index.html"
    assert out["bytes"] == 15824 and out["duration"] == 0.043


def test_grok_pattern_definitions_first_matching_pattern_and_trace_match():
    pipeline = Pipeline({"processors": [
        {"grok": {"field": "message", "patterns": ["%{FAVORITE_DOG:pet}", "%{FAVORITE_CAT:pet}"],
                  "pattern_definitions": {"FAVORITE_DOG": "beagle", "FAVORITE_CAT": "burmese"},
                  "trace_match": True}},
        {"set": {"field": "matched_index", "value": "{{_ingest._grok_match_index}}"}}]})
    out = pipeline.run({"message": "I love burmese cats!"}).source
    assert out["pet"] == "burmese" and out["matched_index"] == "1"


def test_grok_several_patterns_leftmost_match_wins_as_in_elasticsearch_alternation():
    # Elasticsearch's GrokProcessor.combinePatterns joins `patterns` into `(?:p0)|(?:p1)` and searches once:
    # the match starting leftmost wins, whatever its place in the list; at the same start the earlier wins.
    pipeline = Pipeline({"processors": [
        {"grok": {"field": "m", "patterns": ["%{IP:ip}", "user=%{WORD:user}"], "trace_match": True}},
        {"set": {"field": "idx", "value": "{{_ingest._grok_match_index}}"}}]})
    out = pipeline.run({"m": "user=bob from 10.0.0.1"}).source
    assert out["user"] == "bob" and "ip" not in out and out["idx"] == "1"
    out = pipeline.run({"m": "10.0.0.1 user=bob"}).source
    assert out["ip"] == "10.0.0.1" and "user" not in out and out["idx"] == "0"
    out = ok([{"grok": {"field": "m", "patterns": ["%{WORD:a}", "%{WORD:b} %{WORD:c}"]}}], {"m": "x y"})
    assert out == {"m": "x y", "a": "x"}  # same start: the earlier expression


def test_grok_dotted_and_ecs_bracket_names_nest():
    out = ok([{"grok": {"field": "message", "patterns": ["%{IP:source.ip} %{WORD:[event][action]}"]}}],
             {"message": "10.1.2.3 logon"})
    assert out["source"] == {"ip": "10.1.2.3"} and out["event"] == {"action": "logon"}


def test_grok_repeated_semantic_collects_matched_values():
    out = ok([{"grok": {"field": "m", "patterns": ["%{WORD:w} %{WORD:w}(?: %{INT:w:int})?( %{IP:never})?"]}}],
             {"m": "alpha beta 3"})
    assert out["w"] == ["alpha", "beta", 3] and "never" not in out
    out = ok([{"grok": {"field": "m", "patterns": ["(?:%{INT:n}|%{WORD:n})"]}}], {"m": "word"})
    assert out["n"] == "word"


def test_grok_no_match_is_a_failure_with_elasticsearch_wording():
    err = failure([{"grok": {"field": "message", "patterns": ["^%{IP:ip}$"]}}], {"message": "not an ip"})
    assert "Provided Grok expressions do not match field value: [not an ip]" in err


def test_grok_missing_field_fails_unless_ignore_missing():
    assert "field [message] not present" in failure(
        [{"grok": {"field": "message", "patterns": ["%{WORD:w}"]}}], {})
    assert ok([{"grok": {"field": "message", "patterns": ["%{WORD:w}"], "ignore_missing": True}}], {}) == {}


def test_grok_unknown_pattern_and_unknown_option_are_load_errors():
    with pytest.raises(PipelineError, match=r"Unable to find pattern \[NOPE\]"):
        Pipeline({"processors": [{"grok": {"field": "m", "patterns": ["%{NOPE:x}"]}}]})
    with pytest.raises(PipelineError, match=r"doesn't support one or more provided configuration parameters"):
        Pipeline({"processors": [{"grok": {"field": "m", "patterns": ["%{WORD:x}"], "patern": 1}}]})


# --- dissect ------------------------------------------------------------------------------------------

def test_dissect_documented_access_log():
    out = ok([{"dissect": {"field": "message", "pattern":
               '%{clientip} %{ident} %{auth} [%{@timestamp}] "%{verb} %{request} HTTP/%{httpversion}" '
               '%{status} %{size}'}}],
             {"message": '1.2.3.4 - - [30/Apr/1998:22:00:52 +0000] "GET /english/venues/cities/images/'
                         'montpellier/18.gif HTTP/1.0" 200 3171'})
    assert out["clientip"] == "1.2.3.4" and out["ident"] == "-" and out["@timestamp"] == "30/Apr/1998:22:00:52 +0000"
    assert out["verb"] == "GET" and out["httpversion"] == "1.0" and out["status"] == "200" and out["size"] == "3171"


def test_dissect_right_padding_skip_and_named_skip():
    out = ok([{"dissect": {"field": "message", "pattern": "%{ts->} %{?level} %{} %{msg}"}}],
             {"message": "1998-08-10T17:15:42,466          WARN x hello there"})
    assert out == {"message": "1998-08-10T17:15:42,466          WARN x hello there",
                   "ts": "1998-08-10T17:15:42,466", "msg": "hello there"}


def test_dissect_append_with_separator_and_order():
    out = ok([{"dissect": {"field": "message", "pattern": "%{+name} %{+name} %{+name} %{+name}",
                           "append_separator": " "}}], {"message": "john jacob jingleheimer schmidt"})
    assert out["name"] == "john jacob jingleheimer schmidt"
    out = ok([{"dissect": {"field": "message", "pattern": "%{+name/2} %{+name/4} %{+name/3} %{+name/1}",
                           "append_separator": ","}}], {"message": "john jacob jingleheimer schmidt"})
    assert out["name"] == "schmidt,john,jingleheimer,jacob"


def test_dissect_reference_keys():
    out = ok([{"dissect": {"field": "message", "pattern": "[%{ts}] [%{level}] %{*p1}:%{&p1} %{*p2}:%{&p2}"}}],
             {"message": "[2018-08-10T17:15:42,466] [ERR] ip:1.2.3.4 error:REFUSED"})
    assert out["ip"] == "1.2.3.4" and out["error"] == "REFUSED" and out["level"] == "ERR"


def test_dissect_mismatch_fails():
    err = failure([{"dissect": {"field": "message", "pattern": "%{a} [%{b}]"}}], {"message": "no brackets"})
    assert "Unable to find match for dissect pattern" in err


# --- kv -----------------------------------------------------------------------------------------------

def test_kv_documented_example_and_target_prefix_include():
    assert ok([{"kv": {"field": "message", "field_split": " ", "value_split": "="}}],
              {"message": "ip=1.2.3.4 error=REFUSED"})["error"] == "REFUSED"
    out = ok([{"kv": {"field": "message", "field_split": "&", "value_split": "=", "target_field": "q",
                      "prefix": "arg_", "include_keys": ["a", "b"]}}], {"message": "a=1&b=2&c=3"})
    assert out["q"] == {"arg_a": "1", "arg_b": "2"}


def test_kv_trim_and_strip_brackets_and_repeated_keys():
    out = ok([{"kv": {"field": "m", "field_split": " ", "value_split": "=", "trim_key": "<>",
                      "strip_brackets": True}}], {"m": "<k>=(v1) x=\"q\" x=w y=[(z\""})
    assert out["k"] == "v1" and out["x"] == ["q", "w"]
    # Elasticsearch's STRIP_BRACKETS pattern `(^[\(\[<"'])|([\]\)>"']$)` removes one opening character at the
    # start and one closing character at the end, not whole runs.
    assert out["y"] == "(z"


def test_kv_strip_brackets_before_trim_value_and_trim_is_a_character_class():
    # KeyValueProcessor: valueTrimmer.apply(bracketStrip.apply(value)); trimmers are `(^([chars]+))|([chars]+$)`.
    out = ok([{"kv": {"field": "m", "field_split": ",", "value_split": "=", "trim_value": " ",
                      "strip_brackets": True}}], {"m": "a= <x> ,b=<<y>>"})
    assert out["a"] == "<x>" and out["b"] == "<y>"
    out = ok([{"kv": {"field": "m", "field_split": " ", "value_split": "=", "trim_key": "0-9",
                      "trim_value": "\\s_"}}], {"m": "1k2=_v_"})
    assert out == {"m": "1k2=_v_", "k": "v"}


def test_kv_missing_value_split_fails():
    assert "does not contain value_split" in failure(
        [{"kv": {"field": "m", "field_split": " ", "value_split": "="}}], {"m": "a=1 oops"})


# --- json ---------------------------------------------------------------------------------------------

def test_json_target_field_in_place_and_add_to_root():
    assert ok([{"json": {"field": "s", "target_field": "t"}}], {"s": '{"foo": 2000}'})["t"] == {"foo": 2000}
    assert ok([{"json": {"field": "s"}}], {"s": '{"foo": 1}'})["s"] == {"foo": 1}
    out = ok([{"json": {"field": "s", "add_to_root": True}}], {"s": '{"a": {"b": 1}}', "a": {"c": 2}})
    assert out["a"] == {"b": 1}
    out = ok([{"json": {"field": "s", "add_to_root": True, "add_to_root_conflict_strategy": "merge"}}],
             {"s": '{"a": {"b": 1}}', "a": {"c": 2}})
    assert out["a"] == {"b": 1, "c": 2}


def test_json_scalars_parse_as_their_text_and_json_and_date_have_no_ignore_missing():
    assert ok([{"json": {"field": "s", "target_field": "t"}}], {"s": 12})["t"] == 12
    assert ok([{"json": {"field": "s", "target_field": "t"}}], {"s": None})["t"] is None
    assert "not present" in failure([{"json": {"field": "s"}}], {})
    for proc in ({"json": {"field": "s", "ignore_missing": True}},
                 {"date": {"field": "s", "formats": ["ISO8601"], "ignore_missing": True}}):
        with pytest.raises(PipelineError, match=r"doesn't support .*ignore_missing"):
            Pipeline({"processors": [proc]})


def test_json_invalid_and_non_object_root_fail():
    assert "not valid JSON" in failure([{"json": {"field": "s"}}], {"s": "{nope"})
    assert "cannot add non-map fields to root" in failure(
        [{"json": {"field": "s", "add_to_root": True}}], {"s": "[1, 2]"})
    with pytest.raises(PipelineError, match="add_to_root"):
        Pipeline({"processors": [{"json": {"field": "s", "add_to_root": True, "target_field": "x"}}]})


# --- csv ----------------------------------------------------------------------------------------------

def test_csv_quotes_trim_empty_value_and_extra_columns():
    out = ok([{"csv": {"field": "m", "target_fields": ["a", "b", "c", "d"], "trim": True, "empty_value": "-"}}],
             {"m": ' x , "y, ""z""" ,, w, extra'})
    assert out["a"] == "x" and out["b"] == 'y, "z"' and out["c"] == "-" and out["d"] == "w"
    out = ok([{"csv": {"field": "m", "target_fields": ["a", "b", "c"]}}], {"m": '1,,""'})
    assert "b" not in out and "c" not in out and out["a"] == "1"


def test_csv_unmatched_quote_fails():
    assert "Unmatched quote" in failure([{"csv": {"field": "m", "target_fields": ["a"]}}], {"m": '"open'})


# --- date ---------------------------------------------------------------------------------------------

def test_date_formats_in_order_timezone_and_output():
    out = ok([{"date": {"field": "d", "formats": ["dd/MM/yyyy HH:mm:ss", "ISO8601"], "timezone": "Europe/Amsterdam"}}],
             {"d": "12/06/2016 17:00:00"})
    assert out["@timestamp"] == "2016-06-12T17:00:00.000+02:00"
    out = ok([{"date": {"field": "d", "formats": ["ISO8601"], "target_field": "t"}}], {"d": "2016-06-12T17:00:00+02:00"})
    assert out["t"] == "2016-06-12T15:00:00.000Z"
    assert ok([{"date": {"field": "d", "formats": ["UNIX"]}}], {"d": 1465750800})["@timestamp"] == \
        "2016-06-12T17:00:00.000Z"
    assert ok([{"date": {"field": "d", "formats": ["UNIX_MS"], "output_format": "yyyy/MM/dd HH:mm"}}],
              {"d": "1465750800123"})["@timestamp"] == "2016/06/12 17:00"
    assert ok([{"date": {"field": "d", "formats": ["dd/MMM/yyyy:HH:mm:ss Z"]}}],
              {"d": "10/Oct/2000:13:55:36 -0700"})["@timestamp"] == "2000-10-10T20:55:36.000Z"
    # With a non-UTC timezone, a java-time pattern keeps the offset written in the text (Elasticsearch's DateFormat).
    assert ok([{"date": {"field": "d", "formats": ["dd/MMM/yyyy:HH:mm:ss Z"], "timezone": "Europe/Paris"}}],
              {"d": "10/Oct/2000:13:55:36 -0700"})["@timestamp"] == "2000-10-10T13:55:36.000-07:00"
    assert ok([{"date": {"field": "d", "formats": ["ISO8601"], "timezone": "Europe/Paris"}}],
              {"d": "2000-10-10T13:55:36-07:00"})["@timestamp"] == "2000-10-10T22:55:36.000+02:00"


def test_date_tai64n():
    # Read as Elasticsearch's DateFormat does: seconds 0x50d50648 (leap offset 10 s), nanoseconds 0x2dbdf024.
    assert ok([{"date": {"field": "d", "formats": ["TAI64N"]}}],
              {"d": "@4000000050d506482dbdf024"})["@timestamp"] == "2012-12-22T01:00:46.767Z"


def test_date_unparseable_fails_and_unsupported_pattern_is_load_error():
    assert "unable to parse date [yesterday]" in failure([{"date": {"field": "d", "formats": ["ISO8601"]}}],
                                                         {"d": "yesterday"})
    with pytest.raises(PipelineError, match=r"letter \[Q\]"):
        Pipeline({"processors": [{"date": {"field": "d", "formats": ["yyyy QQQ"]}}]})


# --- set / append / rename / remove -------------------------------------------------------------------

def test_set_value_template_override_copy_from_and_ignore_empty():
    out = ok([{"set": {"field": "host.os.name", "value": "{{os}}"}}], {"os": "Ubuntu"})
    assert out["host"] == {"os": {"name": "Ubuntu"}}
    assert ok([{"set": {"field": "a", "value": "new", "override": False}}], {"a": "old"})["a"] == "old"
    assert ok([{"set": {"field": "a", "value": "new", "override": False}}], {"a": None})["a"] == "new"
    assert ok([{"set": {"field": "b", "copy_from": "a"}}], {"a": [1, 2]})["b"] == [1, 2]
    assert "b" not in ok([{"set": {"field": "b", "value": "{{missing}}", "ignore_empty_value": True}}], {})
    with pytest.raises(PipelineError, match="not both"):
        Pipeline({"processors": [{"set": {"field": "a", "value": 1, "copy_from": "b"}}]})


def test_templates_json_escape_double_braces_as_elasticsearch_media_type_default():
    # set/append `media_type`: "The media type for encoding value. Applies only when value is a template
    # snippet... Defaults to application/json" -- mustache's JsonEscapeEncoder (Jackson quoteAsString).
    src = {"p": 'C:\\Users\\x "q"\n'}
    out = ok([{"set": {"field": "a", "value": "{{p}}"}}, {"set": {"field": "b", "value": "{{{p}}}"}}], src)
    assert out["a"] == 'C:\\\\Users\\\\x \\"q\\"\\n' and out["b"] == src["p"]
    assert ok([{"set": {"field": "a", "value": "{{c}}"}}], {"c": "\x01é/"})["a"] == "\\u0001é/"
    assert 'bad \\"x\\"' in failure([{"fail": {"message": "bad {{v}}"}}], {"v": '"x"'})
    with pytest.raises(PipelineError, match="media_type.*text/plain"):
        Pipeline({"processors": [{"set": {"field": "a", "value": "{{b}}", "media_type": "text/plain"}}]})


def test_set_copy_from_missing_with_ignore_empty_value_is_a_no_op():
    # SetProcessor: document.getFieldValue(copyFrom, Object.class, ignoreEmptyValue) -> null, then not set.
    assert ok([{"set": {"field": "b", "copy_from": "a", "ignore_empty_value": True}}], {}) == {}
    assert "not present" in failure([{"set": {"field": "b", "copy_from": "a"}}], {})


def test_remove_missing_field_names_the_first_missing_path_element():
    # IngestDocument.removeField: "field [x] not present as part of path [x.y]" when x itself is missing.
    assert "field [x] not present as part of path [x.y]" in failure([{"remove": {"field": "x.y"}}], {})
    assert "field [y] not present as part of path [x.y]" in failure([{"remove": {"field": "x.y"}}], {"x": {}})
    assert ok([{"remove": {"field": "x.y", "ignore_missing": True}}], {}) == {}


def test_set_through_a_scalar_parent_fails():
    assert "cannot set [b] with parent object of type [java.lang.String]" in failure(
        [{"set": {"field": "a.b", "value": 1}}], {"a": "text"})


def test_append_templates_and_duplicates():
    out = ok([{"append": {"field": "tags", "value": ["production", "{{{app}}}", "{{{owner}}}"]}}],
             {"tags": "existing", "app": "web", "owner": "ops"})
    assert out["tags"] == ["existing", "production", "web", "ops"]
    out = ok([{"append": {"field": "tags", "value": "a", "allow_duplicates": False}}], {"tags": ["a"]})
    assert out["tags"] == ["a"]


def test_append_without_duplicates_follows_elasticsearch_append_values():
    # IngestDocument.appendValues: "if no values were appended due to duplication, return the original object
    # so the ingest document remains unmodified"; duplicates are found with Java equals (true is not 1).
    no_dup = [{"append": {"field": "t", "value": "a", "allow_duplicates": False}}]
    assert ok(no_dup, {"t": "a"})["t"] == "a"
    assert ok(no_dup, {"t": "b"})["t"] == ["b", "a"]
    assert ok([{"append": {"field": "t", "value": [True, 1.0], "allow_duplicates": False}}],
              {"t": [1]})["t"] == [1, True, 1.0]
    # A missing field becomes a list of every value (duplicates are checked against existing values only);
    # an existing null is kept as the first element.
    assert ok([{"append": {"field": "t", "value": ["x", "x"], "allow_duplicates": False}}], {})["t"] == ["x", "x"]
    assert ok([{"append": {"field": "t", "value": "x"}}], {"t": None})["t"] == [None, "x"]


def test_rename_target_exists_missing_source_and_nested():
    assert ok([{"rename": {"field": "provider", "target_field": "cloud.provider"}}],
              {"provider": "aws"}) == {"cloud": {"provider": "aws"}}
    assert "field [b] already exists" in failure([{"rename": {"field": "a", "target_field": "b"}}], {"a": 1, "b": 2})
    assert "field [a] doesn't exist" in failure([{"rename": {"field": "a", "target_field": "b"}}], {})
    assert ok([{"rename": {"field": "a", "target_field": "b", "ignore_missing": True}}], {}) == {}


def test_remove_list_missing_and_keep():
    assert ok([{"remove": {"field": ["user_agent", "url"]}}], {"user_agent": 1, "url": 2, "x": 3}) == {"x": 3}
    assert "not present" in failure([{"remove": {"field": "nope"}}], {})
    assert ok([{"remove": {"field": "nope", "ignore_missing": True}}], {"x": 1}) == {"x": 1}
    assert ok([{"remove": {"keep": ["a.b"]}}], {"a": {"b": 1, "c": 2}, "d": 3}) == {"a": {"b": 1}}


# --- convert and string processors ---------------------------------------------------------------------

def test_convert_types_arrays_auto_and_failures():
    out = ok([{"convert": {"field": "id", "type": "integer"}}, {"convert": {"field": "hex", "type": "long"}},
              {"convert": {"field": "b", "type": "boolean"}}, {"convert": {"field": "l", "type": "float"}},
              {"convert": {"field": "n", "type": "string", "target_field": "s"}},
              {"convert": {"field": "a1", "type": "auto"}}, {"convert": {"field": "a2", "type": "auto"}}],
             {"id": "1", "hex": "0x1F", "b": "TRUE", "l": ["1.5", "2"], "n": 7, "a1": "242.15", "a2": "text"})
    assert out["id"] == 1 and out["hex"] == 31 and out["b"] is True and out["l"] == [1.5, 2.0]
    assert out["s"] == "7" and out["n"] == 7 and out["a1"] == 242.15 and out["a2"] == "text"
    assert "unable to convert [abc] to integer" in failure([{"convert": {"field": "x", "type": "integer"}}],
                                                           {"x": "abc"})
    for bad in (" 1", "1_000", "0b1", "1.0", "0X1G"):
        assert f"unable to convert [{bad}] to long" in failure([{"convert": {"field": "x", "type": "long"}}], {"x": bad})
    assert ok([{"convert": {"field": "x", "type": "integer"}}], {"x": "-0x10"})["x"] == -16
    assert "unable to convert [3000000000] to integer" in failure(
        [{"convert": {"field": "x", "type": "integer"}}], {"x": "3000000000"})
    assert "is not a boolean value" in failure([{"convert": {"field": "x", "type": "boolean"}}], {"x": "yes"})
    assert "is not an IP string literal" in failure([{"convert": {"field": "x", "type": "ip"}}], {"x": "1.2.3"})
    with pytest.raises(PipelineError, match=r"type \[date\] not supported"):
        Pipeline({"processors": [{"convert": {"field": "x", "type": "date"}}]})


def test_convert_numbers_follow_java_parsing_and_printing():
    # ConvertProcessor: FLOAT/DOUBLE are Float.parseFloat / Double.parseDouble(value.toString()), STRING is
    # value.toString(), AUTO leaves a string nothing parses "as-is".
    out = ok([{"convert": {"field": "f", "type": "double"}}, {"convert": {"field": "a", "type": "auto"}},
              {"convert": {"field": "d", "type": "string"}}],
             {"f": ["1.5f", " 2 ", "-Infinity", "0x1p3"], "a": ["nan", "inf", "Infinity", "1e3d"],
              "d": [1e16, 0.0001, 12345678.0, 2.5]})
    assert out["f"] == [1.5, 2.0, float("-inf"), 8.0]
    assert out["a"][:2] == ["nan", "inf"] and out["a"][2:] == [float("inf"), 1000.0]
    assert out["d"] == ["1.0E16", "1.0E-4", "1.2345678E7", "2.5"]
    assert "unable to convert [inf] to float" in failure([{"convert": {"field": "x", "type": "float"}}], {"x": "inf"})
    assert ok([{"set": {"field": "t", "value": "{{x}}"}}], {"x": 1e20})["t"] == "1.0E20"


def test_trim_is_javas_string_trim():
    # TrimProcessor is value.trim(): it removes code points <= U+0020, not Unicode spaces like U+00A0.
    assert ok([{"trim": {"field": "a"}}], {"a": "\x00\t x \x1f"})["a"] == "x"
    assert ok([{"trim": {"field": "a"}}], {"a": "\u00a0x\u2003"})["a"] == "\u00a0x\u2003"


def test_lowercase_uppercase_trim_on_strings_and_lists():
    out = ok([{"lowercase": {"field": "a"}}, {"uppercase": {"field": "b", "target_field": "c"}},
              {"trim": {"field": "d"}}], {"a": ["AbC", "X"], "b": "q", "d": "  sp  "})
    assert out["a"] == ["abc", "x"] and out["c"] == "Q" and out["b"] == "q" and out["d"] == "sp"
    assert "cannot be cast to [java.lang.String]" in failure([{"lowercase": {"field": "a"}}], {"a": 5})
    assert "is null, cannot process it" in failure([{"trim": {"field": "a"}}], {"a": None})
    assert ok([{"trim": {"field": "a", "ignore_missing": True}}], {"a": None}) == {"a": None}


def test_gsub_java_replacement_groups():
    assert ok([{"gsub": {"field": "f", "pattern": "\\.", "replacement": "-"}}], {"f": "127.0.0.1"})["f"] == "127-0-0-1"
    out = ok([{"gsub": {"field": "f", "pattern": "(\\w+)@(\\w+)", "replacement": "$2 at \\$ $1"}}], {"f": "bob@corp"})
    assert out["f"] == "corp at $ bob"


def test_split_java_semantics():
    assert ok([{"split": {"field": "f", "separator": "\\s+"}}], {"f": "a  b c"})["f"] == ["a", "b", "c"]
    assert ok([{"split": {"field": "f", "separator": ","}}], {"f": "a,b,,"})["f"] == ["a", "b"]
    assert ok([{"split": {"field": "f", "separator": ",", "preserve_trailing": True}}],
              {"f": "a,b,,"})["f"] == ["a", "b", "", ""]
    assert "cannot be cast" in failure([{"split": {"field": "f", "separator": ","}}], {"f": ["a"]})


def test_split_zero_width_separator_has_no_leading_empty_string():
    # Java's String.split: "A zero-width match at the beginning however never produces such empty leading
    # substring"; a positive-width one does.
    assert ok([{"split": {"field": "f", "separator": "(?=[A-Z])"}}], {"f": "FooBar"})["f"] == ["Foo", "Bar"]
    assert ok([{"split": {"field": "f", "separator": ""}}], {"f": "abc"})["f"] == ["a", "b", "c"]
    assert ok([{"split": {"field": "f", "separator": ","}}], {"f": ",a"})["f"] == ["", "a"]


def test_drop_and_fail():
    result = run([{"drop": {"if": "ctx.level == 'debug'"}}], {"level": "debug"})
    assert result.status == "dropped" and result.source is None
    assert run([{"drop": {"if": "ctx.level == 'debug'"}}], {"level": "info"}).status == "ok"
    assert "bad level info" in failure([{"fail": {"message": "bad level {{level}}"}}], {"level": "info"})


def test_dot_expander_documented_behaviour():
    assert ok([{"dot_expander": {"field": "foo.bar"}}], {"foo.bar": "value"}) == {"foo": {"bar": "value"}}
    assert ok([{"dot_expander": {"field": "foo.bar"}}], {"foo.bar": "value2", "foo": {"bar": "value1"}}) == \
        {"foo": {"bar": ["value1", "value2"]}}
    assert ok([{"dot_expander": {"field": "foo.bar", "override": True}}],
              {"foo.bar": "value2", "foo": {"bar": "value1"}}) == {"foo": {"bar": "value2"}}
    assert ok([{"dot_expander": {"field": "*"}}], {"id.orig_h": "10.0.0.1", "id.resp_p": 53, "q": 1}) == \
        {"id": {"orig_h": "10.0.0.1", "resp_p": 53}, "q": 1}
    assert ok([{"dot_expander": {"field": "*", "path": "zeek"}}], {"zeek": {"id.orig_h": "x"}}) == \
        {"zeek": {"id": {"orig_h": "x"}}}
    with pytest.raises(PipelineError, match="does not contain a dot"):
        Pipeline({"processors": [{"dot_expander": {"field": "plain"}}]})


def test_foreach_over_lists_and_objects_with_templated_field_names():
    assert ok([{"foreach": {"field": "values", "processor": {"uppercase": {"field": "_ingest._value"}}}}],
              {"values": ["foo", "bar", "baz"]}) == {"values": ["FOO", "BAR", "BAZ"]}
    out = ok([{"foreach": {"field": "Parameters", "processor": {"set": {
        "field": "params.{{_ingest._value.Name}}", "value": "{{_ingest._value.Value}}"}}}}],
        {"Parameters": [{"Name": "MoveToFolder", "Value": "RSS"}, {"Name": "DeleteMessage", "Value": "True"}]})
    assert out["params"] == {"MoveToFolder": "RSS", "DeleteMessage": "True"}
    out = ok([{"foreach": {"field": "m", "processor": {"set": {"field": "keys", "value": "{{_ingest._key}}"}}}}],
             {"m": {"a": 1}})
    assert out["keys"] == "a"
    assert ok([{"foreach": {"field": "nope", "ignore_missing": True, "processor": {"drop": {}}}}], {}) == {}
    assert "cannot be cast to [java.lang.String]" in failure(
        [{"foreach": {"field": "values", "processor": {"uppercase": {"field": "_ingest._value"}}}}],
        {"values": ["ok", 5]})
    with pytest.raises(PipelineError, match=r"processor \[script\] is not supported"):
        Pipeline({"processors": [{"foreach": {"field": "v", "processor": {"script": {"source": "x"}}}}]})
