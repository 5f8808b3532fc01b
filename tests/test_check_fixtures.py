"""``check_file`` on every real-server fixture agrees with what the live server reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import header_magic_version

from parsers.rdb.constants import TYPE_NAMES, ValueType
from parsers.rdb.walker import RdbWalker
from toolkit.check.keys import display_key
from toolkit.check.rdb import CheckResult, check_file
from toolkit.check.report import check_report

FAR_FUTURE_MS = 1 << 62


@dataclass(frozen=True)
class WalkedKey:
    """One key as the walker sees it, in the terms of the expected JSON."""

    type: str
    elements: int
    expire_ms: int | None
    bytes: int  # the key's record: type byte, key and value (no expire opcode)


def walk_keys(path: Path) -> dict[tuple[str, str], WalkedKey]:
    """Every key of ``path`` by (db as text, display form), walked with RdbWalker."""
    walker = RdbWalker(path.read_bytes())
    keys: dict[tuple[str, str], WalkedKey] = {}
    for db, type_id, key_off, value_off, end, elements, expire_ms in walker.walk():
        if type_id == ValueType.MODULE_2:
            type_name = walker.module_name_at(value_off)
        else:
            type_name = TYPE_NAMES[type_id]
        name = (str(db), display_key(bytes(walker.key_at(key_off))))
        assert name not in keys, f"key {name} appears twice in {path.name}"
        keys[name] = WalkedKey(type_name, elements, expire_ms, end - (key_off - 1))
    assert walker.checksum is not None, "the walk ended without reaching EOF"
    return keys


def expected_keys(expected: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The expected listing by (db, key)."""
    return {(db, row["key"]): row for db, rows in expected["keys"].items() for row in rows}


def expire_times(expected: dict[str, Any]) -> list[int]:
    """Absolute expiry (ms) of every key with a TTL in the expected listing."""
    return [
        row["expire_ms"]
        for rows in expected["keys"].values()
        for row in rows
        if row["expire_ms"] is not None
    ]


def expired_per_db(expected: dict[str, Any], now_ms: int) -> dict[str, int]:
    """How many keys of each db have expired at ``now_ms``, from the expected listing."""
    return {
        db: sum(row["expire_ms"] is not None and row["expire_ms"] <= now_ms for row in rows)
        for db, rows in expected["keys"].items()
    }


def checked(path: Path, **kwargs: Any) -> CheckResult:
    """check_file that must produce an inventory."""
    result = check_file(path, **kwargs)
    assert result.inventory is not None, result.problems
    return result


def test_there_are_fixtures_to_check(rdb_files: list[Path]) -> None:
    assert rdb_files, "no fixtures/rdb/*.rdb: run fixtures/generate.py"


def test_check_says_valid_with_no_errors(rdb_file: Path) -> None:
    result = checked(rdb_file)
    assert result.valid
    assert [p for p in result.problems if p.severity == "error"] == []
    assert result.format == "rdb"
    assert result.size == rdb_file.stat().st_size


def test_checksum_is_ok(rdb_file: Path) -> None:
    checksum = checked(rdb_file).checksum
    assert checksum is not None
    assert checksum.status == "ok"
    assert checksum.stored == checksum.computed


def test_magic_and_version_come_from_the_header(rdb_file: Path) -> None:
    result = checked(rdb_file)
    assert (result.magic, result.rdb_version) == header_magic_version(rdb_file)


def test_per_db_counts_match_live_server(rdb_file: Path, expected: dict[str, Any]) -> None:
    inv = checked(rdb_file).inventory
    assert inv is not None
    got = {
        str(db): {"keys": s.keys, "expires": s.expires, "by_type": s.by_type}
        for db, s in inv.databases.items()
    }
    assert got == expected["databases"]
    assert inv.keys == sum(d["keys"] for d in expected["databases"].values())
    assert inv.expires == sum(d["expires"] for d in expected["databases"].values())


@pytest.mark.parametrize(
    "moment", ["just-before-save", "a-minute-after-save", "at-first-expiry", "far-future"]
)
def test_expired_at_check_counts_keys_expired_at_now(
    rdb_file: Path, expected: dict[str, Any], moment: str
) -> None:
    saved_at = expected["saved_at_ms"]
    ttls = expire_times(expected)
    now_ms = {
        "just-before-save": saved_at - 1,
        "a-minute-after-save": saved_at + 60_000,
        "at-first-expiry": min(ttls, default=saved_at),
        "far-future": FAR_FUTURE_MS,
    }[moment]
    result = checked(rdb_file, now_ms=now_ms)
    assert result.checked_at_ms == now_ms
    inv = result.inventory
    assert inv is not None
    got = {str(db): s.expired_at_check for db, s in inv.databases.items()}
    assert got == expired_per_db(expected, result.checked_at_ms)
    if moment == "just-before-save":
        assert sum(got.values()) == 0
    elif moment == "far-future":
        assert got == {db: d["expires"] for db, d in expected["databases"].items()}
    elif moment == "at-first-expiry" and ttls:
        # An expiry equal to now counts as expired: exactly the keys of the first expiry time.
        assert sum(got.values()) == ttls.count(min(ttls))


