"""A rule's test events, from every layout detbot reads, each with the file and line it came from.

Layouts (see DESIGN.md):
- `<name>.tests.yml`: a YAML list of tests;
- `<name>.tests/*.yml|json`: one test per file (its name defaults to the file's stem);
- SigmaHQ's: the rule's `regression_tests_path` names an `info.yml` whose `regression_tests_info` entries name an
  EVTX recording; its JSON export beside it (same name, `.json`) holds the events, one after another.

A malformed file or entry is a Finding at its line; loading never raises on bad input.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from posixpath import basename, dirname, join, normpath, splitext
from typing import Any, Iterator, Mapping

from .findings import Finding, Level
from .source import FileSource
from .yamldoc import Document, YamlError, load_one

CHECK = "tests"
EXPECTS = ("match", "no_match")
TEST_KEYS = {"name", "expect", "event", "raw", "parser", "description", "comment", "timestamp"}
# Beyond this many events in one SigmaHQ JSON export the rest are ignored (the real ones hold a handful).
MAX_EVENTS_PER_FILE = 10_000
MAX_TEST_FILE_BYTES = 20 * 1024 * 1024


@dataclass
class TestEvent:
    name: str
    expect: str  # "match" | "no_match"
    event: Mapping[str, Any]
    raw: Any = None
    parser: str | None = None
    path: str = ""
    line: int = 1
    # SigmaHQ layout: the test passes when at least this many of `events` match (None: at least one).
    match_count: int | None = None
    # Further events of the same test (SigmaHQ's JSON exports hold several); `event` is the first.
    more_events: list[Mapping[str, Any]] = field(default_factory=list)
    # Line of each event in `events` within `path`'s event file (SigmaHQ: the JSON export).
    event_lines: list[int] = field(default_factory=list)
    events_path: str = ""
    timestamp: Any = None

    __test__ = False  # not a pytest class, whatever its name says

    @property
    def events(self) -> list[Mapping[str, Any]]:
        return [self.event, *self.more_events]

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class LoadedTests:
    tests: list[TestEvent] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # Events given without an expectation (load_event_file on a bare event or an export).
    bare: bool = False

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tests]


def _finding(path: str, line: int, title: str, message: str, level: Level = "failure",
             rule_id: str | None = None) -> Finding:
    return Finding(CHECK, path, line, line, level, title, message, rule_id=rule_id)


# --- one test (a mapping), wherever it came from ---------------------------------------------------------------

def _test_from_mapping(item: Any, path: str, line_of, default_name: str, out: LoadedTests,
                       seen: dict[str, int], rule_id: str | None) -> None:
    """`line_of(*keys)` gives the line of a key of this item (or of the item itself)."""
    line = line_of()
    if not isinstance(item, dict):
        out.findings.append(_finding(path, line, "Malformed test",
                                     f"a test must be a mapping with name, expect and event, not a "
                                     f"{_kind(item)}", rule_id=rule_id))
        return
    name = item.get("name", default_name)
    if not isinstance(name, (str, int, float)) or str(name).strip() == "":
        out.findings.append(_finding(path, line_of("name"), "Malformed test", "`name` must be a non-empty string",
                                     rule_id=rule_id))
        return
    name = str(name)
    unknown = sorted(str(k) for k in item if k not in TEST_KEYS)
    for key in unknown:
        hint = " (did you mean `expect`?)" if key.lower().startswith("expect") else ""
        out.findings.append(_finding(path, line_of(key), "Unknown test key",
                                     f"test '{name}': unknown key `{key}`{hint}; known: "
                                     f"{', '.join(sorted(TEST_KEYS))}", "warning", rule_id))
    if "expect" not in item:
        out.findings.append(_finding(path, line, "Malformed test",
                                     f"test '{name}' has no `expect` (match or no_match)", rule_id=rule_id))
        return
    expect = item["expect"]
    if expect not in EXPECTS:
        out.findings.append(_finding(path, line_of("expect"), "Malformed test",
                                     f"test '{name}': `expect` is {expect!r}; it must be match or no_match",
                                     rule_id=rule_id))
        return
    if "event" not in item:
        out.findings.append(_finding(path, line, "Malformed test", f"test '{name}' has no `event`",
                                     rule_id=rule_id))
        return
    event = item["event"]
    if not isinstance(event, dict):
        out.findings.append(_finding(path, line_of("event"), "Malformed test",
                                     f"test '{name}': `event` must be a mapping of field to value, not a "
                                     f"{_kind(event)}", rule_id=rule_id))
        return
    parser = item.get("parser")
    if parser is not None and not isinstance(parser, str):
        out.findings.append(_finding(path, line_of("parser"), "Malformed test",
                                     f"test '{name}': `parser` must be a string", rule_id=rule_id))
        return
    if name in seen:
        out.findings.append(_finding(path, line, "Duplicate test name",
                                     f"test name '{name}' is used twice (first at line {seen[name]}); names "
                                     f"must be unique within a rule", rule_id=rule_id))
        return
    seen[name] = line
    out.tests.append(TestEvent(name, expect, event, item.get("raw"), parser, path, line,
                               event_lines=[line_of("event")], events_path=path,
                               timestamp=item.get("timestamp")))


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null value"}.get(type(value), type(value).__name__)


# --- the two detbot layouts --------------------------------------------------------------------------------------

def _read(source: FileSource, path: str, out: LoadedTests, rule_id: str | None) -> bytes | None:
    try:
        raw = source.read(path)
    except FileNotFoundError:
        out.findings.append(_finding(path, 1, "Test file unreadable", f"{path} cannot be read", rule_id=rule_id))
        return None
    if len(raw) > MAX_TEST_FILE_BYTES:
        out.findings.append(_finding(path, 1, "Test file too large",
                                     f"{len(raw):,} bytes; test files above {MAX_TEST_FILE_BYTES:,} are not read",
                                     rule_id=rule_id))
        return None
    return raw


def _load_yaml(raw: bytes, path: str, out: LoadedTests, rule_id: str | None) -> Document | None:
    try:
        return load_one(raw)
    except YamlError as e:
        out.findings.append(_finding(path, e.line, "Malformed test file", f"YAML error: {e.message}",
                                     rule_id=rule_id))
        return None


def _load_tests_list(source: FileSource, path: str, out: LoadedTests, seen: dict[str, int],
                     rule_id: str | None) -> None:
    raw = _read(source, path, out, rule_id)
    if raw is None:
        return
    doc = _load_yaml(raw, path, out, rule_id)
    if doc is None:
        return
    data, prefix = doc.data, ()
    # A mapping with a `tests:` list is accepted too, so a file can carry other keys beside its tests.
    if isinstance(data, dict) and isinstance(data.get("tests"), list):
        data, prefix = data["tests"], ("tests",)
    if data is None:
        out.findings.append(_finding(path, 1, "Malformed test file", "the file is empty; expected a list of tests",
                                     "warning", rule_id))
        return
    if not isinstance(data, list):
        out.findings.append(_finding(path, doc.line(()), "Malformed test file",
                                     f"expected a YAML list of tests, found a {_kind(data)}", rule_id=rule_id))
        return
    for i, item in enumerate(data):
        base = prefix + (i,)
        _test_from_mapping(item, path, lambda *keys, b=base: doc.line(b + keys), f"#{i + 1}", out, seen, rule_id)


def _load_single(source: FileSource, path: str, out: LoadedTests, seen: dict[str, int],
                 rule_id: str | None) -> None:
    raw = _read(source, path, out, rule_id)
    if raw is None:
        return
    stem = splitext(basename(path))[0]
    if path.endswith(".json"):
        try:
            text = raw.decode("utf-8-sig")
            data = _json_loads(text)
        except UnicodeDecodeError as e:
            out.findings.append(_finding(path, 1, "Malformed test file", f"not UTF-8 text: {e}", rule_id=rule_id))
            return
        except json.JSONDecodeError as e:
            out.findings.append(_finding(path, e.lineno, "Malformed test file", f"JSON error: {e.msg}",
                                         rule_id=rule_id))
            return
        key_lines = _json_key_lines(text)
        _test_from_mapping(data, path, lambda *keys: key_lines.get(keys[0], 1) if keys else 1, stem, out, seen,
                           rule_id)
        return
    doc = _load_yaml(raw, path, out, rule_id)
    if doc is None:
        return
    _test_from_mapping(doc.data, path, lambda *keys: doc.line(keys), stem, out, seen, rule_id)


def _json_loads(text: str) -> Any:
    """json.loads, with absurd nesting reported as a JSON error rather than a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nesting too deep", text, 0) from None


