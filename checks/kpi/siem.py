"""Alerts straight from a SIEM: the Sekoia.io alerts API and Elasticsearch security alerts.

Each reader is an async iterator of normalised alerts over a creation-time range, following the platform's paging
(Sekoia: limit/offset against `total`; Elasticsearch: search_after on a stable sort). Alerts of rules that map to
no Sigma id are counted and left out.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp

from .normalise import SEKOIA_LEGACY, get_path, stage_of, timestamp, verdict_of, word
from .settings import RuleMap
from .store import Alert

ELASTIC_STATUS = {"open": "open", "acknowledged": "in_progress", "in_progress": "in_progress", "closed": "closed"}
RETRY_STATUSES = {429, 502, 503, 504}


class SiemError(Exception):
    """The SIEM refused or answered something that is not its documented shape."""


@dataclass
class SyncStats:
    fetched: int = 0
    unmapped: int = 0     # alerts of platform rules with no Sigma id
    malformed: int = 0    # alerts whose status or dates could not be read
    pages: int = 0


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


async def _request(session: aiohttp.ClientSession, method: str, url: str, *, attempts: int = 4,
                   **kwargs: Any) -> Any:
    """JSON from one API call; rate limits and gateway errors are retried, honouring Retry-After."""
    for attempt in range(attempts):
        async with session.request(method, url, **kwargs) as resp:
            if resp.status in RETRY_STATUSES and attempt < attempts - 1:
                try:
                    delay = float(resp.headers.get("Retry-After", ""))
                except ValueError:
                    delay = 0.5 * 2 ** attempt
                await asyncio.sleep(min(delay, 30.0))
                continue
            if resp.status >= 400:
                text = (await resp.text())[:300]
                raise SiemError(f"{method} {resp.url.with_query(None)}: HTTP {resp.status}: {text}")
            try:
                return await resp.json(content_type=None)
            except ValueError:
                raise SiemError(f"{method} {resp.url.with_query(None)}: the answer is not JSON") from None
    raise SiemError(f"{method} {url}: still failing after {attempts} attempts")  # pragma: no cover


# -- Sekoia.io ------------------------------------------------------------------------------------------------------

def sekoia_status(item: dict) -> tuple[str, str | None]:
    """Custom statuses carry a stage and verdicts a category; older alerts only a legacy status name."""
    status = item.get("status") if isinstance(item.get("status"), dict) else {}
    verdict = item.get("verdict") if isinstance(item.get("verdict"), dict) else None
    stage_raw = status.get("stage") or item.get("stage")
    if stage_raw:
        stage = stage_of(stage_raw)
        category = verdict and (verdict.get("category") or verdict.get("name"))
        return stage, verdict_of(category) if category else None
    name = status.get("name") or (item.get("status") if isinstance(item.get("status"), str) else None)
    if name and word(name) in SEKOIA_LEGACY:
        return SEKOIA_LEGACY[word(name)]
    raise ValueError(f"unknown Sekoia status {name!r}")


def sekoia_alert(item: dict, rule_map: RuleMap, source: str = "sekoia") -> Alert | None:
    rule = item.get("rule") if isinstance(item.get("rule"), dict) else {}
    platform = str(rule.get("uuid") or "")
    sigma_id = rule_map.sigma_id(platform, item)
    if not sigma_id:
        return None
    stage, verdict = sekoia_status(item)
    closed = timestamp(item["updated_at"]) if stage == "closed" and item.get("updated_at") else None
    return Alert(source, str(item.get("uuid") or item["short_id"]), sigma_id, timestamp(item["created_at"]),
                 stage, verdict, platform, str(rule.get("name") or item.get("title") or ""), closed)


async def sekoia_alerts(session: aiohttp.ClientSession, base_url: str, api_key: str, start: datetime,
                        end: datetime, rule_map: RuleMap, stats: SyncStats, rule_uuids: list[str] | None = None,
                        page_size: int = 100) -> AsyncIterator[Alert]:
    url = base_url.rstrip("/") + "/api/v1/sic/alerts"
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    for rule_uuid in rule_uuids or [None]:
        offset = 0
        while True:
            params = {"limit": str(page_size), "offset": str(offset), "sort": "created_at", "direction": "asc",
                      "date[created_at]": f"{_iso(start)},{_iso(end)}"}
            if rule_uuid:
                params["match[rule_uuid]"] = rule_uuid
            page = await _request(session, "GET", url, headers=headers, params=params)
            items = page.get("items") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise SiemError(f"GET {url}: no `items` list in the answer")
            stats.pages += 1
            for item in items:
                stats.fetched += 1
                try:
                    a = sekoia_alert(item, rule_map) if isinstance(item, dict) else None
                except (KeyError, ValueError, TypeError):
                    stats.malformed += 1
                    continue
                if a is None:
                    stats.unmapped += 1
                    continue
                yield a
            offset += len(items)
            total = page.get("total")
            # `total` decides when it is known: the API may cap `limit` below what was asked.
            if not items or (offset >= total if isinstance(total, int) else len(items) < page_size):
                break


# -- Elasticsearch security alerts ----------------------------------------------------------------------------------

def elastic_alert(hit: dict, rule_map: RuleMap, source: str = "elastic") -> Alert | None:
    src = hit.get("_source") or {}
    platform = str(get_path(src, "kibana.alert.rule.rule_id") or "")
    sigma_id = rule_map.sigma_id(platform, src)
    if not sigma_id:
        return None
    status = word(get_path(src, "kibana.alert.workflow_status") or "open")
    if status not in ELASTIC_STATUS:
        raise ValueError(f"unknown workflow status {status!r}")
    stage = ELASTIC_STATUS[status]
    reason = get_path(src, "kibana.alert.workflow_reason")
    verdict = verdict_of(reason) if stage == "closed" and reason else None
    updated = get_path(src, "kibana.alert.workflow_status_updated_at")
    closed = timestamp(updated) if stage == "closed" and updated else None
    alert_id = str(get_path(src, "kibana.alert.uuid") or hit["_id"])
    return Alert(source, alert_id, sigma_id, timestamp(src["@timestamp"]), stage, verdict, platform,
                 str(get_path(src, "kibana.alert.rule.name") or ""), closed)


async def elastic_alerts(session: aiohttp.ClientSession, base_url: str, api_key: str | None, index: str,
                         start: datetime, end: datetime, rule_map: RuleMap, stats: SyncStats,
                         rule_ids: list[str] | None = None, page_size: int = 1000) -> AsyncIterator[Alert]:
    url = f"{base_url.rstrip('/')}/{index}/_search"
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"ApiKey {api_key}"
    filters: list[dict] = [{"range": {"@timestamp": {"gte": _iso(start), "lt": _iso(end)}}}]
    if rule_ids:
        filters.append({"terms": {"kibana.alert.rule.rule_id": rule_ids}})
    body: dict[str, Any] = {
        "size": page_size, "query": {"bool": {"filter": filters}},
        "sort": [{"@timestamp": "asc"}, {"kibana.alert.uuid": "asc"}],
        "_source": ["@timestamp", "kibana.alert.uuid", "kibana.alert.rule.rule_id", "kibana.alert.rule.name",
                    "kibana.alert.workflow_status", "kibana.alert.workflow_reason",
                    "kibana.alert.workflow_status_updated_at", *([rule_map.field] if rule_map.field else [])],
    }
    while True:
        page = await _request(session, "POST", url, headers=headers, json=body)
        hits = get_path(page, "hits.hits") if isinstance(page, dict) else None
        if not isinstance(hits, list):
            raise SiemError(f"POST {url}: no hits.hits list in the answer")
        stats.pages += 1
        for hit in hits:
            stats.fetched += 1
            try:
                a = elastic_alert(hit, rule_map) if isinstance(hit, dict) else None
            except (KeyError, ValueError, TypeError):
                stats.malformed += 1
                continue
            if a is None:
                stats.unmapped += 1
                continue
            yield a
        if len(hits) < page_size or not isinstance(hits[-1], dict) or not hits[-1].get("sort"):
            break
        body["search_after"] = hits[-1]["sort"]
