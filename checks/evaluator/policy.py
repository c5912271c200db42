"""How pySigma is set up to parse rules for evaluation.

- Regular expressions are validated with GuardedRegexEngine, so rules with look-arounds load
  (pySigma's default SafePolicy rejects anything RE2 cannot compile).
- `utf16le` is registered as the alias of `wide` the Sigma modifiers appendix defines
  ("wide: an alias for the utf16le modifier"); pySigma 2.0 only knows `wide`.
"""
from __future__ import annotations

from sigma.modifiers import SigmaWideModifier, modifier_mapping
from sigma.policy import SigmaPolicy

from .regex_guard import GuardedRegexEngine

modifier_mapping.setdefault("utf16le", SigmaWideModifier)

RULE_POLICY = SigmaPolicy(regex_engine=GuardedRegexEngine())
