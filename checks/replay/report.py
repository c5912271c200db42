"""A replay report as findings (annotations on the failing tests' lines), text, or a Markdown summary."""
from __future__ import annotations

import json

from ..findings import Finding, Level
from .replay import BROKEN, VERDICTS, ReplayReport, ReplayResult

CHECK = "replay"
# Field drift is worth a look but the rule still decides as its tests say.
LEVELS: dict[str, Level] = {"RULE_BROKEN": "failure", "NEW_MATCH": "failure", "UNPARSED": "failure",
                            "BACKEND_ERROR": "failure", "FIELD_DRIFT": "warning"}
TITLES = {"RULE_BROKEN": "Rule broken by parser", "NEW_MATCH": "New match after re-parsing",
          "FIELD_DRIFT": "Field drift", "UNPARSED": "Raw log not parsed", "BACKEND_ERROR": "Parser backend error"}
ICONS = {"PASS": "✅", "RULE_BROKEN": "❌", "NEW_MATCH": "❌", "FIELD_DRIFT": "⚠️", "UNPARSED": "❌",
         "BACKEND_ERROR": "🛑", "SKIPPED": "⏭️"}


def replay_findings(report: ReplayReport) -> list[Finding]:
    out = []
    for r in report.results:
        if r.verdict not in BROKEN:
            continue
        out.append(Finding(CHECK, r.test_path, r.test_line, r.test_line, LEVELS[r.verdict], TITLES[r.verdict],
                           f"test '{r.test_name}' ({r.verdict}): {r.detail}", r.rule_id))
    return out


def summary_line(report: ReplayReport) -> str:
    counts = report.counts
    parts = [f"{counts[v]} {v}" for v in VERDICTS if counts[v]]
    return (f"{report.rules} rule(s), {len(report.results)} test(s) replayed: {', '.join(parts) or 'nothing to do'}"
            f" ({report.parsed} parsed, {report.cache_hits} from cache)")


def render_text(report: ReplayReport, verbose: bool = False) -> str:
    lines = []
    for r in report.results:
        if r.verdict == "PASS" and not verbose:
            continue
        if r.verdict == "SKIPPED" and not verbose:
            continue
        lines.append(f"{r.test_path}:{r.test_line}: {r.verdict}: {r.rule_title or r.rule_path} "
                     f"/ test '{r.test_name}': {r.detail}")
    for name in report.unknown_rules:
        lines.append(f"(no rule matches '{name}')")
    lines.append(summary_line(report))
    return "\n".join(lines)


def render_json(report: ReplayReport) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str)


def _cell(text: str, limit: int = 300) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def _diff_block(r: ReplayResult) -> str:
    if not r.field_diff:
        return ""
    rows = "".join(f"<br>`{_cell(c.field, 80)}`: {_cell(c.describe().split(': ', 1)[1], 160)}"
                   for c in r.field_diff[:10])
    more = f"<br>… {len(r.field_diff) - 10} more" if len(r.field_diff) > 10 else ""
    return rows + more


def render_markdown(report: ReplayReport, max_rows: int = 50, title: str = "Replay") -> str:
    """Counts, then one table row per test that did not pass (worst first), capped at `max_rows`."""
    counts = report.counts
    out = [f"### {title}", "", summary_line(report), "",
           "| " + " | ".join(f"{ICONS[v]} {v}" for v in VERDICTS) + " |",
           "|" + "---|" * len(VERDICTS),
           "| " + " | ".join(str(counts[v]) for v in VERDICTS) + " |", ""]
    order = {v: i for i, v in enumerate(("RULE_BROKEN", "NEW_MATCH", "UNPARSED", "BACKEND_ERROR", "FIELD_DRIFT"))}
    bad = sorted((r for r in report.results if r.broken), key=lambda r: (order[r.verdict], r.rule_path, r.test_line))
    if bad:
        out += ["| Verdict | Rule | Test | Details |", "|---|---|---|---|"]
        for r in bad[:max_rows]:
            rule = _cell(r.rule_title or r.rule_path, 100)
            out.append(f"| {ICONS[r.verdict]} {r.verdict} | {rule}<br>`{_cell(r.rule_path, 120)}` | "
                       f"{_cell(r.test_name, 100)}<br>`{_cell(r.test_path, 120)}:{r.test_line}` | "
                       f"{_cell(r.summary if r.field_diff and r.summary else r.detail)}{_diff_block(r)} |")
        if len(bad) > max_rows:
            out.append(f"\n… and {len(bad) - max_rows} more test(s) that did not pass.")
    elif report.results:
        out.append("Every replayed test gives the same outcome with the same fields. ✅")
    if report.unknown_rules:
        out.append("")
        out.append("No rule matches: " + ", ".join(f"`{_cell(u, 80)}`" for u in report.unknown_rules))
    return "\n".join(out)


