"""The ADS check: every rule has an Alerting & Detection Strategy document (Palantir's framework) whose sections
are present, filled in, and agree with the rule (ATT&CK techniques, false positives, level).

Config, section `ads:` of .github/detbot.yml:
    synonyms:      {Section Name: [other heading, ...]}   extra headings accepted for a section
    optional:      [Section Name, ...]                    sections not required
    placeholders:  [regex, ...]                            extra text that counts as unfilled
    priorities:    {level: [word, ...]}                    words that state a rule level in Priority
    fp_match:      0.5                                     share of a rule falsepositive's words the ADS must use
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Iterable

from . import attack
from .attack_names import TECHNIQUE_MENTION, full_name, tag_technique, techniques_named
from .config import ConfigError, ConfigSection
from .findings import Finding, Level
from .markdown import Block, Heading, MarkdownDoc, blocks, parse
from .repository import RuleBundle
from .runner import CheckContext
from .testevents import bundle_tests

CHECK = "ads"
SECTIONS = ("Goal", "Categorization", "Strategy Abstract", "Technical Context", "Blind Spots and Assumptions",
            "False Positives", "Validation", "Priority", "Response")
OPTIONAL_SECTIONS = ("Additional Resources",)
DEFAULT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Goal": ("objective", "purpose"),
    "Categorization": ("categorisation", "att&ck categorization", "mitre att&ck", "att&ck mapping"),
    "Strategy Abstract": ("strategy", "abstract"),
    "Technical Context": (),
    "Blind Spots and Assumptions": ("blind spots & assumptions", "blind spots", "blindspots and assumptions"),
    "False Positives": ("known false positives",),
    "Validation": ("testing",),
    "Priority": ("severity",),
    "Response": ("playbook", "triage"),
    "Additional Resources": ("resources", "references"),
}
# Sigma levels and the words a Priority section may use for each.
DEFAULT_PRIORITIES: dict[str, tuple[str, ...]] = {
    "informational": ("informational", "info", "p5"),
    "low": ("low", "p4"),
    "medium": ("medium", "moderate", "p3"),
    "high": ("high", "p2"),
    "critical": ("critical", "p1"),
}
_PLACEHOLDER = re.compile(
    r"^(?:todo|tbd|tba|fixme|xxx|placeholder|fill (?:me|in)|to be (?:done|determined|defined|written))\b"
    r"|^(?:n/?a|-+|\.+|…|none yet)$|lorem ipsum"
    r"|^<[^>]*>$|^\{\{[^}]*\}\}$|^\[[^\]]*\]$", re.IGNORECASE)
_NONE_LIKE = re.compile(
    r"^(?:none|unknown|unknowns?|n/?a|nothing|unlikely|not known|none known|none expected|none identified|"
    r"no known(?: false positives?)?|no false positives?(?: (?:known|expected))?|not applicable)$", re.IGNORECASE)
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+\S")
_ATOMIC = re.compile(r"atomic[\s-]*red[\s-]*team|invoke-atomictest|atomics/t\d{4}|\batomic test\b", re.IGNORECASE)
_STOPWORDS = frozenset(
    "the and for with from that this are was were not but can may when which their there into via use used using "
    "some other any all its his her our your has have had been being also only more most such than then them they "
    "who what where how why will would could should does did done".split())
CONFIG_KEYS = ("synonyms", "optional", "placeholders", "priorities", "fp_match")


# --- settings ----------------------------------------------------------------------------------------------------

@dataclass
class AdsSettings:
    headings: dict[str, str] = field(default_factory=dict)  # normalised heading -> section name
    required: tuple[str, ...] = SECTIONS
    placeholders: list[re.Pattern[str]] = field(default_factory=list)
    priorities: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    fp_match: float = 0.5


def norm_heading(text: str) -> str:
    text = re.sub(r"[*_`]", "", text).lower().replace("&", " and ")
    text = re.sub(r"^\s*(?:\d+|[ivx]+)[.)]\s*", "", text)
    return " ".join(re.sub(r"[:.\s]+$", "", text).split())


def _section_key(name: str) -> str | None:
    wanted = norm_heading(name)
    return next((s for s in (*SECTIONS, *OPTIONAL_SECTIONS) if norm_heading(s) == wanted), None)


def settings_from(section: ConfigSection) -> AdsSettings:
    """Validate the `ads:` config section; raise ConfigError naming the key and its line."""
    data = section.data or {}
    for key in data:
        if key not in CONFIG_KEYS:
            raise section.error(str(key), f"unknown key (known: {', '.join(CONFIG_KEYS)})")
    st = AdsSettings()
    synonyms = {s: {s, *DEFAULT_SYNONYMS.get(s, ())} for s in (*SECTIONS, *OPTIONAL_SECTIONS)}
    extra = data.get("synonyms", {})
    if not isinstance(extra, dict):
        raise section.error("synonyms", "must map a section name to a list of headings")
    for name, words in extra.items():
        key = _section_key(str(name))
        if key is None:
            raise section.error(f"synonyms.{name}", f"unknown section (known: {', '.join(SECTIONS)}, "
                                                    f"{', '.join(OPTIONAL_SECTIONS)})")
        words = [words] if isinstance(words, str) else words
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise section.error(f"synonyms.{name}", "must be a heading or a list of headings")
        synonyms[key].update(words)
    for name, words in synonyms.items():
        for w in words:
            st.headings.setdefault(norm_heading(w), name)
    optional = data.get("optional", [])
    optional = [optional] if isinstance(optional, str) else optional
    if not isinstance(optional, list):
        raise section.error("optional", "must be a list of section names")
    skip = set()
    for name in optional:
        key = _section_key(str(name))
        if key is None:
            raise section.error("optional", f"unknown section {name!r} (known: {', '.join(SECTIONS)})")
        skip.add(key)
    st.required = tuple(s for s in SECTIONS if s not in skip)
    pats = data.get("placeholders", [])
    pats = [pats] if isinstance(pats, str) else pats
    if not isinstance(pats, list):
        raise section.error("placeholders", "must be a list of regular expressions")
    for p in pats:
        try:
            st.placeholders.append(re.compile(str(p), re.IGNORECASE))
        except re.error as e:
            raise section.error("placeholders", f"{p!r} is not a valid regular expression: {e}") from None
    prios = data.get("priorities", {})
    if not isinstance(prios, dict):
        raise section.error("priorities", "must map a Sigma level to a list of words")
    for level, words in prios.items():
        if level not in DEFAULT_PRIORITIES:
            raise section.error(f"priorities.{level}", f"not a Sigma level ({', '.join(DEFAULT_PRIORITIES)})")
        words = [words] if isinstance(words, str) else words
        if not isinstance(words, list) or not all(isinstance(w, (str, int)) for w in words):
            raise section.error(f"priorities.{level}", "must be a word or a list of words")
        st.priorities[level] = tuple(dict.fromkeys([*DEFAULT_PRIORITIES[level], *(str(w).lower() for w in words)]))
    fp = data.get("fp_match", st.fp_match)
    if isinstance(fp, bool) or not isinstance(fp, (int, float)) or not 0 < fp <= 1:
        raise section.error("fp_match", "must be a number between 0 (exclusive) and 1")
    st.fp_match = float(fp)
    return st


# --- the document ------------------------------------------------------------------------------------------------

def _norm_line(line: str) -> str:
    line = re.sub(r"^\s*(?:[-*+>]|\d+[.)])\s+", "", line)
    line = re.sub(r"[*_`]", "", line)
    return " ".join(line.split()).strip().rstrip(".:;,").strip()


@lru_cache(maxsize=1)
def template_help_lines() -> frozenset[str]:
    """Every body line of the bundled ADS template: left as it is, it says nothing about the rule."""
    try:
        text = resources.files("checks").joinpath("templates/rule.ads.md").read_text("utf-8")
    except (FileNotFoundError, OSError):
        return frozenset()
    md = parse(text)
    lines = set()
    for n, line in enumerate(md.lines, 1):
        if any(h.line == n for h in md.headings):
            continue
        norm = _norm_line(line).lower()
        if len(norm) > 3 and "{{" not in line:
            lines.add(norm)
            # The help without its TODO marker is still the help.
            lines.add(re.sub(r"^todo:?\s*", "", norm))
    return frozenset(lines)


def is_placeholder(line: str, settings: AdsSettings) -> bool:
    norm = _norm_line(line)
    if not norm:
        return True
    return bool(_PLACEHOLDER.search(norm) or norm.lower() in template_help_lines()
                or any(p.search(norm) for p in settings.placeholders))


def content_lines(block: Block, settings: AdsSettings) -> list[tuple[int, str]]:
    """The block's lines that say something: not blank, not placeholders, not sub-headings."""
    return [(n, t) for n, t in block.lines
            if t.strip() and not re.match(r"^\s*#{1,6}\s", t) and not re.match(r"^\s*(?:```|~~~)", t)
            and not is_placeholder(t, settings)]


