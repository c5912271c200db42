r"""The Sigma evaluator: rules compiled once from pySigma's parse, events matched as Sigma specifies.

    compiled = compile_rule(sigma_rule, config.placeholders, data=yaml_mapping)
    compiled.matches(event)                  # bool, short-circuit
    compiled.evaluate(event, full=True)      # every identifier and item, per-value hits, errors
    compiled.outcome({"selection": True, "filter": False})
    RuleSet(compiled_rules).matching(event)  # many rules, skipping those that cannot match
    evaluate_correlation(corr, {name_or_id: compiled}, [(event, timestamp), ...])

Semantics (each tested in tests/test_evaluator*.py; differences from the SQLite backend in
docs/evaluator-vs-sqlite.md):
- Strings match case-insensitively unless `|cased`; `*`/`?` wildcards, `\*` `\?` `\\` escapes as
  pySigma parses them. pySigma applies every value modifier (contains/startswith/endswith, windash,
  base64, base64offset, wide/utf16le/utf16be/utf16, cidr, re flags, expand); this package matches.
- A list-valued field matches when any element does; `user.email` is a literal key first, then a
  path through nested mappings (and lists of them). Numbers match their decimal text and numeric
  strings ("4688" vs 4688); `|lt` & co. compare numbers only. `null` = absent or null; `|exists`
  = the key is present, whatever its value.
- Keywords (no field) match anywhere inside any value of the event, nested ones included.
- `|re` is searched (unanchored) on RE2 when the pattern allows, else on `regex` with a time limit;
  a time-out is an entry in `Evaluation.errors`, the item counts as not matched, and the pattern
  is not run again in this process.
- `|expand` placeholders come from the configuration; an unknown one is a compile error entry and
  never matches.
"""
from .compile import CompiledRule, CompileError, Evaluation, ItemResult, compile_rule
from .bulk import compile_all, paused_gc
from .correlation import CorrelationResult, GroupResult, evaluate_correlation
from .event import EventView
from .ruleset import RuleSet
from .fields import MISSING, lookup
from .policy import RULE_POLICY
from .regex_guard import RegexTimeout

__all__ = ["CompiledRule", "CompileError", "Evaluation", "ItemResult", "compile_rule", "EventView",
           "MISSING", "lookup", "RULE_POLICY", "RegexTimeout", "CorrelationResult", "GroupResult",
           "evaluate_correlation", "RuleSet", "compile_all", "paused_gc"]
