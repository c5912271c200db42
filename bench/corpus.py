"""Generate a realistic Sigma rules corpus, with broken rules of every kind, for benchmarks and robustness tests.

    python -m bench.corpus [--rules 3000] [--seed 7] [--out bench/corpus]

Writes `rules/**/<name>.yml` (Windows, Linux, cloud, network log sources; selections, filters, lists,
modifiers, conditions in SigmaHQ's style) and `manifest.json` naming each broken file and what is wrong
with it. About one rule in twenty is broken, cycling through BROKEN_KINDS so that every kind appears.
Deterministic for a seed. The output directory is git-ignored.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

import yaml

# (product, category, service, file prefix, fields with example values)
LOGSOURCES: list[tuple[dict[str, str], str, dict[str, list[Any]]]] = [
    ({"category": "process_creation", "product": "windows"}, "proc_creation_win_", {
        "Image": ["\\rundll32.exe", "\\regsvr32.exe", "\\mshta.exe", "\\certutil.exe", "\\powershell.exe",
                  "\\wscript.exe", "\\cmd.exe", "\\bitsadmin.exe", "\\schtasks.exe", "\\wmic.exe"],
        "CommandLine": [" -enc ", "urlcache", "/transfer", "javascript:", "DllRegisterServer", "\\AppData\\",
                        "Invoke-Expression", "FromBase64String", " /create ", "shadowcopy delete"],
        "ParentImage": ["\\winword.exe", "\\excel.exe", "\\outlook.exe", "\\explorer.exe", "\\services.exe"],
        "OriginalFileName": ["RUNDLL32.EXE", "REGSVR32.EXE", "MSHTA.EXE", "CertUtil.exe", "PowerShell.EXE"],
        "User|contains": ["AUTHORI", "AUTORI"],
        "IntegrityLevel": ["High", "System"],
    }),
    ({"category": "network_connection", "product": "windows"}, "net_connection_win_", {
        "DestinationIp|cidr": ["10.0.0.0/8", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"],
        "DestinationPort": [4444, 8080, 1337, 53, 443],
        "Image": ["\\rundll32.exe", "\\powershell.exe", "\\regsvr32.exe"],
        "Initiated": ["true"],
        "DestinationHostname": [".ngrok.io", ".trycloudflare.com", "pastebin.com"],
    }),
    ({"category": "registry_set", "product": "windows"}, "registry_set_", {
        "TargetObject": ["\\CurrentVersion\\Run\\", "\\Image File Execution Options\\", "\\Services\\",
                         "\\Windows Defender\\Exclusions\\"],
        "Details": ["DWORD (0x00000001)", "DWORD (0x00000000)", "C:\\Users\\Public\\"],
        "Image": ["\\reg.exe", "\\powershell.exe", "\\regedit.exe"],
    }),
    ({"category": "process_creation", "product": "linux"}, "proc_creation_lnx_", {
        "Image": ["/bin/bash", "/usr/bin/curl", "/usr/bin/wget", "/usr/bin/base64", "/usr/bin/crontab"],
        "CommandLine": ["| bash", "/dev/tcp/", "chmod +x", "-d ", "nohup "],
        "ParentImage": ["/usr/sbin/sshd", "/usr/bin/python3", "/usr/sbin/apache2"],
    }),
    ({"product": "azure", "service": "signinlogs"}, "azure_signin_", {
        "ResultType": [0, 50126, 50074, 53003],
        "AppDisplayName": ["OfficeHome", "Azure Portal", "Microsoft Teams"],
        "UserAgent|contains": ["axios/", "python-requests", "Go-http-client"],
        "IPAddress|cidr": ["203.0.113.0/24", "2001:db8::/32"],
        "AuthenticationRequirement": ["singleFactorAuthentication"],
    }),
    ({"product": "m365", "service": "audit"}, "m365_", {
        "Operation": ["UserLoggedIn", "New-InboxRule", "Set-Mailbox", "Add-MailboxPermission"],
        "ClientIP|cidr": ["198.51.100.0/24", "203.0.113.0/25"],
        "Workload": ["Exchange", "AzureActiveDirectory", "SharePoint"],
        "ResultStatus": ["Success", "Failed"],
    }),
    ({"product": "zeek", "service": "dns"}, "zeek_dns_", {
        "query|endswith": [".zip", ".top", ".xyz", ".onion", ".duckdns.org"],
        "qtype_name": ["TXT", "A", "NULL"],
        "query|re": ["^[a-z0-9]{40,}\\.", "^[A-Za-z0-9+/=]{30,}\\."],
        "rcode_name": ["NXDOMAIN", "NOERROR"],
    }),
    ({"category": "proxy"}, "proxy_", {
        "c-uri|contains": ["/wp-admin/", "/.git/", "/cgi-bin/", "/api/v1/"],
        "c-useragent|startswith": ["curl/", "python-requests/", "Wget/"],
        "cs-method": ["POST", "PUT"],
        "cs-host|endswith": [".ngrok.io", ".ru", ".top"],
    }),
]
TECHNIQUES = [("execution", "t1059.001"), ("defense-evasion", "t1218.011"), ("command-and-control", "t1105"),
              ("credential-access", "t1003.001"), ("persistence", "t1547.001"), ("initial-access", "t1566.001"),
              ("command-and-control", "t1071.004"), ("discovery", "t1087.002"), ("impact", "t1490"),
              ("lateral-movement", "t1021.002")]
WORDS = ["Suspicious", "Remote", "Encoded", "Hidden", "Unusual", "Renamed", "Scripted", "Abnormal", "Potential"]
OBJECTS = ["Download", "Execution", "Persistence", "Sign-In", "Connection", "Query", "Registry Change",
           "Process Launch", "Credential Access", "Archive Creation"]


def _value(rng: random.Random, values: list[Any]) -> Any:
    if len(values) > 1 and rng.random() < 0.4:
        return rng.sample(values, rng.randint(2, min(4, len(values))))
    return rng.choice(values)


def _selection(rng: random.Random, fields: dict[str, list[Any]], n: int) -> dict[str, Any]:
    sel = {}
    for name in rng.sample(sorted(fields), min(n, len(fields))):
        key = name
        if "|" not in name and isinstance(fields[name][0], str) and rng.random() < 0.5:
            key = name + rng.choice(["|contains", "|endswith", "|startswith"])
        sel[key] = _value(rng, fields[name])
    return sel


def make_rule(rng: random.Random, i: int) -> tuple[str, dict[str, Any]]:
    logsource, prefix, fields = rng.choice(LOGSOURCES)
    tactic, technique = rng.choice(TECHNIQUES)
    title = f"{rng.choice(WORDS)} {rng.choice(OBJECTS)} {i}"
    detection: dict[str, Any] = {}
    n_sel = rng.choice([1, 1, 2, 2, 3])
    for s in range(n_sel):
        name = "selection" if n_sel == 1 else f"selection_{['img', 'cli', 'parent'][s]}"
        detection[name] = _selection(rng, fields, rng.randint(1, 3))
    n_filter = rng.choice([0, 0, 1, 2])
    for f in range(n_filter):
        detection[f"filter_main_{f}" if f == 0 else f"filter_optional_{f}"] = _selection(rng, fields, 1)
    sels = [k for k in detection if k.startswith("selection")]
    cond = sels[0] if len(sels) == 1 else rng.choice(["all of selection_*", "1 of selection_*",
                                                      " and ".join(sels)])
    if n_filter:
        cond += rng.choice([" and not 1 of filter_*", " and not " + " and not ".join(
            k for k in detection if k.startswith("filter"))])
    detection["condition"] = cond
    rule = {
        "title": title,
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "status": rng.choice(["test", "experimental", "stable"]),
        "description": f"Detects {title.lower()} as seen in intrusions; generated for benchmarking detbot.",
        "references": [f"https://example.com/research/{i}"],
        "author": "detbot corpus",
        "date": f"2025-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}",
        "tags": [f"attack.{tactic}", f"attack.{technique}"],
        "logsource": dict(logsource),
        "detection": detection,
        "falsepositives": [rng.choice(["Administrative activity", "Legitimate software updates", "Unknown"])],
        "level": rng.choice(["low", "medium", "high", "critical"]),
    }
    return f"{prefix}{title.lower().replace(' ', '_').replace('-', '_')}", rule


def _dump(rule: dict[str, Any]) -> str:
    return yaml.safe_dump(rule, sort_keys=False, allow_unicode=True, width=120)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], str]:
    def apply(rule: dict[str, Any]) -> str:
        rule[key] = value
        return _dump(rule)
    return apply


def _detection(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], str]:
    def apply(rule: dict[str, Any]) -> str:
        change(rule["detection"])
        return _dump(rule)
    return apply


def _first_key(det: dict[str, Any]) -> tuple[str, str]:
    sel = next(k for k in det if k != "condition")
    return sel, next(iter(det[sel]))


def _rename_modifier(det: dict[str, Any]) -> None:
    sel, key = _first_key(det)
    det[sel][key.split("|")[0] + "|contians"] = det[sel].pop(key)


def _bad_value(modifier: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(det: dict[str, Any]) -> None:
        sel, key = _first_key(det)
        det[sel][key.split("|")[0] + modifier] = value
    return change


# kind -> how to break a good rule (returns the file's bytes)
BROKEN_KINDS: dict[str, Callable[[dict[str, Any]], bytes | str]] = {
    "invalid_yaml": lambda r: _dump(r).replace("detection:", "detection: [", 1),
    "alias_bomb": lambda r: "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh")),
    "binary": lambda r: b"\x00\x01\x02\x03" + bytes(range(256)) * 8,
    "non_utf8": lambda r: _dump(r).encode("utf-8").replace(b"author:", b"author: \xff\xfe"),
    "non_mapping": lambda r: yaml.safe_dump([r], sort_keys=False),
    "empty": lambda r: "",
    "deep_nesting": lambda r: "detection: " + "[" * 30_000 + "]" * 30_000 + "\n",
    "oversized": lambda r: _dump(r) + ("# padding\n" * 600_000),
    "undefined_selection": _detection(lambda d: d.__setitem__("condition", d["condition"] + " and not flt_missing")),
    "condition_syntax": _detection(lambda d: d.__setitem__("condition", "(" + d["condition"])),
    "unknown_modifier": _detection(_rename_modifier),
    "bad_regex": _detection(_bad_value("|re", "(unclosed[")),
    "bad_cidr": _detection(_bad_value("|cidr", "10.0.0.300/8")),
    "bad_date": _set("date", "2025-02-30"),
    "bad_id": _set("id", "not-a-uuid"),
    "bad_level": _set("level", "severe"),
    "bad_status": _set("status", "production"),
    "bad_tag": lambda r: _dump(r).replace("- attack.", "- attack:", 1),
    "no_logsource": lambda r: _dump({k: v for k, v in r.items() if k != "logsource"}),
    "no_condition": _detection(lambda d: d.pop("condition")),
    "detection_not_mapping": _set("detection", ["selection", "condition"]),
    "title_not_string": _set("title", ["a", "list"]),
    "duplicate_key": lambda r: _dump(r).replace("\nlevel:", "\nlevel: low\nlevel:", 1),
    "tab_indent": lambda r: _dump(r).replace("\n  ", "\n\t", 1),
    "python_tag": lambda r: _dump(r).replace("title: ", "title: !!python/object/apply:os.system ", 1),
}
# Broken across files: the rule is valid alone; the finding comes from another file's content.
DUPLICATE_ID = "duplicate_id"


def generate(out: Path, rules: int = 3000, seed: int = 7) -> dict[str, str]:
    """Write the corpus; return {path: broken kind} for the broken files (also written to manifest.json)."""
    rng = random.Random(seed)
    if out.exists():
        shutil.rmtree(out)
    manifest: dict[str, str] = {}
    kinds = sorted(BROKEN_KINDS) + [DUPLICATE_ID]
    broken_every = 20
    last_good_id = None
    for i in range(rules):
        name, rule = make_rule(rng, i)
        folder = out / "rules" / rule["logsource"].get("product", "generic") / name.split("_")[0]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.yml"
        rel = path.relative_to(out).as_posix()
        content: bytes | str
        if i % broken_every == broken_every - 1:
            kind = kinds[(i // broken_every) % len(kinds)]
            if kind == DUPLICATE_ID and last_good_id:
                rule["id"] = last_good_id
                content = _dump(rule)
            else:
                content = BROKEN_KINDS[kind](rule)
            manifest[rel] = kind
        else:
            content = _dump(rule)
            last_good_id = rule["id"]
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "corpus")
    args = ap.parse_args()
    manifest = generate(args.out, args.rules, args.seed)
    print(f"{args.rules} rules written to {args.out} ({len(manifest)} broken, "
          f"{len(set(manifest.values()))} kinds)")


if __name__ == "__main__":
    main()