@dataclass
class AdsDoc:
    md: MarkdownDoc
    sections: dict[str, Block]
    duplicates: list[Heading]


def read_ads(text: str, settings: AdsSettings) -> AdsDoc:
    md = parse(text)
    starts: list[Heading] = []
    names: dict[int, str] = {}
    seen: set[str] = set()
    duplicates = []
    for h in md.headings:
        name = settings.headings.get(norm_heading(h.text))
        if name is None:
            continue
        if name in seen:
            duplicates.append(h)
            continue
        seen.add(name)
        starts.append(h)
        names[h.line] = name
    # Duplicates still end the previous section, so they are section starts for slicing.
    slices = blocks(md, sorted(starts + duplicates, key=lambda h: h.line))
    sections = {names[b.heading.line]: b for b in slices if b.heading.line in names}
    return AdsDoc(md, sections, duplicates)


# --- the rule side -----------------------------------------------------------------------------------------------

@dataclass
class RuleFacts:
    path: str
    title_line: int = 1
    detection_line: int = 1
    rule_id: str | None = None
    techniques: dict[str, int] = field(default_factory=dict)  # T1059.001 -> line of the tag
    level: str | None = None
    level_line: int = 1
    falsepositives: list[tuple[str, int]] = field(default_factory=list)


def rule_facts(ctx: CheckContext, bundle: RuleBundle) -> RuleFacts:
    rf = ctx.rule_file(bundle.rule_path)
    facts = RuleFacts(bundle.rule_path)
    docs = [d for d in rf.docs if isinstance(d.data, dict)]
    if not docs:
        return facts
    first = docs[0]
    facts.title_line = first.doc.line(("title",))
    facts.detection_line = next((d.doc.line(("detection",)) for d in docs if "detection" in d.data),
                                first.doc.line(("correlation",)) if "correlation" in first.data else 1)
    facts.rule_id = first.rule_id
    for d in docs:
        tags = d.data.get("tags")
        for i, tag in enumerate(tags if isinstance(tags, list) else []):
            tid = tag_technique(str(tag))
            if tid:
                facts.techniques.setdefault(tid, d.doc.line(("tags", i)))
        fps = d.data.get("falsepositives")
        fps = [fps] if isinstance(fps, str) else fps
        for i, fp in enumerate(fps if isinstance(fps, list) else []):
            if isinstance(fp, str) and fp.strip() and not _NONE_LIKE.match(_norm_line(fp)):
                facts.falsepositives.append((fp.strip(), d.doc.line(("falsepositives", i))))
        if facts.level is None and isinstance(d.data.get("level"), str):
            facts.level = d.data["level"].strip().lower()
            facts.level_line = d.doc.line(("level",))
    return facts


