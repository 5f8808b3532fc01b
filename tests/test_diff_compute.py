"""``compute_diff`` against real servers: every difference found, and nothing else.

A Redis 7.0 server (Debian's) gets a dataset of every type, is saved (A), changed (deletes,
new keys, type changes, TTL gained/lost/changed, a value change in every type), and saved
again (B). The expected differences come from reading the server itself with plain commands
before and after (tests/diff_support.py), never from rbkit's parsers. A is then diffed against
B as files, as file against the live server, live against file, and live against a saved
check report. The same data written by Redis 6.2, 7.0 and 8.2 (and with encodings forced
apart) must diff as equal with values.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import DEBUG_CONFIG, binary, keep_expired_keys, wait_past
from diff_support import (
    DBS,
    FAR,
    Snap,
    apply_changes,
    expected_kinds,
    found_kinds,
    save_copy,
    snapshot,
    url_of,
    write_dataset,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.check.backup import check_backup
from toolkit.check.report import check_report
from toolkit.diff.compute import DiffError, compute_diff
from toolkit.diff.model import (
    ADDED,
    COUNTS,
    EXPIRED,
    KEYS,
    REMOVED,
    VALUE,
    VALUES,
    DiffReport,
    Source,
)
from toolkit.diff.table import KeyTable, TypeCodes
from toolkit.diff.table_join import join_tables
from toolkit.server.process import RedisServer, running_server


@dataclass
class Scenario:
    """A.rdb and B.rdb of one server, the server still holding B, and the oracle's view."""

    server: RedisServer
    a: Path
    b: Path
    a_report: Path
    b_report: Path
    before: dict[tuple[int, bytes], Snap]
    after: dict[tuple[int, bytes], Snap]

    @property
    def url(self) -> str:
        return url_of(self.server)


def _report(rdb: Path, target: Path) -> Path:
    target.write_text(json.dumps(check_report(check_backup(rdb))))
    return target


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("diff")
    with running_server(binary("7.0")) as server:
        write_dataset(server)
        before = snapshot(server)
        a = save_copy(server, tmp / "a.rdb")
        apply_changes(server)
        after = snapshot(server)
        b = save_copy(server, tmp / "b.rdb")
        yield Scenario(
            server,
            a,
            b,
            _report(a, tmp / "a.json"),
            _report(b, tmp / "b.json"),
            before,
            after,
        )


def test_the_change_set_covers_every_kind(scenario: Scenario) -> None:
    """The oracle itself: the changes made produce every kind (else the test proves less)."""
    kinds = Counter(
        k
        for ks in expected_kinds(scenario.before, scenario.after, values=True).values()
        for k in ks
    )
    assert set(kinds) == {
        "removed",
        "added",
        "type",
        "size",
        "ttl_gained",
        "ttl_lost",
        "ttl_changed",
        "value",
    }
    changed_types = {
        scenario.after[k].type
        for k, ks in expected_kinds(scenario.before, scenario.after, values=True).items()
        if VALUE in ks
    }
    assert changed_types == {"string", "list", "set", "zset", "hash", "stream"}


@pytest.mark.parametrize("values", [False, True], ids=["keys", "values"])
def test_file_file(scenario: Scenario, values: bool) -> None:
    report = compute_diff(str(scenario.a), str(scenario.b), values=values, limit=10_000)
    expected = expected_kinds(scenario.before, scenario.after, values=values)
    assert found_kinds(report) == expected
    assert report.level == (VALUES if values else KEYS)
    _check_counts(report, scenario.before, scenario.after, expected)
    assert not report.same
    if values:
        both = scenario.before.keys() & scenario.after.keys()
        same_type = [k for k in both if scenario.before[k].type == scenario.after[k].type]
        assert report.values_compared == len(same_type)
        assert report.values_reread == 0


