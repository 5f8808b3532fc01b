"""An invalid RDB says how much is salvageable: the keys read before the damage, per db and type,
and the last good key with the offset of its record, in the table and in the JSON ``partial``.

The count is held to redis-check-rdb's own "N keys read" (which counts the key whose value it
was reading when it stopped); which keys, and the last good one, to the intact file's keys.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRun

from parsers.rdb.constants import TYPE_NAMES
from parsers.rdb.walker import RdbWalker
from toolkit.check.rdb import check_file, check_rdb
from toolkit.check.report import check_report

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rdb"
NAMES = ("redis-6.2-all-types", "redis-7.0-all-types")  # RDB 9 and 10: redis-check-rdb 7.0 reads
NOW_MS = 1_700_000_000_000
_KEYS_READ = re.compile(r"\[info\] (\d+) keys read")


def redis_check_rdb_keys(path: Path) -> int:
    """How many keys redis-check-rdb says it read before the error, the one it was reading
    a value of when it stopped left out."""
    binary = shutil.which("redis-check-rdb")
    assert binary, "redis-check-rdb is missing (make install puts it there)"
    out = subprocess.run([binary, str(path)], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert "RDB ERROR DETECTED" in text, text
    match = _KEYS_READ.search(text)
    assert match, text
    return int(match.group(1)) - ("While doing: read-object-value" in text)


def intact_keys(name: str) -> list[tuple[int, bytes, int, int, int]]:
    """(db, key, type id, record start, record end) of every key of the intact fixture."""
    data = (FIXTURES / f"{name}.rdb").read_bytes()
    walker = RdbWalker(data)
    return [
        (db, bytes(walker.key_at(k)), t, k - 1, end) for db, t, k, _v, end, _n, _e in walker.walk()
    ]


CUTS = [(name, i) for name in NAMES for i in range(8)]


@pytest.mark.parametrize(("name", "i"), CUTS, ids=[f"{n}-{i}" for n, i in CUTS])
def test_a_cut_file_counts_the_keys_before_the_cut(name: str, i: int, tmp_path: Path) -> None:
    keys = intact_keys(name)
    damaged_key = keys[(i * 7 + 3) % len(keys)]
    cut = (damaged_key[3] + damaged_key[4]) // 2  # inside that key's record
    path = tmp_path / "cut.rdb"
    path.write_bytes((FIXTURES / f"{name}.rdb").read_bytes()[:cut])
    result = check_file(path, now_ms=NOW_MS)
    assert not result.valid and result.partial is not None
    before = [k for k in keys if k[4] <= damaged_key[3]]
    assert result.partial.inventory.keys == len(before) == redis_check_rdb_keys(path)
    by_db: dict[int, dict[str, int]] = {}
    for db, _key, type_id, _start, _end in before:
        counts = by_db.setdefault(db, {})
        counts[TYPE_NAMES[type_id]] = counts.get(TYPE_NAMES[type_id], 0) + 1
    found = {db: s.by_type for db, s in result.partial.inventory.databases.items() if s.keys}
    assert found == by_db
    last = before[-1] if before else None
    assert result.partial.last_key == ((*last[:2], last[3]) if last else None)
    assert result.partial.damage_at is not None and damaged_key[3] <= result.partial.damage_at


def test_the_json_and_the_table_say_what_was_read(
    tmp_path: Path, run_cli: Callable[..., CliRun]
) -> None:
    keys = intact_keys("redis-7.0-all-types")
    damaged = keys[10]
    path = tmp_path / "cut.rdb"
    path.write_bytes((FIXTURES / "redis-7.0-all-types.rdb").read_bytes()[: damaged[3] + 2])
    code, out, _err = run_cli("check", path, "--json")
    assert code == 1
    report: dict[str, Any] = json.loads(out)
    partial = report["partial"]
    db, key, _type, start, _end = keys[9]
    assert partial["totals"]["keys"] == 10
    assert partial["last_good_key"] == {"db": db, "key": key.decode(), "offset": start}
    assert partial["damage_at"] == report["problems"][0]["offset"]
    assert report["databases"] == {} and report["totals"]["keys"] == 0
    code, out, _err = run_cli("check", path)
    assert f"read before the damage at offset {partial['damage_at']}: 10 keys" in out
    assert f"the last good key is '{key.decode()}' in db {db} at offset {start}" in out


def test_a_valid_file_has_no_partial(named_rdb: Callable[[str], Path]) -> None:
    report = check_report(check_file(named_rdb("redis-7.0-all-types"), now_ms=NOW_MS))
    assert report["partial"] is None
    assert (report["validation"], report["verdict"]) == ("full", "valid")


def test_a_damaged_name_among_the_biggest_keys_of_a_quick_partial() -> None:
    # Found by test_properties: a quick walk skips key names, so the partial inventory's
    # biggest key may be one whose LZF name does not inflate; the verdict stands without it.
    data = b"REDIS0009" + b"\x00\xc3\xc3\xf0\xf0\xf0\xf0\x00"
    result = check_rdb(data, now_ms=0, quick=True)
    assert not result.valid and result.partial is not None
    assert result.partial.inventory.biggest_by_bytes == []
