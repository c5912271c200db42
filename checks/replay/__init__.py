"""Replay: re-parse test events' raw logs with the current parsers and re-run the rules (see docs/ingest-subset.md).

The API the bot and the CLI use:

    report = await run_replay(source, config, rule_ids=None, cache=ReplayCache(path), changed=None)
    report.results -> [ReplayResult(rule_id, rule_path, test_name, test_path, test_line, verdict, detail,
                                    field_diff, ...)]; report.counts; report.broken
    replay_findings(report) -> [Finding(check="replay", ...)]   # annotations on the tests' lines
    render_markdown(report) / render_issue(report) / render_text(report) / render_json(report)
    parser_files(paths, parse_settings(config))                 # what to fetch besides rules and tests
"""
from .backends import ElasticsearchBackend, EmbeddedBackend, HttpBackend, ParseResult, ParserBackend
from .cache import ReplayCache, default_cache_path
from .replay import BROKEN, VERDICTS, FieldChange, ReplayReport, ReplayResult, run_replay, run_replay_sync
from .report import render_issue, render_json, render_markdown, render_text, replay_findings, summary_line
from .settings import ReplaySettings, parse_settings, parser_files

__all__ = ["ElasticsearchBackend", "EmbeddedBackend", "HttpBackend", "ParseResult", "ParserBackend", "ReplayCache",
           "default_cache_path", "BROKEN", "VERDICTS", "FieldChange", "ReplayReport", "ReplayResult", "run_replay",
           "run_replay_sync", "render_issue", "render_json", "render_markdown", "render_text", "replay_findings",
           "summary_line", "ReplaySettings", "parse_settings", "parser_files"]