def test_file_live(scenario: Scenario) -> None:
    report = compute_diff(str(scenario.a), scenario.url, values=True, limit=10_000)
    assert found_kinds(report) == expected_kinds(scenario.before, scenario.after, values=True)
    # Read as its replication snapshot: one moment, the server's TIME once it was sent.
    assert report.b.kind == "live" and report.b.via == "snapshot"
    assert report.b.time_source == "server TIME after its snapshot"
    assert report.b.keys_read == len(scenario.after)
    assert any("replication snapshot" in n for n in report.b.notes)
    report = compute_diff(str(scenario.a), scenario.url, values=True, limit=10_000, via="scan")
    assert found_kinds(report) == expected_kinds(scenario.before, scenario.after, values=True)
    assert report.b.via == "scan" and report.b.time_source == "server TIME"
    assert any("live server" in n for n in report.notes)


def test_live_file_is_the_reverse(scenario: Scenario) -> None:
    report = compute_diff(scenario.url, str(scenario.a), values=True, limit=10_000)
    assert found_kinds(report) == expected_kinds(scenario.after, scenario.before, values=True)


def test_same_file_and_its_server_are_equal(scenario: Scenario) -> None:
    for a, b in ((scenario.b, scenario.url), (scenario.url, scenario.b), (scenario.b, scenario.b)):
        report = compute_diff(str(a), str(b), values=True)
        assert report.same, found_kinds(report)
        assert report.keys == [] and report.keys_differing == 0
        assert report.values_compared == len(scenario.after)


def test_live_report_counts(scenario: Scenario) -> None:
    report = compute_diff(str(scenario.a_report), scenario.url)
    assert report.level == COUNTS
    for db in DBS:
        d = report.databases[db]
        before = [s for (n, _k), s in scenario.before.items() if n == db]
        after = [s for (n, _k), s in scenario.after.items() if n == db]
        assert (d.keys.a, d.keys.b) == (len(before), len(after))
        assert d.keys.added is None and d.keys.removed is None and d.keys.changed is None
        assert d.expires_a == sum(s.expire_ms is not None for s in before)
        assert d.expires_b == sum(s.expire_ms is not None for s in after)
        for t, c in d.by_type.items():
            assert (c.a, c.b) == (
                sum(s.type == t for s in before),
                sum(s.type == t for s in after),
            )
    assert not report.same
    same = compute_diff(str(scenario.b_report), scenario.url)
    assert same.same and same.level == COUNTS
    assert compute_diff(scenario.url, str(scenario.b_report)).same
    assert compute_diff(str(scenario.b_report), str(scenario.b)).same


def test_report_with_match_is_refused(scenario: Scenario) -> None:
    with pytest.raises(DiffError, match=r"b\.json: .*counts only"):
        compute_diff(str(scenario.a), str(scenario.b_report), match="str:*")


def test_db_and_match_limit_the_diff(scenario: Scenario) -> None:
    expected = expected_kinds(scenario.before, scenario.after, values=True)
    report = compute_diff(str(scenario.a), str(scenario.b), values=True, dbs=[3], limit=100)
    assert found_kinds(report) == {k: v for k, v in expected.items() if k[0] == 3}
    assert set(report.databases) == {3}
    report = compute_diff(str(scenario.a), scenario.url, values=True, match="str:*")
    want = {k: v for k, v in expected.items() if k[1].startswith(b"str:")}
    assert found_kinds(report) == want
    # A character class and a single-character wildcard, on both kinds of side.
    for b in (str(scenario.b), scenario.url):
        report = compute_diff(str(scenario.a), b, match="user:[13]:nam?")
        assert set(found_kinds(report)) == {(0, b"user:1:name"), (0, b"user:3:name")}


def test_limit_and_order(scenario: Scenario) -> None:
    expected = expected_kinds(scenario.before, scenario.after, values=True)
    report = compute_diff(str(scenario.a), str(scenario.b), values=True, limit=5)
    assert [(k.db, k.key) for k in report.keys] == sorted(expected)[:5]
    assert report.keys_differing == len(expected)
    assert sum(report.by_kind.values()) == sum(len(v) for v in expected.values())


