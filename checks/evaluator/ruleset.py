"""Many compiled rules against one event at a time, skipping rules that cannot match.

Each rule states necessary conditions in conjunctive form (`CompiledRule.necessary_clauses`):
clauses of atoms -- a string pattern or a number on a field -- each clause having an atom that
holds in every event the rule matches. All string atoms of a field go into one RE2 set, so one
linear pass over each field value finds every atom that holds; a rule is evaluated in full only
when all of its clauses are satisfied (rules without clauses -- pure negations, exists, CIDR-only,
... -- always are).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import re2

from .compile import CompiledRule
from .event import EventView, view_of

_KEYWORDS = "\x00keywords"  # index key of atoms from keyword items: they apply to every value


class RuleSet:
    def __init__(self, rules: Sequence[CompiledRule]):
        self.rules = list(rules)
        always: list[int] = []
        # atom -> clause ids; clause id -> rule id; rule id -> number of clauses
        atom_ids: dict[tuple, int] = {}
        atom_clauses: list[list[int]] = []
        self.clause_rule: list[int] = []
        self.need: list[int] = []
        for i, rule in enumerate(self.rules):
            clauses = rule.necessary_clauses()
            self.need.append(len(clauses))
            if not clauses:
                always.append(i)
                continue
            for clause in clauses:
                cid = len(self.clause_rule)
                self.clause_rule.append(i)
                for field, atom in dict.fromkeys(clause):
                    key = (_KEYWORDS if field is None else field, atom)
                    aid = atom_ids.get(key)
                    if aid is None:
                        aid = atom_ids[key] = len(atom_clauses)
                        atom_clauses.append([])
                    if not atom_clauses[aid] or atom_clauses[aid][-1] != cid:
                        atom_clauses[aid].append(cid)
        self.always = always
        options = re2.Options()
        options.log_errors = False
        by_field: dict[str, list[tuple[str, int]]] = {}
        self.numbers: dict[str, dict[Any, list[int]]] = {}
        for (field, (kind, value, _chance)), aid in atom_ids.items():
            if kind == "s":
                by_field.setdefault(field, []).append((value, aid))
            else:
                self.numbers.setdefault(field, {})[value] = atom_clauses[aid]
        self.sets: list[tuple[str, Any, list[list[int]]]] = []
        for field, patterns in by_field.items():
            rs = re2.Set.SearchSet(options)
            targets: list[list[int]] = []
            for pattern, aid in patterns:
                if rs.Add(pattern) < 0:  # cannot happen for escaped literals; stay correct anyway
                    self.always.extend(self.clause_rule[c] for c in atom_clauses[aid])
                    continue
                targets.append(atom_clauses[aid])
            rs.Compile()
            self.sets.append((field, rs, targets))
        self.always = sorted(set(self.always))

    def candidates(self, view: EventView) -> list[int]:
        """Rules whose every clause has an atom holding in this event, and the unconstrained ones."""
        clauses: set[int] = set()
        for field, rs, targets in self.sets:
            fv = view.leaves() if field == _KEYWORDS else view.field(field)
            for x in fv.lows:
                for a in rs.Match(x) or ():
                    clauses.update(targets[a])
        for field, table in self.numbers.items():
            fv = view.leaves() if field == _KEYWORDS else view.field(field)
            for n in fv.nums:
                ids = table.get(n)
                if ids:
                    clauses.update(ids)
        counts: dict[int, int] = {}
        clause_rule = self.clause_rule
        for c in clauses:
            r = clause_rule[c]
            counts[r] = counts.get(r, 0) + 1
        need = self.need
        hits = [r for r, n in counts.items() if n == need[r]]
        if self.always:
            hits.extend(self.always)
        hits.sort()
        return hits

    def matching(self, event: Mapping[str, Any] | EventView) -> list[CompiledRule]:
        """The rules that match the event, in the order given."""
        view = view_of(event)
        rules = self.rules
        return [rules[i] for i in self.candidates(view) if rules[i].matches(view)]