# --- the checks of one document ----------------------------------------------------------------------------------

class _Out:
    def __init__(self, ads_path: str, rule_id: str | None):
        self.ads_path, self.rule_id, self.items = ads_path, rule_id, []

    def add(self, line: int, title: str, message: str, level: Level = "failure", path: str | None = None) -> None:
        self.items.append(Finding(CHECK, path or self.ads_path, line, line, level, title, message, self.rule_id))


def _nearest_line(name: str, doc: AdsDoc) -> int:
    """Where a missing section would go: after the section before it in the framework's order."""
    order = list(SECTIONS)
    i = order.index(name)
    for other in reversed(order[:i]):
        if other in doc.sections:
            return doc.sections[other].end_line
    for other in order[i + 1:]:
        if other in doc.sections:
            return doc.sections[other].heading.line
    return 1


def check_structure(doc: AdsDoc, settings: AdsSettings, out: _Out) -> set[str]:
    """Missing and empty sections; returns the names of the sections with content."""
    filled = set()
    present = [s for s in settings.required if s in doc.sections]
    if not present and not any(s in doc.sections for s in OPTIONAL_SECTIONS):
        out.add(1, "ADS sections missing", "no ADS section found; expected headings: " + ", ".join(settings.required))
        return filled
    for name in (*settings.required, *(s for s in OPTIONAL_SECTIONS if s in doc.sections)):
        block = doc.sections.get(name)
        if block is None:
            out.add(_nearest_line(name, doc), "ADS section missing",
                    f"section '{name}' is missing (any heading level; order is free)")
            continue
        body = [(n, t) for n, t in block.lines if t.strip()]
        if content_lines(block, settings):
            filled.add(name)
            continue
        if name in OPTIONAL_SECTIONS:
            continue
        if not body:
            out.add(block.heading.line, "ADS section empty", f"section '{name}' is empty")
        else:
            sample = _norm_line(body[0][1])
            out.add(block.heading.line, "ADS section empty",
                    f"section '{name}' has only placeholder text ('{_shorten(sample)}'); write what applies to "
                    f"this rule")
    for h in doc.duplicates[:10]:
        out.add(h.line, "ADS section repeated", f"heading '{h.text}' repeats a section already given above; "
                f"its content is not read", "warning")
    return filled


