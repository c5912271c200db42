"""Alert store benchmark: import and KPI query times, SQLite and PostgreSQL side by side.

    python bench/bench_kpi.py                 # 5,000,000 alerts over 1,000 rules (Zipf-skewed), 90 days
    python bench/bench_kpi.py --rows 200000   # scaled down

Three figures per store, each timed alone: generating the alerts in Python (once, shared by the stores);
importing them through the store API (`upsert_stream`); and `detbot alerts import FILE` run as a command on a
CSV and a JSON Lines export of the same alerts (the files are written once, untimed). JSON Lines into SQLite are
decoded in a worker process (checks/kpi/jsonl_worker.py): that figure wants a second core.

Prints figures; asserts nothing. Targets: importing 5 M rows in under 60 s; KPIs for 50 rules in under 100 ms
on SQLite.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checks.kpi.report import kpis_for_rules  # noqa: E402
from checks.kpi.store import Alert, open_store  # noqa: E402

PG_DSN = os.environ.get("DETBOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
STATUSES = [("open", None), ("in_progress", None), ("closed", "true_positive"), ("closed", "false_positive"),
            ("closed", "benign_positive"), ("closed", None)]
STATUS_WEIGHTS = [15, 10, 30, 35, 5, 5]


def rule_ids(n: int) -> list[str]:
    rnd = random.Random(7)
    return [f"{rnd.getrandbits(32):08x}-{i:04x}-4000-8000-{rnd.getrandbits(48):012x}" for i in range(n)]


def generate(rows: int, rules: list[str], days: int, seed: int = 1, source: str = "bench", start: int = 0):
    """Zipf-skewed alerts (rank k gets weight 1/k), uniformly spread over `days`, in batches of 50,000."""
    rnd = random.Random(seed)
    cum, acc = [], 0.0
    for k in range(1, len(rules) + 1):
        acc += 1 / k
        cum.append(acc)
    status_cum = [sum(STATUS_WEIGHTS[:i + 1]) for i in range(len(STATUS_WEIGHTS))]
    span = days * 86400
    base = NOW.timestamp() - span
    utc, fromts = timezone.utc, datetime.fromtimestamp
    names = {rule: (rule[:8], f"Rule {rule[:8]}") for rule in rules}  # one string per rule: 5 M alerts fit in RAM
    i = start
    while i < start + rows:
        n = min(50_000, start + rows - i)
        picks = rnd.choices(rules, cum_weights=cum, k=n)
        statuses = rnd.choices(STATUSES, cum_weights=status_cum, k=n)
        for rule, (stage, verdict) in zip(picks, statuses):
            created = fromts(base + rnd.random() * span, utc)
            platform, title = names[rule]
            yield Alert(source, f"al-{i}", rule, created, stage, verdict, platform_rule_id=platform,
                        rule_title=title, closed_at=created if stage == "closed" else None)
            i += 1


async def timed_kpis(store, ids: list[str], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = await kpis_for_rules(store, ids, 30, NOW)
        times.append((time.perf_counter() - t) * 1000)
        assert len(out) == len(ids)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


async def bench_store(url: str, alerts: list[Alert], args, rules: list[str]) -> dict:
    result: dict = {}
    store = await open_store(url)
    try:
        t, cpu = time.perf_counter(), time.process_time()
        res = await store.upsert_stream(iter(alerts), batch_size=args.batch)
        result["import_s"] = time.perf_counter() - t
        result["import_cpu_s"] = time.process_time() - cpu
        result["imported"] = res.inserted
        result["rows_per_s"] = len(alerts) / result["import_s"]
        n_update = min(100_000, args.rows)
        updates = list(generate(n_update, rules, args.days, seed=2))
        t = time.perf_counter()
        res = await store.upsert_stream(iter(updates), batch_size=args.batch)
        result["reimport_100k_s"] = time.perf_counter() - t
        result["updated"] = res.updated
        rnd = random.Random(3)
        one = [rules[0]]                                     # the noisiest rule: the worst case
        fifty = [rules[0]] + rnd.sample(rules[1:], 49)
        await kpis_for_rules(store, fifty, 30, NOW)          # warm the cache, as a running bot would be
        result["kpi_1_ms"] = await timed_kpis(store, one, args.repeat)
        result["kpi_50_ms"] = await timed_kpis(store, fifty, args.repeat)
        result["count"] = await store.count()
    finally:
        await store.close()
    return result


def write_exports(tmp: str, alerts: list[Alert]) -> dict[str, Path]:
    """The alerts as a CSV and a JSON Lines export, as a SIEM would write them."""
    import json
    paths = {"csv": Path(tmp) / "export.csv", "jsonl": Path(tmp) / "export.jsonl"}
    with paths["csv"].open("w") as c, paths["jsonl"].open("w") as j:
        c.write("alert_id,rule_id,rule_title,created_at,stage,verdict\n")
        for a in alerts:
            created = a.created_at.isoformat()
            c.write(f"{a.alert_id},{a.rule_id},{a.rule_title},{created},{a.stage},{a.verdict or ''}\n")
            j.write(json.dumps({"alert_id": a.alert_id, "rule_id": a.rule_id, "rule_title": a.rule_title,
                                "created_at": created, "stage": a.stage, "verdict": a.verdict}) + "\n")
    return paths


def cli_import(path: Path, url: str, rows: int) -> dict:
    """`detbot alerts import FILE --store URL` as a user runs it: a fresh process, timed from outside."""
    cmd = [sys.executable, "-m", "bot.cli", "alerts", "import", str(path), "--store", url]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    wall = time.perf_counter() - t
    if done.returncode != 0 or f"{rows:,} imported" not in done.stdout:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stdout}{done.stderr}")
    return {"wall": wall, "rows_per_s": rows / wall}


async def pg_drop(schema: str) -> None:
    import asyncpg
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


def store_urls(kind: str, tmp: str, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp}/{name}.db"
    return f"{PG_DSN}?schema=detbot_bench_{name}_{secrets.token_hex(4)}"


async def drop(url: str) -> None:
    if "?schema=" in url:
        await pg_drop(url.rsplit("=", 1)[1])


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--rules", type=int, default=1000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--batch", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=30, help="KPI query repetitions (median and p95 reported)")
    p.add_argument("--stores", default="sqlite,postgresql")
    p.add_argument("--formats", default="csv,jsonl", help="exports imported through the command ('' skips)")
    args = p.parse_args()
    rules = rule_ids(args.rules)
    kinds = args.stores.split(",")
    formats = [f for f in args.formats.split(",") if f]
    print(f"{args.rows:,} alerts over {args.rules:,} rules (Zipf), {args.days} days; batches of {args.batch:,}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    t = time.perf_counter()
    alerts = list(generate(args.rows, rules, args.days))
    gen_s = time.perf_counter() - t
    print(f"generating {args.rows:,} alerts in Python: {gen_s:.1f} s (not part of any import figure)")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="detbot-bench-") as tmp:
        for kind in kinds:
            url = store_urls(kind, tmp, "api")
            try:
                results[kind] = await bench_store(url, alerts, args, rules)
            finally:
                await drop(url)
            if kind == "sqlite":
                results[kind]["size_mb"] = sum(f.stat().st_size for f in Path(tmp).glob("api.db*")) / 1e6
            print(f"  {kind}: API import done", file=sys.stderr)
        if formats:
            t = time.perf_counter()
            paths = write_exports(tmp, alerts)
            print(f"writing the exports: {time.perf_counter() - t:.1f} s (untimed); " +
                  ", ".join(f"{f} {paths[f].stat().st_size / 1e6:,.0f} MB" for f in formats))
        del alerts
        for fmt in formats:
            for kind in kinds:
                url = store_urls(kind, tmp, f"cli_{fmt}")
                try:
                    results[kind][f"cli_{fmt}"] = cli_import(paths[fmt], url, args.rows)
                finally:
                    await drop(url)
                print(f"  {kind}: {fmt} import done", file=sys.stderr)
    print(f"{'':34}" + "".join(f"{k:>16}" for k in results))
    rows = [("import via API, wall (s)", "import_s", "{:.1f}"),
            ("import via API, CPU here (s)", "import_cpu_s", "{:.1f}"),
            ("import via API (rows/s)", "rows_per_s", "{:,.0f}")]
    for fmt in formats:
        rows += [(f"detbot alerts import {fmt}, wall (s)", (f"cli_{fmt}", "wall"), "{:.1f}"),
                 (f"detbot alerts import {fmt} (rows/s)", (f"cli_{fmt}", "rows_per_s"), "{:,.0f}")]
    rows += [("re-import 100k updates (s)", "reimport_100k_s", "{:.2f}"),
             ("KPIs 1 rule median (ms)", ("kpi_1_ms", 0), "{:.2f}"),
             ("KPIs 1 rule p95 (ms)", ("kpi_1_ms", 1), "{:.2f}"),
             ("KPIs 50 rules median (ms)", ("kpi_50_ms", 0), "{:.2f}"),
             ("KPIs 50 rules p95 (ms)", ("kpi_50_ms", 1), "{:.2f}"), ("alerts stored", "count", "{:,}")]
    for label, key, fmt in rows:
        cells = []
        for r in results.values():
            v = r[key[0]][key[1]] if isinstance(key, tuple) else r.get(key)
            cells.append(fmt.format(v) if v is not None else "-")
        print(f"{label:34}" + "".join(f"{c:>16}" for c in cells))
    if "sqlite" in results:
        print(f"sqlite file size: {results['sqlite']['size_mb']:.0f} MB")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (wall times include waiting for a busy CPU)")


if __name__ == "__main__":
    asyncio.run(main())
