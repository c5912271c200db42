"""Findings as compiler-style text, JSON, or SARIF 2.1.0 for GitHub code scanning."""
from __future__ import annotations

import json
from typing import Iterable
from urllib.parse import quote

from .findings import Finding

SARIF_LEVEL = {"failure": "error", "warning": "warning", "notice": "note"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def to_text(findings: Iterable[Finding]) -> str:
    lines = []
    for f in findings:
        col = f.start_column or 1
        lines.append(f"{f.path}:{f.start_line}:{col}: {f.level}: {f.title}: {f.message}")
    return "\n".join(lines)


def to_json(findings: Iterable[Finding], **extra: object) -> str:
    return json.dumps({"findings": [f.to_dict() for f in findings], **extra}, indent=2, default=str)


def _rule_key(f: Finding) -> str:
    return f"detbot/{f.check}/{f.title}"


def to_sarif(findings: Iterable[Finding], version: str = "0.1.0") -> str:
    findings = list(findings)
    rule_ids: dict[str, int] = {}
    rules = []
    for f in findings:
        key = _rule_key(f)
        if key not in rule_ids:
            rule_ids[key] = len(rules)
            rules.append({"id": key, "name": f.title.replace(" ", ""),
                          "shortDescription": {"text": f"{f.check}: {f.title}"},
                          "defaultConfiguration": {"level": SARIF_LEVEL[f.level]}})
    results = []
    for f in findings:
        region: dict[str, int] = {"startLine": max(f.start_line, 1), "endLine": max(f.end_line, f.start_line, 1)}
        if f.start_column and f.start_column >= 1:
            region["startColumn"] = f.start_column
        # An empty or inverted span on one line is dropped: the start column alone is the location.
        if f.end_column and (region["endLine"] > region["startLine"] or f.end_column > region.get("startColumn", 1)):
            region["endColumn"] = f.end_column
        # A URI reference: a space or `#` in a path would be invalid or cut the path at a fragment.
        uri = quote(f.path, safe="/")
        result = {
            "ruleId": _rule_key(f), "ruleIndex": rule_ids[_rule_key(f)], "level": SARIF_LEVEL[f.level],
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                                                "region": region}}],
        }
        if f.rule_id:
            result["properties"] = {"sigmaRuleId": f.rule_id}
        results.append(result)
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": "detbot", "version": version,
                                         "informationUri": "https://github.com/detbot/detbot", "rules": rules}},
                     "results": results}]}
    return json.dumps(doc, indent=2)
