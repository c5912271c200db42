"""The daily rollup maintained on upsert always equals a count over the alerts as they finally stand."""
from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.kpi.store import STAGES, VERDICTS, Alert, open_store
from tests.kpi_fixtures import pg_session, store_url  # noqa: F401

BASE = datetime(2026, 3, 1, tzinfo=timezone.utc)
RULES = ["r1", "r2", "r3"]
alert_st = st.builds(
    lambda i, rule, day, hour, stage, verdict: Alert("s", f"a{i}", rule, BASE + timedelta(days=day, hours=hour),
                                                     stage, verdict),
    st.integers(0, 15), st.sampled_from(RULES), st.integers(0, 5), st.integers(0, 23),
    st.sampled_from(STAGES), st.one_of(st.none(), st.sampled_from(VERDICTS)))


def expected(final: dict[str, Alert]) -> dict[tuple[str, date, str], int]:
    return Counter((a.rule_id, a.created_at.date(), a.bucket) for a in final.values())


async def actual(store) -> dict[tuple[str, date, str], int]:
    out: Counter = Counter()
    for rule, days in (await store.daily(RULES, BASE.date(), BASE.date() + timedelta(days=6))).items():
        for d, c in days.items():
            for bucket in ("open", "closed", "rejected", "benign"):
                if getattr(c, bucket):
                    out[(rule, d, bucket)] = getattr(c, bucket)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(alert_st, max_size=12), min_size=1, max_size=6))
async def test_rollup_matches_final_state_sqlite(tmp_path_factory, batches):
    path = tmp_path_factory.mktemp("rollup") / "a.db"
    async with await open_store(f"sqlite:///{path}") as store:
        final: dict[str, Alert] = {}
        for batch in batches:
            await store.upsert_many(batch)
            final.update({a.alert_id: a for a in batch})
        assert await actual(store) == expected(final)
        assert await store.count() == len(final)


async def test_rollup_matches_final_state_both_stores(store_url):
    rnd = random.Random(42)
    final: dict[str, Alert] = {}
    async with await open_store(store_url) as store:
        for _ in range(25):
            batch = [Alert("s", f"a{rnd.randrange(60)}", rnd.choice(RULES),
                           BASE + timedelta(days=rnd.randrange(6), hours=rnd.randrange(24)),
                           rnd.choice(STAGES), rnd.choice([None, *VERDICTS])) for _ in range(rnd.randrange(1, 30))]
            await store.upsert_many(batch)
            final.update({a.alert_id: a for a in batch})
        assert await actual(store) == expected(final)
