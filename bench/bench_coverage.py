"""What the coverage check adds to the tests check, on a 3,000+ rule corpus with test events.

Both checks share one full evaluation per test event (ctx.cache), so coverage should cost little beyond the
tests check: target < 50% added. Prints, side by side on the same workload: the tests check, the coverage
check run after it in the same context (what coverage adds), their sum, and coverage alone (cold: it parses
and evaluates itself).

The corpus is synthetic but SigmaHQ-shaped (process-creation selections with value lists, |contains|all,
filters under `not`, `1 of` / `all of` selectors, list-of-maps filters, keyword rules) and each rule carries
the test events an engineer would write: one match, one no_match per filter, one benign event.

    python bench/bench_coverage.py [--rules 3200] [--seed 7] [--repeat 2]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checks.config import Config  # noqa: E402
from checks.runner import run_checks  # noqa: E402
from checks.source import MemorySource  # noqa: E402

EXES = [f"{n}.exe" for n in (
    "cmd powershell pwsh rundll32 regsvr32 mshta wscript cscript certutil bitsadmin schtasks wmic msiexec reg "
    "net whoami nltest curl sc vssadmin bcdedit wevtutil forfiles hh cmstp installutil regasm msbuild odbcconf "
    "explorer svchost winword excel outlook chrome firefox msedge teams notepad mmc taskkill netsh attrib "
    "icacls cipher ntdsutil esentutl expand findstr").split()] + [f"tool{i}.exe" for i in range(120)]
WORDS = ("-enc -nop bypass downloadstring iex frombase64string /c -urlcache -split http:// https:// admin$ "
         "/create onlogon delete shadows -decode javascript: scrobj.dll comsvcs.dll minidump /add "
         "--headless .ps1 .hta ,DllRegisterServer").split() + [f"param{i}" for i in range(200)]
PARENTS = ["ccmexec.exe", "msiexec.exe", "TrustedInstaller.exe", "devenv.exe", "code.exe", "Teams.exe"]


def _event_value(mods: list[str], value: str) -> str:
    if "endswith" in mods:
        return "C:\\Windows\\System32\\" + value.lstrip("\\")
    if "startswith" in mods:
        return value + " --more"
    if "contains" in mods:
        return f"x {value} y"
    return value


def _satisfy(block: dict[str, Any], event: dict[str, Any]) -> None:
    for key, values in block.items():
        field, *mods = key.split("|")
        values = values if isinstance(values, list) else [values]
        if "all" in mods:
            event[field] = " ".join(_event_value(["contains"], v) for v in values)
        else:
            event[field] = _event_value(mods, values[0])


def make_rule(r: random.Random, i: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    det: dict[str, Any] = {}
    if r.random() < 0.07:
        det["keywords"] = r.sample(WORDS, r.randint(1, 3))
        det["condition"] = "keywords"
        tests = [{"name": "keyword seen", "expect": "match", "event": {"Message": f"a {det['keywords'][0]} b"}},
                 {"name": "benign", "expect": "no_match", "event": {"Message": "nothing here"}}]
    else:
        sels = []
        for s in range(r.choice([1, 1, 2, 3])):
            sel: dict[str, Any] = {}
            if r.random() < 0.8:
                sel["Image|endswith"] = ["\\" + e for e in r.sample(EXES, r.randint(1, 6))]
            if r.random() < 0.7 or not sel:
                words = r.sample(WORDS, r.randint(1, 4))
                sel["CommandLine|contains|all" if len(words) > 1 and r.random() < 0.4
                    else "CommandLine|contains"] = words
            if r.random() < 0.2:
                sel["OriginalFileName"] = r.choice(EXES)
            name = f"selection_{s}" if s else "selection"
            det[name] = sel
            sels.append(name)
        filters = []
        for f in range(r.choice([0, 1, 1, 2])):
            name = f"filter_main_{f}"
            if r.random() < 0.3:
                det[name] = [{"ParentImage|endswith": "\\" + p} for p in r.sample(PARENTS, 2)]
            else:
                det[name] = {"ParentImage|endswith": "\\" + r.choice(PARENTS)}
            filters.append(name)
        sel_part = sels[0] if len(sels) == 1 else ("all of selection*" if r.random() < 0.6 else "1 of selection*")
        det["condition"] = sel_part + (" and not 1 of filter_main_*" if filters else "")
        match: dict[str, Any] = {"ParentImage": "C:\\Windows\\explorer.exe"}
        chosen = sels if sel_part.startswith("all") or len(sels) == 1 else sels[:1]
        for s in chosen:
            _satisfy(det[s], match)
        tests = [{"name": "attack", "expect": "match", "event": match}]
        for f in filters:
            block = det[f][0] if isinstance(det[f], list) else det[f]
            ev = dict(match)
            _satisfy(block, ev)
            tests.append({"name": f"excluded by {f}", "expect": "no_match", "event": ev})
        tests.append({"name": "benign", "expect": "no_match",
                      "event": {"Image": "C:\\Windows\\notepad.exe", "CommandLine": "notepad a.txt",
                                "ParentImage": "C:\\Windows\\explorer.exe"}})
    rule = {"title": f"Synthetic Rule {i}", "id": str(uuid.UUID(int=r.getrandbits(128))), "status": "test",
            "description": "synthetic benchmark rule", "author": "bench", "date": "2026-01-01",
            "tags": ["attack.execution", "attack.t1059"],
            "logsource": {"category": "process_creation", "product": "windows"},
            "detection": det, "falsepositives": ["Unknown"], "level": r.choice(["low", "medium", "high"])}
    return rule, tests


def corpus(n: int, seed: int) -> MemorySource:
    r = random.Random(seed)
    files: dict[str, bytes] = {}
    for i in range(n):
        rule, tests = make_rule(r, i)
        stem = f"rules/windows/process_creation/proc_creation_win_synthetic_{i:05d}"
        files[stem + ".yml"] = yaml.safe_dump(rule, sort_keys=False).encode()
        files[stem + ".tests.yml"] = yaml.safe_dump(tests, sort_keys=False).encode()
    return MemorySource(files)


def timed_checks(source: MemorySource, steps: list[str]) -> list[float]:
    """Seconds for each check in `steps`, run one after another in one context (sharing its cache) and with
    the collector paused, the way run_checks runs them."""
    from checks import coverage, tests_check
    from checks.runner import CheckContext, collector_paused
    from checks.repository import discover
    modules = {"tests": tests_check, "coverage": coverage}
    config = Config()
    ctx = CheckContext(source, config, discover(source, config))
    out = []
    start = time.perf_counter()  # the first step also pays the collection a run starts with
    with collector_paused():
        for name in steps:
            modules[name].run(ctx)
            out.append(time.perf_counter() - start)
            start = time.perf_counter()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rules", type=int, default=3200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best is shown")
    args = ap.parse_args()
    t0 = time.perf_counter()
    source = corpus(args.rules, args.seed)
    events = sum(len(yaml.safe_load(source.files[p])) for p in source.files if p.endswith(".tests.yml"))
    print(f"corpus: {args.rules} rules, {events} test events (generated in {time.perf_counter() - t0:.1f} s)")
    tests_s, added_s, cold_s = float("inf"), float("inf"), float("inf")
    for _ in range(args.repeat):
        t, a = timed_checks(source, ["tests", "coverage"])
        tests_s, added_s = min(tests_s, t), min(added_s, a)
        cold_s = min(cold_s, timed_checks(source, ["coverage"])[0])
    print(f"{'tests check':<34}{tests_s:8.2f} s")
    print(f"{'coverage check after it':<34}{added_s:8.2f} s  ({100 * added_s / tests_s:.1f}% added; target < 50%)")
    print(f"{'tests + coverage':<34}{tests_s + added_s:8.2f} s")
    print(f"{'coverage alone (cold, evaluates)':<34}{cold_s:8.2f} s")
    result = run_checks(source, Config(), only=["tests", "coverage"])
    from checks.coverage import repository_coverage
    s = repository_coverage(result.context).summary()
    failures = sum(f.level == "failure" for f in result.findings)
    print(f"coverage: {s['identifier_percent']}% identifiers decisive, {s['value_percent']}% values matched; "
          f"{failures} failures over {len(result.bundles)} rules")


if __name__ == "__main__":
    main()
