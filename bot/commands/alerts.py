"""`detbot alerts import FILE` and `detbot alerts sync --source sekoia|elastic`: getting alerts into the store."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from checks.config import CONFIG_PATH, ConfigError, parse_config
from checks.kpi.importer import FORMATS, ImportFailed, RowError, import_file
from checks.kpi.settings import AlertSettings, alert_settings
from checks.kpi.store import StoreError, open_store

STORE_ENV = "DETBOT_ALERT_STORE"
MAX_SHOWN_ERRORS = 50
PROGRESS_MIN_BYTES = 4 << 20  # smaller files are read before a progress line would help


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, metavar="URL",
                   help=f"alert store: sqlite:///path.db or postgresql://... (default: ${STORE_ENV}, "
                        "alerts.store in the config, or sqlite:///.detbot/alerts.db)")
    p.add_argument("--config", default=None, help=f"config file (default: {CONFIG_PATH} if present)")


def load_settings(args: argparse.Namespace) -> AlertSettings:
    path = args.config or (CONFIG_PATH if Path(CONFIG_PATH).is_file() else None)
    settings = alert_settings(parse_config(Path(path).read_bytes(), path) if path else None)
    settings.store = args.store or os.environ.get(STORE_ENV) or settings.store
    return settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="import or sync production alerts into the alert store")
    cmds = p.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    imp = cmds.add_parser("import", help="import a CSV or JSON Lines export (re-importing updates, never duplicates)")
    imp.add_argument("file")
    imp.add_argument("--format", choices=FORMATS, default=None, help="default: from the file extension")
    imp.add_argument("--source", default=None,
                     help="source name stored with each alert (default: alerts.import.source)")
    add_common(imp)
    imp.set_defaults(func=main_import)
    syn = cmds.add_parser("sync", help="fetch alerts from a SIEM")
    syn.add_argument("--source", choices=("sekoia", "elastic"), required=True)
    syn.add_argument("--days", type=int, default=None, help="how far back (default: alerts.days, 30)")
    syn.add_argument("--url", default=None, help="API base URL (default: alerts.<source>.url)")
    syn.add_argument("--rule", action="append", default=None, metavar="ID",
                     help="only this platform rule id (repeatable; default: alerts.<source>.rules, else all)")
    add_common(syn)
    syn.set_defaults(func=main_sync)


class ByteProgress:
    """One self-overwriting line on stderr while a large file is read, only on a terminal."""

    def __init__(self, label: str) -> None:
        self.label, self.min_bytes = label, PROGRESS_MIN_BYTES
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < self.min_bytes:
            return
        percent = 100 * done // max(total, 1)
        sys.stderr.write(f"\r{self.label}: {percent:3d}% ({done / 1e6:,.0f} of {total / 1e6:,.0f} MB)")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")


def _error_printer(path: str, progress: ByteProgress):
    shown = 0

    def on_error(e: RowError) -> None:
        nonlocal shown
        shown += 1
        if shown <= MAX_SHOWN_ERRORS:
            if progress.shown:
                sys.stderr.write("\r\033[K")
            print(f"{path}:{e.line}: skipped: {e.message}", file=sys.stderr)
        elif shown == MAX_SHOWN_ERRORS + 1:
            print(f"{path}: further malformed rows are counted, not shown", file=sys.stderr)
    return on_error


async def _import(args: argparse.Namespace, settings: AlertSettings) -> int:
    if args.source:
        settings.imports.source = args.source
    progress = ByteProgress(f"importing {args.file}")
    async with await open_store(settings.store) as store:
        try:
            report = await import_file(store, args.file, settings.imports, settings.rule_map, args.format,
                                       on_error=_error_printer(args.file, progress), progress=progress)
        finally:
            progress.close()
    print(report.summary())
    return 1 if report.errors and not report.imported else 0


async def _sync(args: argparse.Namespace, settings: AlertSettings) -> int:
    import aiohttp

    from checks.kpi.siem import SiemError, SyncStats, elastic_alerts, sekoia_alerts
    siem = getattr(settings, args.source)
    url = args.url or siem.url
    if not url:
        print(f"detbot: no URL for {args.source} (--url or alerts.{args.source}.url)", file=sys.stderr)
        return 2
    api_key = os.environ.get(siem.api_key_env, "")
    if args.source == "sekoia" and not api_key:
        print(f"detbot: set {siem.api_key_env} to a Sekoia.io API key", file=sys.stderr)
        return 2
    end = datetime.now(timezone.utc)
    days = settings.days if args.days is None else args.days
    if days < 1:
        print("detbot: --days must be at least 1", file=sys.stderr)
        return 2
    start = end - timedelta(days=days)
    rules = args.rule or siem.rules or None
    stats = SyncStats()
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=120)
    async with await open_store(settings.store) as store, aiohttp.ClientSession(timeout=timeout) as session:
        if args.source == "sekoia":
            alerts = sekoia_alerts(session, url, api_key, start, end, settings.rule_map, stats, rules,
                                   siem.page_size or 100)
        else:
            alerts = elastic_alerts(session, url, api_key or None, siem.index, start, end, settings.rule_map,
                                    stats, rules, siem.page_size or 1000)
        try:
            result = await store.upsert_stream(alerts, batch_size=5000)
        except (SiemError, aiohttp.ClientError, asyncio.TimeoutError) as e:
            print(f"detbot: {args.source}: {e or type(e).__name__}", file=sys.stderr)
            return 1
    print(f"{args.source}: {stats.fetched:,} alerts fetched in {stats.pages} pages, "
          f"{result.inserted + result.updated:,} stored ({result.inserted:,} new, {result.updated:,} updated), "
          f"{stats.unmapped:,} of unmapped rules, {stats.malformed:,} unreadable")
    return 0


def _run(coro_fn, args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args)
        return asyncio.run(coro_fn(args, settings))
    except ConfigError as e:
        print(f"detbot: config error: {e}", file=sys.stderr)
    except (StoreError, ImportFailed) as e:
        print(f"detbot: {e}", file=sys.stderr)
    except OSError as e:
        print(f"detbot: {e}", file=sys.stderr)
    return 2


def main_import(args: argparse.Namespace) -> int:
    return _run(_import, args)


def main_sync(args: argparse.Namespace) -> int:
    return _run(_sync, args)