def test_prefix_rollup(scenario: Scenario) -> None:
    expected = expected_kinds(scenario.before, scenario.after, values=True)
    report = compute_diff(str(scenario.a), str(scenario.b), values=True, prefix_sep=":")
    want: dict[str, Counter[str]] = {}
    for (_db, key), kinds in expected.items():
        slot = "removed" if kinds == (REMOVED,) else "added" if kinds == (ADDED,) else "changed"
        want.setdefault(key.split(b":")[0].decode(), Counter())[slot] += 1
    got = {
        p.prefix: Counter(removed=p.removed, added=p.added, changed=p.changed)
        for p in report.prefixes
    }
    assert {p: +c for p, c in got.items()} == {p: +c for p, c in want.items()}
    totals = [p.total for p in report.prefixes]
    assert totals == sorted(totals, reverse=True)
    assert compute_diff(str(scenario.a), str(scenario.b)).prefixes == []


def _check_counts(
    report: DiffReport,
    before: dict[tuple[int, bytes], Snap],
    after: dict[tuple[int, bytes], Snap],
    expected: dict[tuple[int, bytes], tuple[str, ...]],
) -> None:
    """Per db and type: A, B, added, removed, changed, unchanged as the oracle counts them."""
    for db in DBS:
        want: dict[str, Counter[str]] = {}
        for (n, _key), snap in before.items():
            if n == db:
                want.setdefault(snap.type, Counter())["a"] += 1
        for (n, key), snap in after.items():
            if n != db:
                continue
            c = want.setdefault(snap.type, Counter())
            c["b"] += 1
            kinds = expected.get((n, key))
            if kinds == (ADDED,):
                c["added"] += 1
            elif kinds:
                c["changed"] += 1
            else:
                c["unchanged"] += 1
        for (n, key), kinds in expected.items():
            if n == db and kinds == (REMOVED,):
                want[before[(n, key)].type]["removed"] += 1
        got = {
            t: Counter(
                a=c.a,
                b=c.b,
                added=c.added or 0,
                removed=c.removed or 0,
                changed=c.changed or 0,
                unchanged=c.unchanged or 0,
            )
            for t, c in report.databases[db].by_type.items()
        }
        assert {t: +c for t, c in got.items()} == {t: +c for t, c in want.items()}
        k = report.databases[db].keys
        assert k.a == sum(1 for n, _ in before if n == db)
        assert k.b == sum(1 for n, _ in after if n == db)
        assert k.added + k.removed + k.changed == sum(1 for n, _ in expected if n == db)


# -- the same data, different writers --------------------------------------------------------


FORCED_ENCODINGS = {  # everything in its big encoding, even when small
    "hash-max-listpack-entries": "0",
    "zset-max-listpack-entries": "0",
    "set-max-intset-entries": "0",
    "list-max-listpack-size": "1",
}


def test_same_data_from_three_versions_is_equal(tmp_path: Path) -> None:
    files = {}
    for version in ("6.2", "7.0", "8.2"):
        with running_server(binary(version)) as server:
            write_dataset(server)
            files[version] = save_copy(server, tmp_path / f"{version}.rdb")
    with running_server(binary("7.0"), config=FORCED_ENCODINGS) as server:
        write_dataset(server)
        files["7.0-forced"] = save_copy(server, tmp_path / "forced.rdb")
        live = url_of(server)
        n = sum(server.client(db).dbsize() for db in DBS)
        names = list(files)
        for a, b in zip(names, names[1:] + names[:1], strict=True):
            report = compute_diff(str(files[a]), str(files[b]), values=True)
            assert report.same, (a, b, found_kinds(report))
            assert report.values_compared == n
        report = compute_diff(str(files["6.2"]), live, values=True)
        assert report.same and report.values_compared == n, found_kinds(report)
    # Sanity: a real value difference is still seen across versions.
    with running_server(binary("8.2")) as server:
        write_dataset(server)
        server.client(0).hset("hash:big", "field1", "different")
        report = compute_diff(str(files["6.2"]), url_of(server), values=True)
        assert found_kinds(report) == {(0, b"hash:big"): (VALUE,)}


# -- AOF sides -------------------------------------------------------------------------------