def _json_key_lines(text: str) -> dict[str, int]:
    """Line of each top-level key of a JSON object, so findings point at `"expect"` rather than line 1."""
    lines: dict[str, int] = {}
    depth, line, i, n = 0, 1, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        elif c == '"':
            start_line = line
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            token = text[i + 1:j]
            line += token.count("\n")
            k = j + 1
            while k < n and text[k] in " \t\r\n":
                k += 1
            if depth == 1 and k < n and text[k] == ":":
                try:
                    lines.setdefault(json.loads(f'"{token}"'), start_line)
                except json.JSONDecodeError:
                    pass
            i = j
        i += 1
    return lines


# --- SigmaHQ's regression layout ---------------------------------------------------------------------------------

def _resolve_upward(source: FileSource, start_dir: str, rel: str) -> str | None:
    """SigmaHQ resolves these paths from the rule's directory upward until one exists (in practice: from the
    repository root). Paths never leave the repository."""
    rel = rel.replace("\\", "/")
    if rel.startswith("/") or ".." in rel.split("/"):
        return None
    d = start_dir
    while True:
        candidate = normpath(join(d, rel)) if d else normpath(rel)
        if source.exists(candidate):
            return candidate
        if not d:
            return None
        d = dirname(d)


_REGRESSION_PATH = re.compile(rb"^regression_tests_path:[ \t]*['\"]?([^'\"\r\n#]+?)['\"]?[ \t]*(?:#.*)?$", re.M)


