"""Evaluator vs pySigma's SQLite backend on one workload: every rule of a corpus x every event.

    python bench/bench_evaluator.py [--rules 3000] [--events 1000]

Each engine runs in its own subprocess (a fair peak RSS each) on the same rule files and events:
- evaluator: YAML (C loader) -> SigmaRule -> compile_rule; every rule asked about every event.
- sqlite:    YAML (C loader) -> SigmaRule -> SQL; events loaded once into one table (TEXT COLLATE
             NOCASE columns, full-text column for keywords) and each rule's query run once: how
             Zircolite does it.
Figures: rules loaded per second, load and evaluation time, rule x event evaluations per second,
total, peak RSS (and RSS after imports, the interpreter + pySigma baseline both share).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


PARSE_TIME = [0.0]  # seconds spent in YAML + pySigma parsing, which both engines share


def _load(paths: list[Path]):
    import yaml
    from checks.rulefile import build_rule
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for p in paths:
        t = time.perf_counter()
        data = yaml.load(p.read_bytes(), Loader=loader)
        rule, errors = build_rule(data)
        PARSE_TIME[0] += time.perf_counter() - t
        yield data, rule, errors


def run_evaluator(paths: list[Path], events: list[dict]) -> dict:
    from checks.evaluator import RuleSet, compile_rule, paused_gc
    base = _rss_mb()
    t0 = time.perf_counter()
    rules = []
    with paused_gc():
        for data, rule, errors in _load(paths):
            if rule is not None and not errors:
                rules.append(compile_rule(rule, data=data))
        ruleset = RuleSet(rules)
    t1 = time.perf_counter()
    matches = 0
    for event in events:
        matches += len(ruleset.matching(event))
    t2 = time.perf_counter()
    return {"rules": len(rules), "load": t1 - t0, "eval": t2 - t1, "matches": matches,
            "parse": PARSE_TIME[0], "rss_base": base, "rss_peak": _rss_mb()}


def run_sqlite(paths: list[Path], events: list[dict]) -> dict:
    import re
    import sqlite3
    from sigma.backends.sqlite import sqliteBackend
    from checks.evaluator.event import text_of
    base = _rss_mb()
    backend = sqliteBackend(fulltext_field="_raw")
    t0 = time.perf_counter()
    queries = []
    # Not under paused_gc: the backend keeps nothing per rule, so pausing only piles up garbage.
    for data, rule, errors in _load(paths):
        if rule is None or errors:
            continue
        try:
            queries.extend(backend.convert_rule(rule))
        except Exception:
            continue
    t1 = time.perf_counter()
    con = sqlite3.connect(":memory:")
    cache: dict[str, re.Pattern] = {}

    def regexp(pattern: str, value) -> bool:
        if value is None:
            return False
        rx = cache.get(pattern)
        if rx is None:
            rx = cache[pattern] = re.compile(pattern)
        return rx.search(str(value)) is not None
    con.create_function("REGEXP", 2, regexp, deterministic=True)
    fields = sorted({k for e in events for k in e})
    cols = [*fields, "_raw"]
    con.execute("CREATE TABLE logs (" + ", ".join(f"`{c}` TEXT COLLATE NOCASE" for c in cols) + ")")
    rows = [[e.get(f) for f in fields] + ["\n".join(t for t in map(text_of, e.values()) if t is not None)]
            for e in events]
    con.executemany(f"INSERT INTO logs VALUES ({', '.join('?' * len(cols))})", rows)
    matches = 0
    for q in queries:
        try:
            matches += len(con.execute(q).fetchall())
        except sqlite3.Error:
            continue
    t2 = time.perf_counter()
    return {"rules": len(queries), "load": t1 - t0, "eval": t2 - t1, "matches": matches,
            "parse": PARSE_TIME[0], "rss_base": base, "rss_peak": _rss_mb()}


def child(engine: str, rules_dir: str, events_file: str) -> None:
    paths = sorted(Path(rules_dir).glob("*.yml"))
    events = json.loads(Path(events_file).read_text())
    # Import the shared stack before measuring, so both baselines hold the same modules.
    import checks.rulefile  # noqa: F401
    import sigma.backends.sqlite  # noqa: F401
    out = (run_evaluator if engine == "evaluator" else run_sqlite)(paths, events)
    out["n_events"] = len(events)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", type=int, default=3000)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs per engine, alternating; the fastest run of each is shown (shared machines are noisy)")
    ap.add_argument("--engine", choices=["evaluator", "sqlite"], help=argparse.SUPPRESS)
    ap.add_argument("--rules-dir", help=argparse.SUPPRESS)
    ap.add_argument("--events-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.engine:
        child(args.engine, args.rules_dir, args.events_file)
        return
    from bench.evaluator_corpus import make_events, write_corpus
    with tempfile.TemporaryDirectory() as tmp:
        rules_dir = Path(tmp) / "rules"
        rules_dir.mkdir()
        write_corpus(rules_dir, args.rules)
        events_file = Path(tmp) / "events.json"
        events_file.write_text(json.dumps(make_events(args.events)))
        results: dict[str, dict] = {}
        for _ in range(max(1, args.repeat)):
            for engine in ("evaluator", "sqlite"):
                proc = subprocess.run(
                    [sys.executable, __file__, "--engine", engine, "--rules-dir", str(rules_dir),
                     "--events-file", str(events_file)],
                    capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
                if proc.returncode:
                    sys.exit(f"{engine} failed:\n{proc.stderr}")
                run = json.loads(proc.stdout.strip().splitlines()[-1])
                best = results.get(engine)
                if best is None or run["load"] + run["eval"] < best["load"] + best["eval"]:
                    results[engine] = run
    print(f"workload: {args.rules} rules x {args.events} events (best of {max(1, args.repeat)} runs each)")
    print(f"{'':28}{'evaluator':>14}{'sqlite':>14}")
    rows = [
        ("rules loaded", lambda r: f"{r['rules']}"),
        ("rules loaded / s", lambda r: f"{r['rules'] / r['load']:,.0f}"),
        ("load time (s)", lambda r: f"{r['load']:.2f}"),
        ("  of which YAML+pySigma (s)", lambda r: f"{r['parse']:.2f}"),
        ("  own: compile / to SQL (s)", lambda r: f"{r['load'] - r['parse']:.2f}"),
        ("evaluation time (s)", lambda r: f"{r['eval']:.2f}"),
        ("evaluations / s", lambda r: f"{r['rules'] * r['n_events'] / r['eval']:,.0f}"),
        ("total load+eval (s)", lambda r: f"{r['load'] + r['eval']:.2f}"),
        ("matches", lambda r: f"{r['matches']}"),
        ("RSS after imports (MB)", lambda r: f"{r['rss_base']:.0f}"),
        ("peak RSS (MB)", lambda r: f"{r['rss_peak']:.0f}"),
    ]
    for label, f in rows:
        print(f"{label:28}{f(results['evaluator']):>14}{f(results['sqlite']):>14}")
    ev, sq = results["evaluator"], results["sqlite"]
    speed = (sq["load"] + sq["eval"]) / (ev["load"] + ev["eval"])
    mem = ev["rss_peak"] / sq["rss_peak"]
    print(f"speed-up (sqlite total / evaluator total): {speed:.2f}x   (target >= 4x)")
    own = (sq["load"] - sq["parse"] + sq["eval"]) / (ev["load"] - ev["parse"] + ev["eval"])
    print(f"peak memory ratio (evaluator / sqlite):    {mem:.2f}x   (target <= 2x)")
    print(f"speed-up excluding the shared YAML+pySigma parse: {own:.2f}x")


if __name__ == "__main__":
    main()