def _shorten(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _technique_mentions(block: Block, settings: AdsSettings, tagged: set[str]) -> list[tuple[str, int]]:
    """ATT&CK technique ids named in a Categorization section, by id or by name, with their lines."""
    found: list[tuple[str, int]] = []
    for n, line in content_lines(block, settings):
        ids = [m.group(0).upper().replace("/", ".") for m in TECHNIQUE_MENTION.finditer(line)]
        found += [(tid, n) for tid in ids]
        if ids:
            continue
        # No id on the line: look for technique names, whole or between separators.
        text = _norm_line(line)
        text = re.sub(r"^(?:sub-?technique|technique|tactic)s?\s*:\s*", "", text, flags=re.IGNORECASE)
        pieces = [text, *re.split(r"\s*(?:[|,;/>→]| - | – )\s*", text)]
        for piece in pieces:
            piece = re.sub(r"^(?:sub-?technique|technique)s?\s*:\s*", "", piece.strip(), flags=re.IGNORECASE)
            ids = techniques_named(piece.strip(" .()"))
            if len(ids) > 1:  # a sub-technique name under several parents: take the tagged one, if any
                ids = [t for t in ids if t in tagged][:1]
            if ids:
                found.append((ids[0], n))
                break
    return found


def check_categorization(doc: AdsDoc, facts: RuleFacts, settings: AdsSettings, out: _Out) -> None:
    block = doc.sections["Categorization"]
    tagged = set(facts.techniques)
    mentions = _technique_mentions(block, settings, tagged)
    named: dict[str, int] = {}
    for tid, line in mentions:
        if attack.technique(tid) is None:
            out.add(line, "Unknown ATT&CK technique",
                    f"{tid} is not a technique in ATT&CK {attack.version()} (deprecated, revoked or mistyped)")
            continue
        named.setdefault(tid, line)
    for tid, line in named.items():
        if tid in tagged:
            continue
        # Naming the parent of a tagged sub-technique is context, not disagreement.
        if any(t.startswith(tid + ".") for t in tagged):
            continue
        parent = tid.split(".")[0]
        hint = (f" (the rule is tagged with its parent {parent}; tag the sub-technique, attack.{tid.lower()})"
                if parent in tagged else f"; add the tag attack.{tid.lower()} or remove {tid} here")
        out.add(line, "ATT&CK mismatch",
                f"Categorization names {tid} ({full_name(tid)}) but the rule's tags do not{hint}")
    for tid, tag_line in facts.techniques.items():
        if tid in named:
            continue
        name = full_name(tid)
        if name is None:
            continue  # an unknown tag is the syntax check's finding
        out.add(block.heading.line, "ATT&CK mismatch",
                f"the rule is tagged attack.{tid.lower()} ({name}, {facts.path}:{tag_line}) but Categorization "
                f"does not name {tid}")


def _words(text: str) -> set[str]:
    out = set()
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if len(w) < 3 or w in _STOPWORDS:
            continue
        for suffix in ("ing", "es", "s", "ed"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                w = w[: -len(suffix)]
                break
        out.add(w)
    return out


def fp_mentioned(fp: str, text_words: set[str], threshold: float) -> bool:
    words = _words(fp)
    if not words:
        return True
    return len(words & text_words) / len(words) >= threshold


def check_false_positives(doc: AdsDoc, facts: RuleFacts, settings: AdsSettings, out: _Out) -> None:
    block = doc.sections["False Positives"]
    lines = content_lines(block, settings)
    concrete = [(n, t) for n, t in lines if not _NONE_LIKE.match(_norm_line(t))]
    if not concrete:
        said = _norm_line(lines[0][1]) if lines else ""
        out.add(block.heading.line, "No concrete false positive",
                f"False Positives names no concrete case ('{_shorten(said)}'): name at least one benign activity "
                f"that can trigger the rule, and how to tell it apart")
        return
    text_words = _words(" ".join(t for _, t in concrete))
    for fp, line in facts.falsepositives:
        if not fp_mentioned(fp, text_words, settings.fp_match):
            out.add(block.heading.line, "False positive not in ADS",
                    f"the rule lists the false positive '{_shorten(fp, 80)}' ({facts.path}:{line}) but False "
                    f"Positives does not mention it", "warning")


def check_validation(doc: AdsDoc, bundle: RuleBundle, test_names: Iterable[str], settings: AdsSettings,
                     out: _Out) -> None:
    block = doc.sections["Validation"]
    lines = content_lines(block, settings)
    if any(n in doc.md.code_lines for n, _ in block.lines) or any(t.startswith(("    ", "\t")) for _, t in lines):
        return
    if any(_NUMBERED.match(t) for _, t in lines):
        return
    text = " ".join(t for _, t in lines)
    if _ATOMIC.search(text):
        return
    low = text.lower()
    names = [n for n in test_names if len(n) >= 3]
    if any(n.lower() in low for n in names) or f"{bundle.name}.tests" in low:
        return
    example = f" (e.g. '{names[0]}')" if names else ""
    out.add(block.heading.line, "Validation not reproducible",
            "Validation gives no way to reproduce the detection: add numbered steps, a code block with the "
            f"commands, an Atomic Red Team test, or name one of the rule's test events{example}")


def _stated_priority(block: Block, settings: AdsSettings) -> tuple[str, str, int] | None:
    """(level, word, line) of the first level word in the section; lines mentioning priority/severity first."""
    words = sorted(((w, lvl) for lvl, ws in settings.priorities.items() for w in ws), key=lambda x: -len(x[0]))
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(w) for w, _ in words) + r")(?![\w-])", re.IGNORECASE)
    by_word = {w.lower(): lvl for w, lvl in words}
    lines = content_lines(block, settings)
    ordered = ([x for x in lines if re.search(r"priorit|severit", x[1], re.IGNORECASE)]
               + [x for x in lines if not re.search(r"priorit|severit", x[1], re.IGNORECASE)])
    for n, t in ordered:
        m = pattern.search(t)
        if m:
            return by_word[m.group(1).lower()], m.group(1), n
    return None


