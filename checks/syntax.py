"""The syntax check: YAML errors and Sigma errors, each at the line of the offending element."""
from __future__ import annotations

from .findings import Finding
from .runner import CheckContext

CHECK = "syntax"


def run(ctx: CheckContext) -> list[Finding]:
    findings: list[Finding] = []
    for n, bundle in enumerate(ctx.bundles, 1):
        ctx.tick("syntax", n, len(ctx.bundles))
        rf = ctx.rule_file(bundle.rule_path)
        if rf.yaml_error:
            e = rf.yaml_error
            findings.append(Finding(CHECK, rf.path, e.line, e.line, "failure", "YAML error", e.message,
                                    start_column=e.column))
        for rd in rf.docs:
            if not isinstance(rd.data, dict):
                pos = rd.doc.pos(())
                findings.append(Finding(CHECK, rf.path, pos.line, pos.line, "failure", "Not a Sigma rule",
                                        f"document {rd.index + 1} is a {type(rd.data).__name__}, not a mapping",
                                        start_column=pos.column))
                continue
            for err in rd.errors:
                pos = rd.doc.pos(())
                findings.append(Finding(CHECK, rf.path, pos.line, pos.line, "failure",
                                        f"Sigma error ({type(err).__name__})", str(err).split(" in ")[0],
                                        rule_id=rd.rule_id, start_column=pos.column))
    return findings
