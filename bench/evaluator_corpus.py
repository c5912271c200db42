"""A synthetic, SigmaHQ-shaped rule corpus and event set for the evaluator benchmark.

Rules look like SigmaHQ process-creation / network / registry rules: selections on Image|endswith,
CommandLine|contains (with |all and |windash), OriginalFileName, ParentImage, filters, `1 of
selection_*`, some |re, |cidr, |base64offset, numeric EventIDs and keyword lists. Events draw
their values from the same pools, so a fraction of rule-event pairs match. Deterministic per seed.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

EXES = [f"{n}.exe" for n in (
    "cmd powershell pwsh rundll32 regsvr32 mshta wscript cscript certutil bitsadmin schtasks wmic "
    "msiexec reg net net1 whoami nltest curl wget sc vssadmin bcdedit wevtutil forfiles hh cmstp "
    "installutil regasm regsvcs msbuild odbcconf ieexec explorer svchost lsass winword excel outlook "
    "chrome firefox msedge teams notepad calc mmc taskkill tasklist systeminfo ipconfig arp route "
    "netsh attrib icacls takeown cipher diskshadow ntdsutil esentutl expand extrac32 findstr").split()]
EXES += [f"tool{i}.exe" for i in range(150)]
DIRS = ["C:\\Windows\\System32\\", "C:\\Windows\\SysWOW64\\", "C:\\Users\\Public\\", "C:\\ProgramData\\",
        "C:\\Program Files\\App\\", "C:\\Users\\bob\\AppData\\Local\\Temp\\"]
WORDS = ("-enc -nop -w hidden bypass downloadstring iex invoke-expression frombase64string /c /k "
         "-urlcache -split -f http:// https:// \\\\127.0.0.1\\ admin$ c$ /create /sc onlogon /ru system "
         "delete shadows /all /quiet -decode -exec javascript: vbscript: /i:http scrobj.dll "
         "sekurlsa::logonpasswords lsadump::sam comsvcs.dll minidump add /add localgroup "
         "administrators /domain trusts -ma lsass.exe --headless --remote-debugging-port "
         "AppData\\Roaming \\Temp\\ .ps1 .vbs .hta .dll,#1 ,DllRegisterServer").split()
WORDS += [f"param{i}" for i in range(300)]
USERS = ["NT AUTHORITY\\SYSTEM", "CORP\\bob", "CORP\\alice", "CORP\\admin", "WORKGROUP\\svc"]
INTEGRITY = ["Low", "Medium", "High", "System"]
IPS = ["10.1.2.3", "10.20.30.40", "192.168.1.10", "172.16.5.4", "8.8.8.8", "1.1.1.1", "203.0.113.7",
       "2001:db8::5", "fe80::1"]


def _pick(r: random.Random, pool: list, k: tuple[int, int]) -> list:
    return r.sample(pool, r.randint(*k))


def make_rule(r: random.Random, i: int) -> dict[str, Any]:
    det: dict[str, Any] = {}
    kind = r.random()
    if kind < 0.08:
        det["keywords"] = _pick(r, WORDS, (1, 4))
        condition = "keywords"
    elif kind < 0.18:
        det["selection"] = {"EventID": r.choice([3, 4624, 4625, 5156]),
                            "DestinationIp|cidr": r.sample(["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12",
                                                             "2001:db8::/32"], 2)}
        if r.random() < 0.5:
            det["filter_main"] = {"DestinationPort": r.choice([80, 443, 445])}
            condition = "selection and not filter_main"
        else:
            condition = "selection"
    else:
        n_sel = r.choice([1, 1, 1, 2, 3])
        for s in range(n_sel):
            sel: dict[str, Any] = {}
            choice = r.random()
            if choice < 0.6:
                sel["Image|endswith"] = ["\\" + e for e in _pick(r, EXES, (1, 4))]
            elif choice < 0.8:
                sel["OriginalFileName"] = [e.upper() for e in _pick(r, EXES, (1, 3))]
            else:
                sel["ParentImage|endswith"] = "\\" + r.choice(EXES)
            mod = r.random()
            if mod < 0.45:
                sel["CommandLine|contains"] = _pick(r, WORDS, (1, 5))
            elif mod < 0.6:
                sel["CommandLine|contains|all"] = _pick(r, WORDS, (2, 3))
            elif mod < 0.7:
                sel["CommandLine|windash|contains"] = ["-" + w.lstrip("-/") for w in _pick(r, WORDS, (1, 3))]
            elif mod < 0.77:
                sel["CommandLine|re"] = r.choice(["\\s-e(nc|ncodedcommand)?\\s", "[A-Za-z0-9+/]{40,}={0,2}",
                                                  "(?i)invoke-[a-z]+", "\\\\\\\\[0-9.]+\\\\[a-z]+\\$"])
            elif mod < 0.82:
                sel["CommandLine|base64offset|contains"] = r.choice(["IEX", "http://", "Invoke-"])
            elif mod < 0.88:
                sel["CommandLine|startswith"] = r.choice(WORDS)
            if r.random() < 0.2:
                sel["IntegrityLevel"] = r.choice(INTEGRITY)
            if r.random() < 0.1:
                sel["User|contains"] = r.choice(["AUTHORI", "AUTORI", "admin"])
            det[f"selection_{s}" if n_sel > 1 else "selection"] = sel
        pos = "1 of selection_*" if n_sel > 1 else "selection"
        n_filter = r.choice([0, 0, 1, 2])
        for f in range(n_filter):
            fil = r.choice([
                {"ParentImage|startswith": r.choice(DIRS)},
                {"Image|startswith": ["C:\\Program Files\\", "C:\\Program Files (x86)\\"]},
                {"CommandLine|contains": r.choice(WORDS)},
                {"User|contains": ["AUTHORI", "AUTORI"]},
                {"ParentImage": None},
            ])
            det[f"filter_main_{f}"] = fil
        condition = pos + (" and not 1 of filter_main_*" if n_filter else "")
    det["condition"] = condition
    return {
        "title": f"Synthetic rule {i}",
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "status": "test",
        "description": "Synthetic benchmark rule",
        "author": "bench",
        "date": "2024-01-01",
        "tags": ["attack.execution", "attack.t1059"],
        "logsource": {"category": "process_creation", "product": "windows"},
        "detection": det,
        "falsepositives": ["Unknown"],
        "level": r.choice(["low", "medium", "high"]),
    }


def make_event(r: random.Random) -> dict[str, Any]:
    image = r.choice(DIRS) + r.choice(EXES)
    cmd = " ".join([image, *_pick(r, WORDS, (0, 6))])
    event: dict[str, Any] = {
        "EventID": r.choice([1, 1, 1, 3, 4624, 4625]),
        "Image": image,
        "OriginalFileName": image.rsplit("\\", 1)[1].upper(),
        "CommandLine": cmd,
        "ParentImage": r.choice(DIRS) + r.choice(EXES),
        "ParentCommandLine": r.choice(EXES),
        "User": r.choice(USERS),
        "IntegrityLevel": r.choice(INTEGRITY),
        "CurrentDirectory": r.choice(DIRS),
        "Hashes": "SHA256=" + "".join(r.choice("0123456789ABCDEF") for _ in range(64)),
        "ProcessId": r.randint(100, 60000),
        "Computer": f"host{r.randint(1, 50)}.corp.local",
    }
    if r.random() < 0.3:
        event["DestinationIp"] = r.choice(IPS)
        event["DestinationPort"] = r.choice([80, 443, 445, 3389, 8080])
    return event


def write_corpus(directory: Path, n_rules: int, seed: int = 7) -> list[Path]:
    r = random.Random(seed)
    paths = []
    for i in range(n_rules):
        p = directory / f"rule_{i:05d}.yml"
        p.write_text(yaml.safe_dump(make_rule(r, i), sort_keys=False))
        paths.append(p)
    return paths


def make_events(n: int, seed: int = 11) -> list[dict[str, Any]]:
    r = random.Random(seed)
    return [make_event(r) for _ in range(n)]


def events_for_logsources(logsources: list, n: int, seed: int = 11) -> list[dict[str, Any]]:
    """Events for bench/corpus.py's rules: each draws one log source and fills its fields from the
    same value pools the rules use, decorated so that prefixes, suffixes and substrings matter."""
    import ipaddress
    r = random.Random(seed)
    out = []
    for _ in range(n):
        _, _, fields = r.choice(logsources)
        event: dict[str, Any] = {}
        for key, pool in fields.items():
            name, _, mods = key.partition("|")
            if r.random() < 0.15:
                continue  # absent field
            v = r.choice(pool)
            if "cidr" in mods:
                net = ipaddress.ip_network(v)
                host = net.network_address + r.randrange(min(net.num_addresses, 1 << 16))
                event[name] = str(host) if r.random() < 0.6 else r.choice(IPS)
            elif isinstance(v, str):
                event[name] = r.choice(["", "C:\\Windows\\", "x "]) + v + r.choice(["", " -a", ".bak"])
            else:
                event[name] = v
        out.append(event)
    return out