def regression_dirs(source: FileSource, rule_path: str, rule_raw: bytes) -> list[str]:
    """The directories of the `info.yml`s a rule's `regression_tests_path` names. SigmaHQ keeps each rule's
    regression data (info.yml, EVTX recording, JSON export) in one directory, so a change to a file there is a
    change to the rule's tests. Read from the raw text: no YAML parse and no other file read per rule."""
    out = []
    for m in _REGRESSION_PATH.finditer(rule_raw):
        info = _resolve_upward(source, dirname(rule_path), m.group(1).decode("utf-8", "replace").strip())
        if info is not None:
            out.append(dirname(info))
    return out


def _listed_but_unread(source: FileSource, rel: str) -> bool:
    """A path the repository listing has but the source cannot read: the bot fetches only what a pull request
    touched, so SigmaHQ regression data may be listed and absent."""
    rel = normpath(rel.replace("\\", "/"))
    return any(p == rel or p.endswith("/" + rel) for p in source.paths()) and not source.exists(rel)


def events_from_json_stream(text: str) -> Iterator[tuple[int, Any]]:
    """Every JSON value in `text`, written one after another (SigmaHQ's exports, JSON Lines, or a lone array
    of events), with the line it starts on. Raises json.JSONDecodeError with the offending line."""
    decoder = json.JSONDecoder()
    i, n, count = 0, len(text), 0
    while True:
        while i < n and text[i] in " \t\r\n\ufeff":
            i += 1
        if i >= n:
            return
        try:
            value, end = decoder.raw_decode(text, i)
        except RecursionError:
            raise json.JSONDecodeError("nesting too deep", text, i) from None
        line = text.count("\n", 0, i) + 1
        if isinstance(value, list) and count == 0 and text[end:].strip() == "":
            # A single array: its items are the events.
            for item in value:
                yield line, item
            return
        yield line, value
        count += 1
        i = end


def _strip_attrs(value: Any) -> Any:
    """The evtx JSON form wraps element text as {"#attributes": {...}, "#text": v}; the text is the value."""
    if isinstance(value, dict) and "#text" in value:
        text = value["#text"]
        return " ".join(map(str, text)) if isinstance(text, list) else text
    return value


def _with_spaceless(out: dict[str, Any], key: str, value: Any) -> None:
    out.setdefault(key, value)
    if " " in key:
        out.setdefault(key.replace(" ", ""), value)


