"""The Sigma evaluator: rules compiled once from pySigma's parse, events matched as Sigma specifies."""
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
