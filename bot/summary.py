"""The Markdown of a check run's output: what a reviewer reads in ten seconds, then the details.

The summary holds a table of the changed rules against every check that ran (so each check run shows the whole
picture), the `text` holds this check's findings rule by rule. Both stay within GitHub's 65,535 characters.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

from checks.findings import Finding
from checks.repository import RuleBundle

MAX_OUTPUT = 65535
MAX_TITLE = 255
MAX_TABLE_ROWS = 60
_TRUNCATED = "\n\n_… truncated (GitHub limits check run text to 65,535 characters)._"

ICON = {"failure": ":x:", "warning": ":warning:", "notice": ":information_source:", "pass": ":white_check_mark:"}


@dataclass(frozen=True)
class Output:
    title: str
    summary: str
    text: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"title": self.title, "summary": self.summary}
        if self.text:
            out["text"] = self.text
        return out


def clip(text: str, limit: int = MAX_OUTPUT, note: str = _TRUNCATED) -> str:
    """`text` within `limit` UTF-8 bytes: GitHub's documentation says characters, its validation counts bytes
    ("summary exceeds a maximum bytesize of 65535"), and PR content is often not ASCII."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[: limit - len(note.encode("utf-8"))].decode("utf-8", errors="ignore") + note


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def counts_phrase(findings: Iterable[Finding]) -> str:
    c = Counter(f.level for f in findings)
    parts = [_plural(c[lvl], lvl) for lvl in ("failure", "warning", "notice") if c[lvl]]
    return ", ".join(parts) if parts else "no findings"


def rule_of(bundles: list[RuleBundle]) -> dict[str, str]:
    """Every file of a bundle -> its rule path, so a finding on a test file or ADS counts for its rule."""
    owner: dict[str, str] = {}
    for b in bundles:
        for p in b.paths():
            if p:
                owner.setdefault(p, b.rule_path)
    return owner


def _cell(findings: list[Finding]) -> str:
    if not findings:
        return ICON["pass"]
    c = Counter(f.level for f in findings)
    return " ".join(f"{ICON[lvl]} {c[lvl]}" for lvl in ("failure", "warning", "notice") if c[lvl])


def _md_code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _md_text(text: str) -> str:
    """One line of table-safe Markdown from arbitrary finding text (which comes from PR content)."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def render_check_output(check: str, bundles: list[RuleBundle], findings: list[Finding],
                        checks_run: list[str], left_out: int = 0, note: str = "") -> Output:
    """`findings` are all checks' findings; this run's are those with `f.check == check`."""
    owner = rule_of(bundles)
    by_rule: dict[str, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for f in findings:
        by_rule[owner.get(f.path, f.path)][f.check].append(f)
    mine = [f for f in findings if f.check == check]
    rules = [b.rule_path for b in bundles] + [r for r in by_rule if r not in {b.rule_path for b in bundles}]
    affected = [r for r in rules if by_rule[r].get(check)]

    if mine:
        title = f"{counts_phrase(mine)} in {len(affected)} of {_plural(len(rules), 'rule')}"
    else:
        title = f"{_plural(len(rules), 'rule')} checked: all pass"
    lines = [f"**detbot/{check}**: {title}.", ""]

    def severity(rule: str) -> tuple:
        own = by_rule[rule].get(check, [])
        allf = [f for fs in by_rule[rule].values() for f in fs]
        return (not any(f.level == "failure" for f in own), not own,
                not any(f.level == "failure" for f in allf), not allf, rule)

    ordered = sorted(rules, key=severity)
    lines.append("| Rule | " + " | ".join(f"**{c}**" if c == check else c for c in checks_run) + " |")
    lines.append("|---|" + "---|" * len(checks_run))
    for rule in ordered[:MAX_TABLE_ROWS]:
        lines.append(f"| {_md_code(rule)} | " + " | ".join(_cell(by_rule[rule].get(c, [])) for c in checks_run)
                     + " |")
    rest = ordered[MAX_TABLE_ROWS:]
    if rest:
        failing = sum(1 for r in rest if by_rule[r])
        lines.append(f"\n_… and {_plural(len(rest), 'more rule')} ({failing} with findings) not shown._")
    if left_out:
        lines.append(f"\n:warning: {_plural(left_out, 'finding')} not annotated: more than the configured "
                     f"annotation limit. All are listed in the details below (as far as space allows).")
    if note:
        lines.append(f"\n{note}")
    summary = clip("\n".join(lines))

    details: list[str] = []
    for rule in affected:
        details.append(f"### {_md_code(rule)}")
        for f in by_rule[rule][check]:
            where = f"{f.path}:{f.start_line}" + (f":{f.start_column}" if f.start_column else "")
            details.append(f"- {ICON[f.level]} {_md_code(where)} **{_md_text(f.title)}**: {_md_text(f.message)}")
        details.append("")
    return Output(clip(title, MAX_TITLE, "…"), summary, clip("\n".join(details)))


TRUNCATED_NOTE = (":x: GitHub lists at most 3,000 files of a pull request: files beyond those were not seen "
                  "and their rules not checked, so this check cannot pass. Split the pull request to have every "
                  "rule checked.")


def render_skipped(check: str, changed_count: int, note: str = "", deleted_rules: Sequence[str] = ()) -> Output:
    """`deleted_rules`: rules the pull request deletes (no rule left refers to them, or it would be checked)."""
    if deleted_rules:
        listed = ", ".join(_md_code(p) for p in deleted_rules[:10]) + (", …" if len(deleted_rules) > 10 else "")
        title = f"{_plural(len(deleted_rules), 'rule')} deleted, nothing left to check"
        text = (f"**detbot/{check}**: this pull request deletes {_plural(len(deleted_rules), 'rule')} ({listed}) "
                f"and changes no other rule, test events or ADS document; no remaining correlation rule refers "
                f"to the deleted ones, so there is nothing to check.")
    else:
        title = "No rule changed"
        text = (f"**detbot/{check}**: this pull request changes {_plural(changed_count, 'file')}, none of them a "
                f"rule, its test events or its ADS document, so there is nothing to check.")
    return Output("Too many files: not every file was seen" if note else clip(title, MAX_TITLE, "…"),
                  text + (f"\n\n{note}" if note else ""))


def render_disabled(check: str) -> Output:
    return Output("Disabled in config", f"**detbot/{check}** is disabled in `.github/detbot.yml` (`checks.{check}`).")


def render_error(check: str, reason: str) -> Output:
    return Output("detbot failed", clip(
        f"**detbot/{check}** could not complete: {reason}\n\nThis is a failure of detbot, not necessarily of the "
        f"pull request. Use the **Re-run** button or comment `/recheck` to try again."))


def render_config_error(check: str, error: str) -> Output:
    return Output("Configuration error", clip(
        f"**detbot/{check}** did not run: `.github/detbot.yml` on the default branch is invalid.\n\n"
        f"```\n{error}\n```\n\nFix the configuration on the default branch, then use **Re-run** or `/recheck`."))


def render_waiting(check: str) -> Output:
    return Output("Waiting for detbot to restart",
                  f"detbot was stopped before it could finish **detbot/{check}**. It runs again as soon as detbot "
                  f"is back; nothing needs to be done.")


def render_cancelled(check: str, reason: str = "a newer commit was pushed") -> Output:
    return Output("Superseded", f"**detbot/{check}** was cancelled: {reason}. The newest commit is checked instead.")
