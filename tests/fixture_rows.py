"""Checks shared by the RDB and AOF fixture-expectation tests."""

from __future__ import annotations

from typing import Any

BUILTIN_TYPES = {"string", "list", "set", "zset", "hash", "stream"}


def assert_key_rows(doc: dict[str, Any], ndb: int) -> None:
    """The ``keys`` rows of an expected-inventory document are well formed and agree with its
    ``databases``, ``modules`` and ``functions``."""
    assert set(doc["keys"]) == set(doc["databases"])
    types: set[str] = set()
    for db, rows in doc["keys"].items():
        assert 0 <= int(db) < ndb
        assert rows, f"db {db} is listed with no keys"
        shown = [row["key"] for row in rows]
        assert shown == sorted(shown) and len(set(shown)) == len(shown)
        for row in rows:
            assert {"key", "type", "elements", "expire_ms"} <= set(row)
            types.add(row["type"])
            if row["type"] in BUILTIN_TYPES:
                assert isinstance(row["elements"], int) and row["elements"] >= 0
            else:
                assert row["elements"] is None
            if row["type"] == "string":
                assert row["elements"] == 1
            assert row["expire_ms"] is None or isinstance(row["expire_ms"], int)
    assert doc["modules"] == sorted(types - BUILTIN_TYPES)
    assert doc["functions"] == sorted(doc["functions"])