def check_priority(doc: AdsDoc, facts: RuleFacts, settings: AdsSettings, out: _Out) -> None:
    if facts.level not in settings.priorities:
        return
    block = doc.sections["Priority"]
    stated = _stated_priority(block, settings)
    expected = "/".join(settings.priorities[facts.level])
    if stated is None:
        out.add(block.heading.line, "Priority mismatch",
                f"Priority states no level; the rule's level is {facts.level} ({facts.path}:{facts.level_line}): "
                f"say {expected}")
    elif stated[0] != facts.level:
        out.add(stated[2], "Priority mismatch",
                f"Priority says '{stated[1]}' ({stated[0]}) but the rule's level is {facts.level} "
                f"({facts.path}:{facts.level_line})")


def check_document(text: str, bundle: RuleBundle, facts: RuleFacts, test_names: Iterable[str],
                   settings: AdsSettings) -> list[Finding]:
    out = _Out(bundle.ads_path, facts.rule_id)
    doc = read_ads(text, settings)
    filled = check_structure(doc, settings, out)
    if "Categorization" in filled:
        check_categorization(doc, facts, settings, out)
    if "False Positives" in filled:
        check_false_positives(doc, facts, settings, out)
    if "Validation" in filled:
        check_validation(doc, bundle, test_names, settings, out)
    if "Priority" in filled:
        check_priority(doc, facts, settings, out)
    return out.items