# GitHub refuses an issue body over 65,536 characters; counted in UTF-8 bytes to be safe (as check runs are).
MAX_ISSUE_BODY = 65536
SEE_ALL = "`detbot replay --all`"


def _issue_test_lines(r: ReplayResult) -> list[str]:
    return ([f"- {ICONS[r.verdict]} **{r.verdict}**: test '{_cell(r.test_name, 120)}' "
             f"(`{r.test_path}:{r.test_line}`, parser `{r.parser}`): {_cell(r.summary or r.detail)}"]
            + [f"  - `{_cell(c.field, 80)}`: {_cell(c.describe().split(': ', 1)[1], 200)}" for c in r.field_diff[:10]])


def _bytes(lines: list[str]) -> int:
    return sum(len(line.encode("utf-8")) + 1 for line in lines)


def _more_line(tests: int, rules: int) -> str:
    return (f"… and {tests} more broken test(s), {rules} more rule(s), not listed here: "
            f"run {SEE_ALL} to see them all.")


def render_issue(report: ReplayReport, max_tests: int = 200, max_bytes: int = MAX_ISSUE_BODY) -> str | None:
    """The body of the issue tracking a catalog's breakage, grouped by rule with the fields that changed; None
    when nothing is broken. Deterministic (no timings, no cache figures) so an unchanged state edits nothing.
    Lists the broken rules while they fit in `max_tests` tests and `max_bytes` UTF-8 bytes, then says how many
    more there are (a cut-off body would hide that)."""
    bad = [r for r in report.results if r.broken]
    if not bad:
        return None
    by_rule: dict[str, list[ReplayResult]] = {}
    for r in sorted(bad, key=lambda r: (r.rule_path, r.test_line, r.test_name)):
        by_rule.setdefault(r.rule_path, []).append(r)
    counts = report.counts
    out = [f"Replaying the test events' raw logs through the current parsers breaks {len(by_rule)} rule(s) "
           f"({', '.join(f'{counts[v]} {v}' for v in BROKEN if counts[v])}, out of {len(report.results)} tests).",
           ""]
    closing = f"Run {SEE_ALL} locally, or `/replay RULE` on a pull request, to see the details."
    # Room for the closing lines, with the largest counts they can hold.
    budget = max_bytes - _bytes(out) - _bytes([_more_line(len(bad), len(by_rule)), closing])
    shown = rules_shown = 0
    for path, results in by_rule.items():
        head = results[0]
        rid = f", id `{head.rule_id}`" if head.rule_id else ""
        block = [f"### {_cell(head.rule_title or path, 120)} (`{path}`{rid})"]
        listed = 0
        for r in results:
            lines = _issue_test_lines(r)
            if shown + listed >= max_tests or _bytes(block + lines + [""]) > budget:
                break
            block += lines
            listed += 1
        if not listed:
            break
        out += block + [""]
        budget -= _bytes(block + [""])
        shown, rules_shown = shown + listed, rules_shown + 1
        if listed < len(results):
            break
    if shown < len(bad):
        out.append(_more_line(len(bad) - shown, len(by_rule) - rules_shown))
    out.append(closing)
    return "\n".join(out)
