"""Field comparison for replay: dotted and nested spellings agree; values compare as Sigma compares them."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from checks.replay.results import field_diff

names = st.text(alphabet="abc", min_size=1, max_size=3)
leaves = st.one_of(st.integers(-3, 3), st.booleans(), st.text(max_size=4), st.none())
flat_events = st.dictionaries(st.lists(names, min_size=1, max_size=3).map(".".join), leaves, max_size=6)


def nest(flat: dict) -> dict | None:
    out: dict = {}
    for path, value in flat.items():
        node = out
        *parents, last = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                return None
        if last in node:
            return None
        node[last] = value
    return out


@settings(max_examples=150, deadline=None)
@given(flat_events)
def test_dotted_and_nested_spellings_of_an_event_do_not_differ(flat):
    nested = nest(flat)
    if nested is None:  # a path that is both a leaf and an object cannot be nested
        return
    assert field_diff(flat.keys(), flat, nested) == []
    assert field_diff(flat.keys(), nested, flat) == []


def test_values_compare_as_sigma_compares_them():
    assert field_diff(["a", "b", "c"], {"a": 4624, "b": True, "c": 1.0}, {"a": "4624", "b": "true", "c": "1"}) == []
    changes = field_diff(["a", "b", "c"], {"a": 1, "b": "x"}, {"a": 2, "c": "new"})
    assert [(c.field, c.kind) for c in changes] == [("a", "changed"), ("b", "vanished"), ("c", "appeared")]
