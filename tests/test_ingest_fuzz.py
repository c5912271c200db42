"""Hostile pipeline definitions and raw logs: a clear load error or a result, never a crash or a hang."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.replay.ingest.condition import Condition, ConditionError
from checks.replay.ingest.document import ProcessorError
from checks.replay.ingest.pipeline import Pipeline, PipelineError
from checks.replay.ingest.processors import PROCESSORS

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=12),
                    st.sampled_from(["message", "a.b", "%{WORD:w}", "{{message}}", "ISO8601", "*", "=", " ",
                                     "ctx.a == 'x'", "integer", "[", "%{", "$1"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.one_of(st.text(max_size=8), st.integers(0, 3)),
                                                                       inner, max_size=3)),
                      max_leaves=8)
option_names = st.sampled_from(["field", "target_field", "patterns", "pattern", "value", "formats", "type",
                                "separator", "field_split", "value_split", "if", "on_failure", "ignore_failure",
                                "ignore_missing", "processor", "name", "keep", "copy_from", "target_fields",
                                "replacement", "tag", "timezone", "override", "bogus"])
processor = st.builds(lambda t, opts: {t: opts},  # noqa: E731
                      st.sampled_from(sorted([*PROCESSORS, "foreach", "pipeline", "script"])),
                      st.one_of(values, st.dictionaries(option_names, values, max_size=5)))
definitions = st.one_of(values, st.fixed_dictionaries({"processors": st.lists(processor, max_size=4)},
                                                      optional={"on_failure": st.lists(processor, max_size=2)}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions, st.text(max_size=60))
def test_any_definition_loads_or_fails_clearly_and_any_log_gives_a_result(definition, raw):
    try:
        pipeline = Pipeline(definition, resolver=lambda name: (_ for _ in ()).throw(LookupError(name)))
    except PipelineError as e:
        assert str(e)
        return
    result = pipeline.run({"message": raw, "a": {"b": raw}})
    assert result.status in ("ok", "failed", "dropped")
    assert (result.source is not None) == (result.status == "ok")


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ctx.a?b()'!=&|<>[]0 \"null" + "containsstartsWith")), max_size=40),
       values)
def test_any_condition_compiles_or_fails_clearly(source, ctx):
    try:
        cond = Condition(source)
    except ConditionError:
        return
    try:
        assert isinstance(cond(ctx if isinstance(ctx, dict) else {"a": ctx}), bool)
    except ProcessorError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("%{}+?*&/->ab1 ,:")), max_size=30), st.text(alphabet="ab1 ,:-", max_size=30))
def test_any_dissect_pattern_compiles_or_fails_clearly(pattern, value):
    from checks.replay.ingest.dissect import Dissect, DissectCompileError
    try:
        d = Dissect(pattern)
    except DissectCompileError:
        return
    try:
        out = d.match(value)
    except ProcessorError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())