def check_changed(ctx: CheckContext, bundle: RuleBundle, facts: RuleFacts) -> list[Finding]:
    """Pull request mode: the rule file changed and its ADS did not."""
    if ctx.changed is None or bundle.rule_path not in ctx.changed or bundle.ads_path in ctx.changed:
        return []
    line = facts.detection_line
    return [Finding(CHECK, bundle.rule_path, line, line, "warning", "ADS not updated",
                    f"this pull request changes {bundle.rule_path} but not its ADS document {bundle.ads_path}. "
                    f"detbot only sees that the rule file changed, not which part: if the detection logic changed, "
                    f"update the ADS (Strategy Abstract, Blind Spots, False Positives, Validation)",
                    facts.rule_id)]


def run(ctx: CheckContext) -> list[Finding]:
    try:
        settings = settings_from(ctx.config.section("ads"))
    except ConfigError as e:
        return [Finding(CHECK, e.path, e.line, e.line, "failure", "Configuration error", f"{e.key}: {e.message}")]
    findings: list[Finding] = []
    for n, bundle in enumerate(ctx.bundles, 1):
        ctx.tick("ads", n, len(ctx.bundles))
        rf = ctx.rule_file(bundle.rule_path)
        if not any(isinstance(d.data, dict) for d in rf.docs):
            continue  # not a rule the syntax check could read: that is its finding, not a missing ADS
        facts = rule_facts(ctx, bundle)
        text = ctx.read_text(bundle.ads_path)
        if text is None:
            findings.append(Finding(CHECK, bundle.rule_path, facts.title_line, facts.title_line, "failure",
                                    "ADS missing",
                                    f"no ADS document at {bundle.ads_path}: every rule needs one (sections: "
                                    f"{', '.join(settings.required)}); `detbot new-rule` scaffolds it",
                                    facts.rule_id))
            continue
        names = bundle_tests(ctx, bundle).names
        findings += check_document(text, bundle, facts, names, settings)
        findings += check_changed(ctx, bundle, facts)
    return findings
