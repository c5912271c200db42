"""Throughput of `detbot check` (syntax) over a generated corpus, with pySigma's own loading side by side.

    python -m bench.bench_check [--rules 3000] [--regen] [--peer-sample 500]

Prints rules/s for: YAML alone (C loader with positions), YAML + pySigma rule objects (what detbot parses),
the whole syntax check (plus conditions, validators, duplicate ids), and the peer: pySigma's
`SigmaCollection.from_yaml` + `SigmaValidator` as sigma-cli runs them, on a sample of the same files.
Then asserts that nothing crashed: every broken rule of the corpus became a finding.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # also as `python bench/bench_check.py`

from bench.corpus import generate  # noqa: E402
from checks.config import Config  # noqa: E402
from checks.rulefile import parse_rule_file  # noqa: E402
from checks.runner import run_checks  # noqa: E402
from checks.source import LocalSource, MemorySource  # noqa: E402
from checks.yamldoc import load_all  # noqa: E402

CORPUS = Path(__file__).parent / "corpus"


class Timer:
    """CPU time of this process (what the code costs) and wall time (what a user waits, on a shared
    machine inflated by other load)."""

    def __enter__(self) -> "Timer":
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall

    def rate(self, n: int) -> str:
        return (f"{n / self.cpu:7.0f} rules/s CPU {n / self.wall:7.0f} rules/s wall "
                f"({n} rules, {self.cpu:6.2f} s CPU, {self.wall:6.2f} s wall)")


def verify(findings: list, manifest: dict[str, str]) -> list[str]:
    """Every broken file has a failure finding; nothing crashed. Returns the problems (empty when fine)."""
    by_path: dict[str, list] = {}
    for f in findings:
        by_path.setdefault(f.path, []).append(f)
    problems = [f"{f.path}: internal error: {f.message}" for f in findings if f.title == "Internal error"]
    for path, kind in manifest.items():
        fails = [f for f in by_path.get(path, []) if f.level == "failure"]
        if kind == "duplicate_id":
            fails = [f for f in fails if f.title == "Duplicate rule id"]
        if not fails:
            problems.append(f"{path}: broken ({kind}) but no failure finding")
    return problems


def peer_sigma_cli(paths: list[Path]) -> tuple[Timer, int]:
    """sigma-cli's way: pure-Python YAML through SigmaCollection, then SigmaValidator over the rules."""
    from sigma.validation import SigmaValidator

    from checks.validation import NOT_IN_ALL, known_validators
    known = known_validators()  # also installs the bundled (offline) data
    validator = SigmaValidator([known[n] for n in known if n not in NOT_IN_ALL])
    raws = [p.read_bytes() for p in paths]
    rules = 0
    with Timer() as t:
        rules = _peer_run(raws, validator)
    return t, rules


def _peer_run(raws: list[bytes], validator: object) -> int:
    from sigma.collection import SigmaCollection
    rules = 0
    for raw in raws:
        try:
            coll = SigmaCollection.from_yaml(raw, collect_errors=True)
            for rule in coll.rules:
                rules += 1
                if not rule.errors:
                    validator.validate_rule(rule)
        except Exception:  # sigma-cli reports and goes on; only the time matters here
            rules += 1
    validator.finalize()
    return rules


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", type=int, default=3000)
    ap.add_argument("--regen", action="store_true", help="regenerate the corpus")
    ap.add_argument("--peer-sample", type=int, default=500, help="files timed with the peer (0: skip)")
    args = ap.parse_args()

    manifest_path = CORPUS / "manifest.json"
    rule_files = sorted((CORPUS / "rules").rglob("*.yml")) if (CORPUS / "rules").exists() else []
    if args.regen or not manifest_path.exists() or len(rule_files) != args.rules:
        start = time.perf_counter()
        generate(CORPUS, args.rules)
        print(f"corpus: generated {args.rules} rules in {time.perf_counter() - start:.1f} s -> {CORPUS}")
        rule_files = sorted((CORPUS / "rules").rglob("*.yml"))
    manifest: dict[str, str] = json.loads(manifest_path.read_text())
    print(f"corpus: {len(rule_files)} rule files, {len(manifest)} broken "
          f"({len(set(manifest.values()))} kinds)\n")

    raws = [(p.relative_to(CORPUS).as_posix(), p.read_bytes()) for p in rule_files]
    valid = [(path, raw) for path, raw in raws if path not in manifest]
    print(f"phases over the {len(valid)} valid rules:")
    with Timer() as t:
        for _, raw in valid:
            for _ in load_all(raw):
                pass
    print(f"  YAML (C loader + positions)          {t.rate(len(valid))}")
    with Timer() as t:
        for path, raw in valid:
            parse_rule_file(path, raw)
    print(f"  YAML + pySigma rule objects          {t.rate(len(valid))}")

    with Timer() as t:
        result = run_checks(LocalSource(CORPUS), Config(), only=["syntax"])
    print(f"\ndetbot check --check syntax, whole corpus (broken files included):\n"
          f"  {'':37}{t.rate(len(result.bundles))}")

    findings = result.findings
    # The next run starts with one full collection of what the process holds (checks.runner.collector_paused):
    # clean up here, so the side-by-side below is not charged for the whole-corpus run's leftovers.
    del result
    gc.collect()

    if args.peer_sample:
        sample = dict(valid[: args.peer_sample])
        with Timer() as ours:
            run_checks(MemorySource(sample), Config(), only=["syntax"])
        peer, n = peer_sigma_cli([CORPUS / p for p in sample])
        print(f"\nside by side on {len(sample)} valid rules, all validators, files in memory:")
        print(f"  detbot syntax check                  {ours.rate(len(sample))}")
        print(f"  pySigma collection + validator       {peer.rate(n)}\n"
              f"  (the peer is sigma-cli's way: pure-Python YAML, no positions, no conditions forced, no duplicate ids)")

    levels = Counter(f.level for f in findings)
    print(f"\nfindings: {len(findings)} ({dict(levels)})")
    found = Counter(kind for path, kind in manifest.items()
                    if any(f.path == path and f.level == "failure" for f in findings))
    print("broken kinds found: " + ", ".join(f"{k} {found[k]}/{v}" for k, v in
                                             sorted(Counter(manifest.values()).items())))
    problems = verify(findings, manifest)
    for p in problems[:20]:
        print("PROBLEM", p, file=sys.stderr)
    assert not problems, f"{len(problems)} broken rules without a finding or crashed"
    print("OK: every broken rule became a finding, nothing crashed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