def test_functions_match_live_server(rdb_file: Path, expected: dict[str, Any]) -> None:
    inv = checked(rdb_file).inventory
    assert inv is not None
    assert sorted(inv.functions) == sorted(expected["functions"])


def test_modules_include_live_server_module_types(rdb_file: Path, expected: dict[str, Any]) -> None:
    inv = checked(rdb_file).inventory
    assert inv is not None
    assert set(inv.modules) >= set(expected["modules"])


def test_module_values_are_counted_in_a_warning(rdb_file: Path, expected: dict[str, Any]) -> None:
    """What VALID does not vouch for: as many module values as the live server had keys of
    module types (any type that is not one of Redis's own)."""
    core = set(TYPE_NAMES.values())
    held = sum(
        n
        for db in expected["databases"].values()
        for t, n in db["by_type"].items()
        if t not in core
    )
    warned = [p for p in checked(rdb_file).problems if p.code == "module_values_unchecked"]
    if held:
        [warning] = warned
        assert warning.severity == "warning"
        assert warning.message.startswith(f"{held} module value(s)")
    else:
        assert warned == []


def test_every_key_matches_live_server(rdb_file: Path, expected: dict[str, Any]) -> None:
    walked = walk_keys(rdb_file)
    listed = expected_keys(expected)
    assert sorted(walked) == sorted(listed)
    for name, row in listed.items():
        key = walked[name]
        assert key.type == row["type"], name
        if row["elements"] is not None:
            assert key.elements == row["elements"], name
        assert key.expire_ms == row["expire_ms"], name


def test_biggest_keys_are_sorted_by_bytes_and_start_with_the_largest(rdb_file: Path) -> None:
    walked = walk_keys(rdb_file)
    inv = checked(rdb_file).inventory
    assert inv is not None
    sizes = [k.bytes for k in inv.biggest_by_bytes]
    assert sizes == sorted(sizes, reverse=True)
    assert len(sizes) == min(10, len(walked))
    if walked:
        assert sizes[0] == max(k.bytes for k in walked.values())
        assert sizes == sorted((k.bytes for k in walked.values()), reverse=True)[:10]


def test_biggest_keys_describe_real_keys(rdb_file: Path, expected: dict[str, Any]) -> None:
    walked = walk_keys(rdb_file)
    listed = expected_keys(expected)
    inv = checked(rdb_file, top=len(walked)).inventory
    assert inv is not None
    names = [(str(k.db), display_key(k.key)) for k in inv.biggest_by_bytes]
    assert sorted(names) == sorted(listed)
    for big, name in zip(inv.biggest_by_bytes, names, strict=True):
        assert big.type == listed[name]["type"], name
        assert big.bytes == walked[name].bytes, name
        if listed[name]["elements"] is not None:
            assert big.elements == listed[name]["elements"], name


@pytest.mark.parametrize("top", [0, 1, 3])
def test_top_limits_biggest_keys(rdb_file: Path, top: int) -> None:
    walked = walk_keys(rdb_file)
    inv = checked(rdb_file, top=top).inventory
    assert inv is not None
    sizes = [k.bytes for k in inv.biggest_by_bytes]
    assert sizes == sorted((k.bytes for k in walked.values()), reverse=True)[:top]
    assert len(inv.biggest_by_elements) == min(top, len(walked))


@pytest.mark.parametrize("top", [0, 2])
def test_top_option_limits_biggest_in_json(
    rdb_file: Path, run_cli: Callable[..., tuple[int, str, str]], top: int
) -> None:
    walked = walk_keys(rdb_file)
    code, out, _err = run_cli("check", rdb_file, "--json", "--top", str(top))
    assert code == 0  # every fixture was written by a server that loads it: valid
    assert len(json.loads(out)["biggest"]) == min(top, len(walked))


def test_quick_check_agrees_with_the_full_check_but_says_so(
    rdb_file: Path, expected: dict[str, Any]
) -> None:
    now_ms = expected["saved_at_ms"]
    full = check_report(check_file(rdb_file, now_ms=now_ms))
    quick = check_report(check_file(rdb_file, now_ms=now_ms, quick=True))
    assert (full.pop("validation"), full.pop("verdict")) == ("full", "valid")
    assert (quick.pop("validation"), quick.pop("verdict")) == ("quick", "structure not validated")
    assert quick == full
    assert quick["valid"]
