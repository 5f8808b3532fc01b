"""rbkit's walk against rdbtools, an independent parser of RDB files up to version 9.

On every fixture with RDB version <= 9, both must list the same keys with the same db, type,
element count and expiry, the same aux fields and the same resize hints.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rdbtools import RdbCallback, RdbParser

from parsers.rdb.constants import TYPE_NAMES, ValueType
from parsers.rdb.walker import RdbWalker

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rdb"
RDBTOOLS_MAX_VERSION = 9  # rdbtools 0.1.15 verify_version: "if version < 1 or version > 9"
EPOCH = datetime(1970, 1, 1)

# utcfromtimestamp is rdbtools' own call (deprecated from Python 3.12).
pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcfromtimestamp")

# (db, key) -> (TYPE name, element count or None for module values, expiry in ms or None)
Listing = dict[tuple[int, bytes], tuple[str, int | None, int | None]]


def rdb_version(path: Path) -> int | None:
    """The version in a REDIS header, read here rather than by the code under test."""
    head = path.read_bytes()[:9]
    return int(head[5:9]) if head[:5] == b"REDIS" and head[5:9].isdigit() else None


OLD_RDBS = [
    p
    for p in sorted(FIXTURES.glob("*.rdb"))
    if (v := rdb_version(p)) is not None and v <= RDBTOOLS_MAX_VERSION
]


def as_bytes(value: bytes | int) -> bytes:
    """rdbtools hands back integer-encoded strings as ints; Redis sees their decimal text."""
    return value if isinstance(value, bytes) else str(value).encode()


def to_ms(expiry: datetime | None) -> int | None:
    """rdbtools gives expiries as naive UTC datetimes (microsecond precision)."""
    return None if expiry is None else (expiry - EPOCH) // timedelta(milliseconds=1)


class Collector(RdbCallback):
    """Every key's db, name, type, element count and expiry, as rdbtools reports them."""

    def __init__(self) -> None:
        super().__init__(string_escape=None)
        self.db = 0
        self.keys: dict[tuple[int, bytes], list[Any]] = {}
        self.aux: list[tuple[bytes, bytes]] = []
        self.db_sizes: list[tuple[int, int, int]] = []

    def _start(self, key: bytes | int, type_name: str, count: int | None, expiry: Any) -> None:
        entry = (self.db, as_bytes(key))
        assert entry not in self.keys, f"rdbtools reported {entry} twice"
        self.keys[entry] = [type_name, count, to_ms(expiry)]

    def _add(self, key: bytes | int) -> None:
        self.keys[(self.db, as_bytes(key))][1] += 1

    def start_database(self, db_number: int) -> None:
        self.db = db_number

    def aux_field(self, key: bytes | int, value: bytes | int) -> None:
        self.aux.append((as_bytes(key), as_bytes(value)))

    def db_size(self, db_size: int, expires_size: int) -> None:
        self.db_sizes.append((self.db, db_size, expires_size))

    def set(self, key: bytes, value: Any, expiry: Any, info: Any) -> None:
        self._start(key, "string", 1, expiry)

    def start_hash(self, key: bytes, length: int, expiry: Any, info: Any) -> None:
        self._start(key, "hash", 0, expiry)

    def hset(self, key: bytes, field: Any, value: Any) -> None:
        self._add(key)

    def start_set(self, key: bytes, cardinality: int, expiry: Any, info: Any) -> None:
        self._start(key, "set", 0, expiry)

    def sadd(self, key: bytes, member: Any) -> None:
        self._add(key)

    def start_list(self, key: bytes, expiry: Any, info: Any) -> None:
        self._start(key, "list", 0, expiry)

    def rpush(self, key: bytes, value: Any) -> None:
        self._add(key)

    # rdbtools calls sorted sets "sortedset"; Redis's TYPE command says "zset".
    def start_sorted_set(self, key: bytes, length: int, expiry: Any, info: Any) -> None:
        self._start(key, "zset", 0, expiry)

    def zadd(self, key: bytes, score: Any, member: Any) -> None:
        self._add(key)

    def start_stream(self, key: bytes, listpacks_count: int, expiry: Any, info: Any) -> None:
        self._start(key, "stream", None, expiry)

    def end_stream(self, key: bytes, items: int, last_entry_id: str, cgroups: Any) -> None:
        self.keys[(self.db, as_bytes(key))][1] = items  # XLEN, as rbkit counts stream entries

    def start_module(self, key: bytes, module_name: str, expiry: Any, info: Any) -> bool:
        self._start(key, module_name, None, expiry)
        return False  # skip the module's data


def rdbtools_view(path: Path) -> Collector:
    """Parse with rdbtools; its errors propagate and fail the test with rdbtools' message."""
    collector = Collector()
    RdbParser(collector).parse(str(path))
    return collector


def rbkit_listing(walker: RdbWalker) -> Listing:
    listing: Listing = {}
    for db, type_id, key_at, value_at, _end, elements, expire_ms in walker.walk():
        key = bytes(walker.key_at(key_at))
        if type_id == ValueType.MODULE_2:
            listing[(db, key)] = (walker.module_name_at(value_at), None, expire_ms)
        else:
            listing[(db, key)] = (TYPE_NAMES[type_id], elements, expire_ms)
    return listing


def test_some_fixtures_are_old_enough_for_rdbtools() -> None:
    # Otherwise every test below would be skipped and the comparison would silently vanish.
    assert OLD_RDBS, f"no fixture with RDB version <= {RDBTOOLS_MAX_VERSION} in {FIXTURES}"


@pytest.mark.parametrize("path", OLD_RDBS, ids=lambda p: p.name)
def test_keys_match_rdbtools(path: Path) -> None:
    theirs = rdbtools_view(path)
    walker = RdbWalker(path.read_bytes())
    ours = rbkit_listing(walker)
    assert {k: tuple(v) for k, v in theirs.keys.items()} == ours


@pytest.mark.parametrize("path", OLD_RDBS, ids=lambda p: p.name)
def test_aux_fields_and_resize_hints_match_rdbtools(path: Path) -> None:
    theirs = rdbtools_view(path)
    walker = RdbWalker(path.read_bytes())
    for _ in walker.walk():
        pass
    assert [(a.name, a.value) for a in walker.aux] == theirs.aux
    assert [(h.db, h.keys, h.expires) for h in walker.resize_hints] == theirs.db_sizes
