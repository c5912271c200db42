"""`detbot kpi [RULE...] [--days N] [--format text|json|markdown]`: production alert KPIs per rule."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml

from checks.config import ConfigError
from checks.kpi.comment import render_kpi_view
from checks.kpi.report import RuleKpi, kpis_for_rules, window
from checks.kpi.stats import pct
from checks.kpi.store import StoreError, open_store

from .alerts import add_common, load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kpi", help="alert KPIs per rule: volume, rejection rate, week over week")
    p.add_argument("rules", nargs="*", metavar="RULE",
                   help="Sigma rule ids or rule files (default: every rule with alerts in the window)")
    p.add_argument("--days", type=int, default=None, help="window in days (default: alerts.days, 30)")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--top", type=int, default=None, metavar="N", help="only the N noisiest rules")
    add_common(p)
    p.set_defaults(func=main)


def rule_ref(arg: str) -> tuple[str, str]:
    """(Sigma id, title) for a rule id or a rule file. Only reads the file's YAML; nothing in it runs."""
    path = Path(arg)
    if arg.endswith((".yml", ".yaml")) and path.is_file():
        try:
            data = yaml.load(path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as e:
            raise ValueError(f"{arg}: not YAML: {e}") from None
        if not isinstance(data, dict) or not data.get("id"):
            raise ValueError(f"{arg}: the rule has no `id`")
        return str(data["id"]), str(data.get("title") or "")
    return arg, ""


def to_text(rows: list[RuleKpi], days: int) -> str:
    """An aligned table; a rule without alerts gets one phrase instead of figures."""
    head = ("RULE", f"ALERTS/{days}D", "OPEN", "CLOSED", "REJECTED", "BENIGN", "REJECTION", "7D VS PRIOR", "")
    table: list[tuple[str, ...]] = []
    for k in rows:
        name = (k.title or k.rule_id)[:48]
        if not k.has_history:
            table.append((name, "no production history"))
            continue
        rej = k.rejection
        rejection = (f"{pct(rej.rate)} ({pct(rej.interval[0])}-{pct(rej.interval[1])}) of {rej.triaged}"
                     if rej.interval else rej.text())
        table.append((name, f"{k.total:,}", f"{k.open:,}", f"{k.closed:,}", f"{k.rejected:,}", f"{k.benign:,}",
                      rejection, f"{k.week.current} vs {k.week.previous}", k.week.trend))
    full = [head] + [r for r in table if len(r) == len(head)]
    widths = [max(len(r[i]) for r in full) for i in range(len(head))]
    widths[0] = max([widths[0]] + [len(r[0]) for r in table])
    lines = []
    for r in [head] + table:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])] if len(r) == len(head) \
            else [r[0].ljust(widths[0]), r[1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    days = settings.days if args.days is None else args.days
    if days < 1:
        print("detbot: --days must be at least 1", file=sys.stderr)
        return 2
    refs = [rule_ref(r) for r in args.rules]
    now = datetime.now(timezone.utc)
    async with await open_store(settings.store) as store:
        if refs:
            ids = [r for r, _ in refs]
        else:
            ids = await store.active_rules(*window(days, now))
        if args.top:
            ids = ids[:args.top]
        rows = await kpis_for_rules(store, ids, days, now, titles={r: t for r, t in refs if t},
                                    benign_as=settings.benign_positive, min_triaged=settings.min_triaged)
    if args.format == "json":
        print(json.dumps({"days": days, "store": settings.store.split("@")[-1],
                          "rules": [k.to_dict() for k in rows]}, indent=2))
    elif args.format == "markdown":
        print(render_kpi_view(rows, days=days, charts=settings.charts))
    else:
        print(to_text(rows, days) if rows else f"no alerts in the last {days} days")
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_main(args))
    except ConfigError as e:
        print(f"detbot: config error: {e}", file=sys.stderr)
    except (StoreError, ValueError, OSError) as e:
        print(f"detbot: {e}", file=sys.stderr)
    return 2
