"""Each AOF fixture's expected JSON is well formed and names files that exist; likewise the
JSON beside each damaged copy."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fixture_rows import assert_key_rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "aof"
EXPECTED = sorted(FIXTURES.glob("*.expected.json"))
DAMAGED = sorted((FIXTURES / "damaged").glob("*.json"))
TOP_LEVEL = {
    "schema",
    "server_version",
    "generated_by",
    "saved_at_ms",
    "config",
    "databases",
    "keys",
    "functions",
    "modules",
    "aof",
}
AOF_KEYS = {
    "layout",
    "preamble",
    "base",
    "files",
    "manifest",
    "rewrites",
    "expired_keys",
    "expired_fields",
    "deleted_unpropagated",
    "redis_check_aof",
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def fixture_id(path: Path) -> str:
    return path.name.removesuffix(".expected.json").removesuffix(".json")


@pytest.mark.parametrize("expected", EXPECTED, ids=fixture_id)
def test_expected_json_is_well_formed(expected: Path) -> None:
    doc = load(expected)
    assert set(doc) == TOP_LEVEL
    assert doc["schema"] == "rbkit.fixture/1"
    assert doc["generated_by"] == "fixtures/generate_aof.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+", doc["server_version"])
    assert isinstance(doc["saved_at_ms"], int) and doc["saved_at_ms"] > 1_600_000_000_000
    assert doc["config"]["appendonly"] == "yes"
    assert doc["config"]["appendfsync"] == "always"
    ndb = int(doc["config"]["databases"])
    assert_key_rows(doc, ndb)


@pytest.mark.parametrize("expected", EXPECTED, ids=fixture_id)
def test_aof_section(expected: Path) -> None:
    doc = load(expected)
    aof = doc["aof"]
    assert set(aof) == AOF_KEYS
    assert aof["preamble"] == (doc["config"]["aof-use-rdb-preamble"] == "yes")
    check = aof["redis_check_aof"]
    if fixture_id(expected) == "valkey-9.1-rdb-base":
        # A known upstream bug: valkey-check-aof 9.1.2 rejects the intact preamble AOF that its
        # own server wrote and loads back (the generator's reload proved it loads).
        assert check["exit_code"] != 0 and "known_bug" in check
    else:
        assert check["exit_code"] == 0 and "known_bug" not in check
    kinds = Counter(f["kind"] for f in aof["files"])
    if aof["layout"] == "single":
        assert aof["base"] is None and aof["manifest"] is None
        assert kinds == {"single": 1}
        assert aof["files"][0]["rdb_preamble"] == (aof["rewrites"][:1] == ["ok"])
    else:
        assert aof["layout"] == "multi-part"
        assert aof["base"] == ("rdb" if aof["preamble"] else "aof")
        # One manifest, and the files it lists: one base, as many incr files as its type-i lines.
        lines = [line.split() for line in aof["manifest"].splitlines()]
        types = Counter(fields[fields.index("type") + 1] for fields in lines)
        assert types["b"] == 1 and types["i"] >= 1 and set(types) == {"b", "i"}
        assert kinds == {"manifest": 1, "base": 1, "incr": types["i"]}
        listed = [line.split()[1] for line in aof["manifest"].splitlines()]
        assert listed == [Path(f["name"]).name for f in aof["files"] if f["kind"] != "manifest"]
    for db, names in aof["expired_keys"].items():
        shown = {row["key"] for row in doc["keys"].get(db, [])}
        assert not shown & set(names), "an expired key is still listed"


@pytest.mark.parametrize("expected", EXPECTED, ids=fixture_id)
def test_named_files_exist_and_match(expected: Path) -> None:
    for entry in load(expected)["aof"]["files"]:
        path = FIXTURES / entry["name"]
        assert path.is_file(), f"{entry['name']} is missing"
        data = path.read_bytes()
        assert len(data) == entry["bytes"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


@pytest.mark.parametrize("expected", EXPECTED, ids=fixture_id)
def test_database_counts_match_key_listing(expected: Path) -> None:
    doc = load(expected)
    for db, counts in doc["databases"].items():
        rows = doc["keys"][db]
        assert counts["keys"] == len(rows)
        assert counts["expires"] == sum(row["expire_ms"] is not None for row in rows)
        assert counts["by_type"] == dict(Counter(row["type"] for row in rows))
        assert sum(counts["by_type"].values()) == counts["keys"]


def test_every_aof_has_expectations() -> None:
    named = {fixture_id(p) for p in EXPECTED}
    singles = {p.name.removesuffix(".aof") for p in FIXTURES.glob("*.aof")}
    sets = {p.parent.name for p in FIXTURES.glob("*/appendonlydir")}
    assert singles | sets == named


@pytest.mark.parametrize("meta", DAMAGED, ids=fixture_id)
def test_damaged_json(meta: Path) -> None:
    doc = load(meta)
    assert isinstance(doc["damage"], str) and doc["damage"]
    assert (FIXTURES / doc["file"]).is_file(), f"{doc['file']} is missing"
    assert (FIXTURES / doc["from"]).is_file(), f"source {doc['from']} is missing"
    assert isinstance(doc["offset"], int) and doc["offset"] >= 0
    check = doc["redis_check_aof"]
    assert isinstance(check["exit_code"], int)
    assert isinstance(check["last_line"], str) and check["last_line"]
    assert doc["server_load"], "no server tried it"
    for flags in doc["server_load"].values():
        assert set(flags) == {"aof-load-truncated yes", "aof-load-truncated no"}
        for result in flags.values():
            assert result["result"] in {"loads", "refuses"}
            assert isinstance(result["log"], str)


def test_every_damaged_copy_has_json() -> None:
    damaged = FIXTURES / "damaged"
    copies = {p.stem for p in damaged.glob("*.aof")} | {
        p.name for p in damaged.iterdir() if p.is_dir()
    }
    assert copies == {p.stem for p in DAMAGED}
