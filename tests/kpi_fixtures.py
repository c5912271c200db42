"""Store fixtures shared by the KPI tests: the same suite runs against real SQLite and real PostgreSQL."""
from __future__ import annotations

import asyncio
import itertools
import secrets
import socket

import pytest

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SESSION_PREFIX = f"detbot_kpi_{secrets.token_hex(4)}"
_counter = itertools.count()


def pg_reachable() -> str | None:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError as e:
        return f"PostgreSQL on 127.0.0.1:5432 is unreachable ({e})"
    return None


async def _drop_schemas(prefix: str, exact: bool = False) -> None:
    import asyncpg
    conn = await asyncpg.connect(PG_DSN)
    try:
        names = [prefix] if exact else [r[0] for r in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", prefix + "_")]
        for name in names:
            await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_session():
    reason = pg_reachable()
    if reason:
        pytest.skip(reason)
    yield SESSION_PREFIX
    asyncio.run(_drop_schemas(SESSION_PREFIX))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A URL to a fresh, empty store of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/alerts.db"
        return
    prefix = request.getfixturevalue("pg_session")
    schema = f"{prefix}_{next(_counter)}"
    yield f"{PG_DSN}?schema={schema}"
    asyncio.run(_drop_schemas(schema, exact=True))