def test_aof_side_keys_and_values(tmp_path: Path) -> None:
    config = {"appendonly": "yes", "appendfsync": "always", "aof-use-rdb-preamble": "no"}
    with running_server(binary("7.0"), config=config) as server:
        write_dataset(server)
        rdb = save_copy(server, tmp_path / "a.rdb")
        before = snapshot(server)
        apply_changes(server)
        after = snapshot(server)
        aof = tmp_path / "appendonlydir"
        shutil.copytree(server.directory / "appendonlydir", aof)
    for values in (False, True):
        report = compute_diff(str(rdb), str(aof), values=values, limit=1000)
        assert report.b.kind == "aof"
        assert found_kinds(report) == expected_kinds(before, after, values=values)
    report = compute_diff(str(aof), str(aof), values=True)
    assert report.same and report.values_compared == len(after)
    assert any("scratch redis-server" in n for n in report.a.notes)


# -- expiry ----------------------------------------------------------------------------------


def test_key_expired_by_b_time_is_not_a_loss(tmp_path: Path) -> None:
    with running_server(binary("7.0"), config=DEBUG_CONFIG) as server:
        c = server.client()
        keep_expired_keys(c)  # "short" is in A however long the SAVE takes
        c.set("stays", "1")
        c.set("short", "1", px=100)
        short_until = c.pexpiretime("short")
        a = save_copy(server, tmp_path / "a.rdb")
        c.delete("stays")  # a real loss next to the expiry
        wait_past(c, short_until)
        report = compute_diff(str(a), url_of(server), limit=10)
        assert found_kinds(report) == {(0, b"short"): (EXPIRED,), (0, b"stays"): (REMOVED,)}
        assert report.keys_expired == 1 and report.keys_differing == 1
        assert report.databases[0].keys.expired == 1 and report.databases[0].keys.removed == 1
        c.set("stays", "1")
        report = compute_diff(str(a), url_of(server))
        assert report.same and report.keys_expired == 1


def test_ttl_tolerance(tmp_path: Path) -> None:
    with running_server(binary("7.0")) as server:
        c = server.client()
        c.set("k", "v")
        c.pexpireat("k", FAR)
        a = save_copy(server, tmp_path / "a.rdb")
        c.pexpireat("k", FAR + 5000)
        b = save_copy(server, tmp_path / "b.rdb")
    assert compute_diff(str(a), str(b), ttl_tolerance_ms=5000).same
    report = compute_diff(str(a), str(b), ttl_tolerance_ms=4999)
    assert found_kinds(report) == {(0, b"k"): ("ttl_changed",)}


# -- bad input -------------------------------------------------------------------------------