def sigma_fields(record: Any) -> dict[str, Any] | None:
    """The Sigma field names of one exported Windows event, as SigmaHQ's checker maps them, or None when the
    record is not `{"Event": {...}}`.

    EventData keys are fields as they are; UserData's keys one level down (under its single child element);
    System's scalars (EventID, Channel, Computer, ...) and the attributes of its elements as `<Element>_<Attr>`
    (Provider_Name, Execution_ProcessID, TimeCreated_SystemTime, ...).
    """
    if not isinstance(record, dict):
        return None
    event = record.get("Event", None)
    if not isinstance(event, dict):
        return None
    out: dict[str, Any] = {}
    system = event.get("System")
    if isinstance(system, dict):
        for key, value in system.items():
            if key == "#attributes":
                continue
            if isinstance(value, dict) and "#text" not in value:
                for attr, v in (value.get("#attributes") or {}).items():
                    _with_spaceless(out, f"{key}_{attr}", v)
                continue
            _with_spaceless(out, key, _strip_attrs(value))
    for part in ("EventData", "UserData"):
        data = event.get(part)
        if not isinstance(data, dict):
            continue
        if part == "UserData":
            # UserData holds one element named by the provider; its children are the fields.
            children = [v for k, v in data.items() if k != "#attributes" and isinstance(v, dict)]
            if len(children) == 1:
                data = children[0]
        for key, value in data.items():
            if key == "#attributes":
                continue
            _with_spaceless(out, key, _strip_attrs(value))
    return out


def _load_sigmahq(source: FileSource, rule_path: str, rule_data: dict, rule_line: int, out: LoadedTests,
                  seen: dict[str, int], rule_id: str | None) -> None:
    rel = rule_data.get("regression_tests_path")
    if not isinstance(rel, str) or not rel.strip():
        out.findings.append(_finding(rule_path, rule_line, "Malformed regression_tests_path",
                                     "regression_tests_path must be a path to an info.yml", rule_id=rule_id))
        return
    info_path = _resolve_upward(source, dirname(rule_path), rel.strip())
    if info_path is None:
        if _listed_but_unread(source, rel.strip()):
            out.findings.append(_finding(rule_path, rule_line, "Regression tests not read",
                                         f"{rel} is in the repository but not among the files this run could read",
                                         "warning", rule_id))
            return
        out.findings.append(_finding(rule_path, rule_line, "Regression tests missing",
                                     f"regression_tests_path names {rel}, which is not in the repository",
                                     rule_id=rule_id))
        return
    raw = _read(source, info_path, out, rule_id)
    if raw is None:
        return
    doc = _load_yaml(raw, info_path, out, rule_id)
    if doc is None:
        return
    entries = doc.data.get("regression_tests_info") if isinstance(doc.data, dict) else None
    if not isinstance(entries, list):
        out.findings.append(_finding(info_path, doc.line(("regression_tests_info",)), "Malformed test file",
                                     "info.yml needs a `regression_tests_info` list", rule_id=rule_id))
        return
    for i, entry in enumerate(entries):
        line = doc.line(("regression_tests_info", i))
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            out.findings.append(_finding(info_path, line, "Malformed test",
                                         "a regression_tests_info entry needs a `path`", rule_id=rule_id))
            continue
        name = str(entry.get("name") or f"#{i + 1}")
        kind = str(entry.get("type", "evtx")).lower()
        if kind not in ("evtx", "json"):
            out.findings.append(_finding(info_path, line, "Unsupported test type",
                                         f"test '{name}': type {kind!r} is not evaluated (evtx and json are)",
                                         "notice", rule_id))
            continue
        match_count = entry.get("match_count")
        if match_count is not None and (isinstance(match_count, bool) or not isinstance(match_count, int)
                                        or match_count < 0):
            out.findings.append(_finding(info_path, doc.line(("regression_tests_info", i, "match_count")),
                                         "Malformed test", f"test '{name}': match_count must be a whole number "
                                         f">= 0, not {match_count!r}", rule_id=rule_id))
            continue
        json_rel = re.sub(r"\.evtx$", "", entry["path"], flags=re.IGNORECASE) + ".json" \
            if not entry["path"].lower().endswith(".json") else entry["path"]
        json_path = _resolve_upward(source, dirname(rule_path), json_rel)
        if json_path is None:
            out.findings.append(_finding(info_path, line, "Test events missing",
                                         f"test '{name}': no JSON export {json_rel} beside the recording "
                                         f"(detbot reads events from the JSON twin of the EVTX file)",
                                         "warning", rule_id))
            continue
        raw_json = _read(source, json_path, out, rule_id)
        if raw_json is None:
            continue
        events: list[Mapping[str, Any]] = []
        lines: list[int] = []
        try:
            for ev_line, record in events_from_json_stream(raw_json.decode("utf-8-sig", errors="replace")):
                fields = sigma_fields(record)
                if fields is None:
                    out.findings.append(_finding(json_path, ev_line, "Malformed test event",
                                                 'expected a Windows event exported as {"Event": {"System": '
                                                 '..., "EventData": ...}}', rule_id=rule_id))
                    continue
                events.append(fields)
                lines.append(ev_line)
                if len(events) >= MAX_EVENTS_PER_FILE:
                    break
        except json.JSONDecodeError as e:
            out.findings.append(_finding(json_path, e.lineno, "Malformed test file", f"JSON error: {e.msg}",
                                         rule_id=rule_id))
        if not events:
            out.findings.append(_finding(info_path, line, "Test events missing",
                                         f"test '{name}': {json_path} holds no event", "warning", rule_id))
            continue
        if name in seen:
            name = f"{name} ({basename(json_path)})"
        seen[name] = line
        out.tests.append(TestEvent(name, "no_match" if match_count == 0 else "match", events[0], None, None,
                                   info_path, line, match_count, events[1:], lines, json_path))


