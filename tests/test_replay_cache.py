"""The SQLite parse-result cache: keys, persistence across connections, what is not cached, size bound."""
from __future__ import annotations

from checks.replay.backends import ParseResult
from checks.replay.cache import ReplayCache, raw_digest


def test_results_persist_and_keys_separate_backend_parser_and_version(tmp_path):
    path = tmp_path / "sub" / "c.sqlite"
    sha = raw_digest("log line")
    with ReplayCache(path) as cache:
        stored = cache.put_many("embedded", "p", "v1", [
            (sha, ParseResult("ok", {"a": {"b": [1, "x"]}}, ["w"], "v1")),
            (raw_digest("bad"), ParseResult("unparsed", None, [], "v1", "no match")),
            (raw_digest("err"), ParseResult("error", None, [], "v1", "backend down"))])
        assert stored == 2
    with ReplayCache(path) as cache:
        hits = cache.get_many("embedded", "p", "v1", [sha, raw_digest("bad"), raw_digest("err")])
        assert hits[sha].event == {"a": {"b": [1, "x"]}} and hits[sha].warnings == ["w"]
        assert hits[raw_digest("bad")].status == "unparsed" and hits[raw_digest("bad")].message == "no match"
        assert raw_digest("err") not in hits
        assert cache.get_many("embedded", "p", "v2", [sha]) == {}
        assert cache.get_many("embedded", "other", "v1", [sha]) == {}
        assert cache.get_many("http", "p", "v1", [sha]) == {}
        assert (cache.hits, cache.misses) == (2, 4)


def test_cache_is_bounded_oldest_first(tmp_path):
    with ReplayCache(tmp_path / "c.sqlite", max_rows=10) as cache:
        for i in range(25):
            cache.put_many("e", "p", "v", [(raw_digest(str(i)), ParseResult("ok", {"i": i}, [], "v"))])
        assert cache.count() == 10
        hits = cache.get_many("e", "p", "v", [raw_digest(str(i)) for i in range(25)])
        assert sorted(r.event["i"] for r in hits.values()) == list(range(15, 25))


def test_many_lookups_in_one_call(tmp_path):
    with ReplayCache(tmp_path / "c.sqlite") as cache:
        items = [(raw_digest(str(i)), ParseResult("ok", {"i": i}, [], "v")) for i in range(1200)]
        cache.put_many("e", "p", "v", items)
        hits = cache.get_many("e", "p", "v", [d for d, _ in items] + [raw_digest("absent")])
        assert len(hits) == 1200 and hits[raw_digest("7")].event == {"i": 7}



def test_a_cache_file_of_the_earlier_layout_is_replaced_not_misread(tmp_path):
    import sqlite3

    path = tmp_path / "c.sqlite"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE parse_results (backend TEXT NOT NULL, parser TEXT NOT NULL, version TEXT NOT NULL,
            raw_sha256 TEXT NOT NULL, status TEXT NOT NULL, event TEXT, warnings TEXT NOT NULL, message TEXT,
            stored_at REAL NOT NULL, PRIMARY KEY (backend, parser, version, raw_sha256)) WITHOUT ROWID;
        INSERT INTO parse_results VALUES ('embedded', 'p', 'v1', 'ab', 'ok', '{"stale": 1}', '[]', NULL, 0);""")
    old.commit()
    old.close()
    with ReplayCache(path) as cache:
        assert cache.count() == 0            # what the old layout held is dropped, never served
        assert cache.put_many("embedded", "p", "v1", [("ab", ParseResult("ok", {"fresh": 1}, [], "v1"))]) == 1
    with ReplayCache(path) as cache:         # reopening the new layout keeps what it holds
        assert cache.get_many("embedded", "p", "v1", ["ab"])["ab"].event == {"fresh": 1}