def test_bad_inputs_are_one_line_errors(scenario: Scenario, tmp_path: Path) -> None:
    data = bytearray(scenario.a.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt = tmp_path / "corrupt.rdb"
    corrupt.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.rdb"
    truncated.write_bytes(scenario.a.read_bytes()[:-100])
    other_json = tmp_path / "other.json"
    other_json.write_text('{"schema": "something/2"}')
    cases = [
        (corrupt, r"corrupt\.rdb: not a valid backup: .*"),
        (truncated, r"truncated\.rdb: not a valid backup: .*offset \d+"),
        (tmp_path / "missing.rdb", r"missing\.rdb"),
        (other_json, r"other\.json: .*schema 'something/2'"),
    ]
    for path, pattern in cases:
        with pytest.raises(DiffError, match=pattern) as info:
            compute_diff(str(scenario.a), str(path))
        assert "\n" not in str(info.value)
    # A damaged A: its check (run beside the join's read of both files) names it.
    for path, pattern in cases[:2]:
        with pytest.raises(DiffError, match=pattern):
            compute_diff(str(path), str(scenario.b))
        with pytest.raises(DiffError, match=pattern):
            compute_diff(str(path), str(scenario.b), values=True)
    with pytest.raises(DiffError, match="tolerance"):
        compute_diff(str(scenario.a), str(scenario.b), ttl_tolerance_ms=-1)


# -- a random change set is found exactly ----------------------------------------------------


KEYS_POOL = [f"k{i}".encode() for i in range(12)]
TYPES = ["string", "list", "set", "zset", "hash", "stream"]


def _write(c, key: bytes, t: str, seed: int) -> None:  # type: ignore[no-untyped-def]
    c.delete(key)
    if t == "string":
        c.set(key, f"s{seed}")
    elif t == "list":
        c.rpush(key, *[f"e{seed}-{i}" for i in range(1 + seed % 3)])
    elif t == "set":
        c.sadd(key, *[f"m{seed + i}" for i in range(1 + seed % 3)])
    elif t == "zset":
        c.zadd(key, {f"m{i}": seed + i for i in range(1 + seed % 3)})
    elif t == "hash":
        c.hset(key, mapping={f"f{i}": f"v{seed}" for i in range(1 + seed % 3)})
    else:
        for i in range(1 + seed % 3):
            c.xadd(key, {"f": seed}, id=f"{seed + 1}-{i + 1}")


change = st.tuples(
    st.sampled_from(KEYS_POOL),
    st.sampled_from(["delete", "write", "ttl", "persist"]),
    st.sampled_from(TYPES),
    st.integers(0, 5),
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Path]]:
    with running_server(binary("7.0")) as server:
        yield server, tmp_path_factory.mktemp("prop")


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    base=st.lists(st.tuples(st.sampled_from(TYPES), st.integers(0, 5)), min_size=12, max_size=12),
    changes=st.lists(change, max_size=10),
)
def test_random_change_sets_are_found_exactly(
    scratch: tuple[RedisServer, Path],
    base: list[tuple[str, int]],
    changes: list[tuple[bytes, str, str, int]],
) -> None:
    server, tmp = scratch
    c = server.client()
    c.flushall()
    for key, (t, seed) in zip(KEYS_POOL, base, strict=True):
        _write(c, key, t, seed)
    before = snapshot(server, [0])
    a = save_copy(server, tmp / "a.rdb")
    for key, op, t, seed in changes:
        if op == "delete":
            c.delete(key)
        elif op == "write":
            _write(c, key, t, seed)
        elif op == "ttl":
            c.pexpireat(key, FAR + seed * 10_000)
        else:
            c.persist(key)
    after = snapshot(server, [0])
    b = save_copy(server, tmp / "b.rdb")
    c.close()
    for values in (False, True):
        report = compute_diff(str(a), str(b), values=values, limit=100)
        assert found_kinds(report) == expected_kinds(before, after, values=values)
    report = compute_diff(str(a), url_of(server), values=True, limit=100)
    assert found_kinds(report) == expected_kinds(before, after, values=True)


# -- hash collisions -------------------------------------------------------------------------


def test_colliding_key_hashes_are_told_apart() -> None:
    """Keys are joined by a 64-bit hash of their names; keys whose hashes collide (forced
    here) must still be matched by name identity, and a key SCAN returned twice count once."""
    types = TypeCodes()
    ta, tb = KeyTable(types, values=False), KeyTable(types, values=False)
    top = 5 << 56  # all in one bucket
    for key, h in ((b"x", (top | 1, 1)), (b"p", (top | 9, 1)), (b"q", (top | 9, 2))):
        ta.add(0, key, "string", None, 1, hashes=h)
    ta.add(0, b"d", "string", None, 1, hashes=(top | 4, 4))
    for key, h in ((b"y", (top | 1, 2)), (b"q", (top | 9, 2)), (b"r", (top | 9, 3))):
        tb.add(0, key, "string", None, 1, hashes=h)
    tb.add(0, b"d", "string", None, 1, hashes=(top | 4, 4))
    tb.add(0, b"d", "string", None, 1, hashes=(top | 4, 4))  # SCAN returned it twice
    # Across sides only: one A key and one B key share h1 (each side's h1 unique).
    ta.add(1, b"m", "list", None, 3, hashes=(top | 2, 1))
    tb.add(1, b"n", "list", None, 3, hashes=(top | 2, 2))
    report = DiffReport(Source("rdb", "a"), Source("live", "b"), KEYS)
    join_tables(report, ta, tb, values=False, prefix_sep=None, limit=100, b_time=None)
    assert found_kinds(report) == {
        (0, b"x"): (REMOVED,),
        (0, b"y"): (ADDED,),
        (0, b"p"): (REMOVED,),
        (0, b"r"): (ADDED,),
        (1, b"m"): (REMOVED,),
        (1, b"n"): (ADDED,),
    }
    k = report.databases[0].keys
    assert (k.a, k.b, k.unchanged, k.removed, k.added) == (4, 4, 2, 2, 2)