# --- entry point -------------------------------------------------------------------------------------------------

def load_tests(source: FileSource, test_paths: list[str], rule_path: str = "", rule_data: Any = None,
               rule_doc: Document | None = None, rule_id: str | None = None) -> LoadedTests:
    """Every test of one rule: its detbot test files, then its SigmaHQ regression tests."""
    out = LoadedTests()
    seen: dict[str, int] = {}
    for path in sorted(test_paths):
        if path.endswith((".tests.yml", ".tests.yaml")):
            _load_tests_list(source, path, out, seen, rule_id)
        else:
            _load_single(source, path, out, seen, rule_id)
    if isinstance(rule_data, dict) and "regression_tests_path" in rule_data:
        line = rule_doc.line(("regression_tests_path",)) if rule_doc else 1
        _load_sigmahq(source, rule_path, rule_data, line, out, seen, rule_id)
    return out


def load_event_file(source: FileSource, path: str) -> LoadedTests:
    """An event file given on the command line: a tests file (list), one test, a bare event (YAML or JSON
    mapping), or a SigmaHQ JSON export. Bare events get expect=match and the file's stem as name."""
    out = LoadedTests()
    raw = _read(source, path, out, None)
    if raw is None:
        return out
    text = raw.decode("utf-8-sig", errors="replace")
    data: Any
    if path.endswith(".json"):
        try:
            records = list(events_from_json_stream(text))
        except json.JSONDecodeError as e:
            out.findings.append(_finding(path, e.lineno, "Malformed event file", f"JSON error: {e.msg}"))
            return out
        if len(records) == 1 and isinstance(records[0][1], dict) and "expect" in records[0][1]:
            _load_single(source, path, out, {}, None)
            return out
        stem = splitext(basename(path))[0]
        out.bare = True
        for n, (line, record) in enumerate(records, 1):
            fields = sigma_fields(record) if isinstance(record, dict) and "Event" in record else record
            if not isinstance(fields, dict):
                out.findings.append(_finding(path, line, "Malformed event", "an event must be a JSON object"))
                continue
            name = stem if len(records) == 1 else f"{stem} #{n}"
            out.tests.append(TestEvent(name, "match", fields, None, None, path, line, event_lines=[line],
                                       events_path=path))
        return out
    doc = _load_yaml(raw, path, out, None)
    if doc is None:
        return out
    data = doc.data
    if isinstance(data, list) or (isinstance(data, dict) and isinstance(data.get("tests"), list)):
        _load_tests_list(source, path, out, {}, None)
    elif isinstance(data, dict) and ("expect" in data or "event" in data):
        _load_single(source, path, out, {}, None)
    elif isinstance(data, dict):
        out.bare = True
        out.tests.append(TestEvent(splitext(basename(path))[0], "match", data, None, None, path, 1,
                                   event_lines=[1], events_path=path))
    else:
        out.findings.append(_finding(path, 1, "Malformed event file",
                                     f"expected an event (a mapping) or a list of tests, found a {_kind(data)}"))
    return out


def bundle_tests(ctx: Any, bundle: Any) -> LoadedTests:
    """The tests of a rule bundle, loaded once per run and shared by the checks (tests, coverage, ads)."""
    key = f"testevents:{bundle.rule_path}"
    hit = ctx.cache.get(key)
    if hit is None:
        rf = ctx.rule_file(bundle.rule_path)
        first = next((d for d in rf.docs if isinstance(d.data, dict)), None)
        hit = ctx.cache[key] = load_tests(ctx.source, bundle.test_paths, bundle.rule_path,
                                          first.data if first else None, first.doc if first else None,
                                          first.rule_id if first else None)
    return hit
