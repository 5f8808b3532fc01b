"""Keys stored twice in a db: Redis refuses the file ("RDB has duplicated key ... in DB n"), so
``rbkit check`` calls it INVALID (``duplicate_key``), in C and in pure Python alike, in bounded
memory (toolkit/check/dupkeys.py: key hashes spilled to temporary files past a cap).

Each verdict on a hand-made file is first asked of real servers (6.2, 7.0 and 8.2, which all
read RDB 9); the expected findings of the randomized tests come from a model of Redis's loader
written here (rdbLoadRioWithLoadingCtx: empty collections skipped, expired keys skipped by a
master, the first key added twice stops the load), never from rbkit's own output.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest
from aof_support import server_load
from hypothesis import given, settings
from hypothesis import strategies as st
from rdb_bytes import rstr
from server_verdict import refusal, servers_reading

import parsers.rdb.walker as walker_module
import toolkit.check.dupkeys as dupkeys
from parsers.rdb.crc64 import crc64
from parsers.rdb.keyhash import BUCKETS, ENTRY, ENTRY_SIZE, MASK64, key_hash, py_candidates
from parsers.rdb.walker import RdbWalker
from toolkit.check.backup import check_backup
from toolkit.check.dupkeys import KeyIndex, Repeat
from toolkit.check.rdb import check_file, check_rdb
from toolkit.errors import BackupIOError

NOW_MS = int(time.time() * 1000)
PAST = NOW_MS - 3_600_000  # an hour ago: expired for the check and for the server
FUTURE = NOW_MS + 30 * 86_400_000


def rdb(*records: bytes, version: int = 9) -> bytes:
    out = bytearray(b"REDIS%04d" % version)
    out += b"".join(records) + b"\xff"
    return bytes(out + struct.pack("<Q", crc64(bytes(out))))


def select(db: int) -> bytes:
    return b"\xfe" + bytes([db])


def string(key: bytes, value: bytes = b"v", expire_ms: int | None = None) -> bytes:
    prefix = b"" if expire_ms is None else b"\xfc" + struct.pack("<q", expire_ms)
    return prefix + b"\x00" + rstr(key) + rstr(value)


def int_key(value: int, payload: bytes = b"v") -> bytes:
    """A string record whose key is stored as an 8-bit integer (Redis loads it as digits)."""
    return b"\x00\xc0" + struct.pack("<b", value) + rstr(payload)


def empty_set(key: bytes) -> bytes:
    return b"\x02" + rstr(key) + b"\x00"


def offsets_of(data: bytes, *records: bytes) -> list[int]:
    """Where each record starts in ``data`` (the type byte, after any expiry)."""
    out, at = [], 0
    for record in records:
        at = data.index(record, at)
        out.append(at + (9 if record[0] == 0xFC else 0))
        at += len(record)
    return out


def both_paths(data: bytes, monkeypatch: pytest.MonkeyPatch, **kw: object) -> list:
    """The check's problems in C and in pure Python (which must agree)."""
    found = []
    for fast in (True, False):
        monkeypatch.setattr(walker_module, "USE_SPEEDUPS", fast)
        result = check_rdb(data, now_ms=NOW_MS, **kw)
        found.append((result.verdict, [(p.severity, p.code, p.offset) for p in result.problems]))
    assert found[0] == found[1]
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", True)
    return [check_rdb(data, now_ms=NOW_MS, **kw)]


def server_verdicts(data: bytes) -> dict[str, str | None]:
    return {b.version_text: refusal(b, data) for b in servers_reading(9)}


# -- against real servers ---------------------------------------------------------------------


def test_a_key_stored_twice_is_refused_by_redis_and_invalid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, other, again = string(b"user:1"), string(b"user:2"), string(b"user:1", b"new")
    data = rdb(select(0), first, other, again)
    verdicts = server_verdicts(data)
    assert len(verdicts) == 3
    for version, said in verdicts.items():
        assert said is not None and "duplicated key 'user:1' in DB 0" in said, version
    [result] = both_paths(data, monkeypatch)
    assert result.verdict == "invalid"
    [problem] = [p for p in result.problems if p.code == "duplicate_key"]
    at_first, _, at_again = offsets_of(data, first, other, again)
    assert problem.severity == "error" and problem.offset == at_again
    assert "'user:1'" in problem.message and "db 0" in problem.message
    assert f"{at_first} and {at_again}" in problem.message


def test_a_db_selected_again_with_a_key_it_had(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several SELECTDB sections for one db (as some tools write): keys must still be unique."""
    data = rdb(select(0), string(b"a"), select(1), string(b"a"), select(0), string(b"a"))
    for version, said in server_verdicts(data).items():
        assert said is not None and "duplicated key 'a' in DB 0" in said, version
    [result] = both_paths(data, monkeypatch)
    assert [p.code for p in result.problems] == ["duplicate_key"]
    assert result.problems[0].offset == data.rindex(b"\x00\x01a")


def test_an_integer_key_and_its_digits_are_one_key(monkeypatch: pytest.MonkeyPatch) -> None:
    data = rdb(select(0), string(b"-12"), int_key(-12))
    for version, said in server_verdicts(data).items():
        assert said is not None and "duplicated key '-12'" in said, version
    [result] = both_paths(data, monkeypatch)
    assert [p.code for p in result.problems] == ["duplicate_key"]


def test_the_same_key_in_two_dbs_loads_and_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    data = rdb(select(0), string(b"k"), int_key(7), select(3), string(b"k"), string(b"7"))
    assert server_verdicts(data) == {b.version_text: None for b in servers_reading(9)}
    [result] = both_paths(data, monkeypatch)
    assert result.verdict == "valid" and result.problems == []
    assert result.inventory is not None and result.inventory.keys == 4


def test_copies_a_master_skips_are_no_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    """An expired copy (skipped by a master) or an empty one (skipped always) does not clash;
    the expired case is a warning: a replica keeps expired keys and would refuse the file."""
    expired_first = rdb(select(0), string(b"a", expire_ms=PAST), string(b"a"))
    expired_both = rdb(select(0), string(b"a", expire_ms=PAST), string(b"a", expire_ms=PAST))
    empty_first = rdb(select(0), empty_set(b"a"), string(b"a"))
    for data in (expired_first, expired_both, empty_first):
        assert set(server_verdicts(data).values()) == {None}
    for data in (expired_first, expired_both):
        [result] = both_paths(data, monkeypatch)
        assert result.verdict == "valid"
        assert [p.code for p in result.problems] == ["expired_duplicate"]
        assert result.problems[0].severity == "warning"
    [result] = both_paths(empty_first, monkeypatch)
    assert result.verdict == "valid"
    assert [p.code for p in result.problems] == ["empty_keys"]
    # A copy that has not expired yet is loaded: two of them clash.
    live_twice = rdb(select(0), string(b"a", expire_ms=FUTURE), string(b"a", expire_ms=FUTURE))
    assert all(server_verdicts(live_twice).values())
    [result] = both_paths(live_twice, monkeypatch)
    assert [p.code for p in result.problems] == ["duplicate_key"]


def test_an_aof_preamble_keeps_expired_keys_so_they_clash(tmp_path: Path) -> None:
    """Redis loads an AOF's RDB preamble with its expired keys (RDBFLAGS_AOF_PREAMBLE): the
    file a master loads as dump.rdb is refused as an AOF."""
    data = rdb(select(0), string(b"a", expire_ms=PAST), string(b"a"), version=9)
    path = tmp_path / "appendonly.aof"
    path.write_bytes(data)
    binary = servers_reading(9)[1]  # 7.0
    assert refusal(binary, data) is None  # as dump.rdb: the expired copy is skipped
    assert not server_load(binary, path).loads
    control = tmp_path / "control.aof"  # the same without the expired copy loads as an AOF
    control.write_bytes(rdb(select(0), string(b"a"), version=9))
    assert server_load(binary, control).loads
    result = check_backup(path, now_ms=NOW_MS)
    assert result.format == "aof" and result.verdict == "invalid"
    [problem] = [p for p in result.problems if p.code == "duplicate_key"]
    assert problem.offset == data.rindex(b"\x00\x01a") and "'a'" in problem.message


def test_a_hostile_key_name_is_escaped() -> None:
    key = b"\x1b[2J\x9bVALID\n"
    result = check_rdb(rdb(select(0), string(key), string(key)), now_ms=NOW_MS)
    [problem] = result.problems
    assert "\x1b" not in problem.message and "\n" not in problem.message
    assert "'\\x1b[2J\\x9bVALID\\n'" in problem.message


def test_quick_does_not_look_and_says_structure_not_validated() -> None:
    data = rdb(select(0), string(b"a"), select(0), string(b"a"))
    result = check_rdb(data, now_ms=NOW_MS, quick=True)
    assert result.verdict == "structure not validated"
    assert [p.code for p in result.problems] == ["repeated_db"]


# -- collisions, spilling, cleanup ---------------------------------------------------------------


def test_keys_that_only_share_a_hash_are_no_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every hash forced to 0 each key is a candidate of every other: only the real
    repeat is reported, in C and in Python alike."""
    records = [string(b"k%d" % i) for i in range(40)] + [string(b"k7", b"again")]
    data = rdb(select(0), *records, select(2), string(b"k7"))
    real = MASK64
    outcomes = []
    for fast in (True, False):
        for mask in (real, 0):
            monkeypatch.setattr(walker_module, "USE_SPEEDUPS", fast)
            walker = RdbWalker(data, deep=True)
            with KeyIndex(walker.record_key, mask=mask) as keys:
                walker.tally(NOW_MS, 5, keys)
                if mask == 0:
                    assert sum(len(b) for b in keys.buckets) == 42 * ENTRY_SIZE
                    assert len(keys.buckets[0]) == 42 * ENTRY_SIZE  # all in one bucket
                outcomes.append(keys.finish())
    at = data.index(b"\x00\x02k7\x05again")
    expected = dupkeys.Duplicates(Repeat(0, b"k7", at, data.index(b"\x00\x02k7")), 1)
    assert outcomes == [expected] * 4


@pytest.mark.parametrize("spill_at", [1, 3, 50])
def test_spilled_runs_find_the_same_and_are_removed(
    spill_at: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap the entries go to temporary files in the spill dir: the findings are those
    of an index that never spilled, and no file is left (nor held open) afterwards."""
    records = [
        string(b"key:%d" % (i % 70), expire_ms=PAST if i % 11 == 0 else None) for i in range(200)
    ]
    data = rdb(select(0), *records)
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    found = {}
    for fast in (True, False):
        monkeypatch.setattr(walker_module, "USE_SPEEDUPS", fast)
        for cap in (10**6, spill_at):
            walker = RdbWalker(data, deep=True)
            with KeyIndex(walker.record_key, spill_at=cap, spill_dir=spill_dir) as keys:
                walker.tally(NOW_MS, 5, keys)
                if cap == spill_at:
                    assert len(keys.runs) >= 200 // spill_at - 1 >= 3
                    assert open_files_in(spill_dir)  # the runs are there, unnamed
                found[fast, cap] = keys.finish()
            assert not open_files_in(spill_dir)
            assert list(spill_dir.iterdir()) == []
    assert len(set(found.values())) == 1
    expected = loader_model([(0, b"key:%d" % (i % 70), i % 11 == 0, i) for i in range(200)])
    first = found[True, spill_at].first
    assert first is not None and (first.db, first.key) == expected[0][:2]
    assert found[True, spill_at].repeats == expected[1]


def test_the_check_spills_into_the_dir_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dupkeys, "SPILL_AT", 4)
    data = rdb(select(0), *[string(b"k%d" % i) for i in range(30)], string(b"k3"))
    path = tmp_path / "dump.rdb"
    path.write_bytes(data)
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    made = []
    real = dupkeys.tempfile.TemporaryFile

    def counting(*args: object, **kw: object) -> object:
        made.append(kw.get("dir"))
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(dupkeys.tempfile, "TemporaryFile", counting)
    result = check_file(path, now_ms=NOW_MS, spill_dir=spill_dir)
    assert [p.code for p in result.problems] == ["duplicate_key"]
    assert len(made) >= 7 and set(made) == {spill_dir}
    assert list(spill_dir.iterdir()) == [] and not open_files_in(spill_dir)
    with pytest.raises(BackupIOError, match="cannot create a temporary file in"):
        check_file(path, now_ms=NOW_MS, spill_dir=tmp_path / "missing")


def test_runs_are_closed_when_the_walk_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dupkeys, "SPILL_AT", 2)
    damaged = rdb(select(0), *[string(b"k%d" % i) for i in range(20)])[:-15]  # cut short
    result = check_rdb(damaged, now_ms=NOW_MS, spill_dir=tmp_path)
    assert result.verdict == "invalid"
    assert not open_files_in(tmp_path) and list(tmp_path.iterdir()) == []


def open_files_in(folder: Path) -> list[str]:
    """This process's open files under ``folder`` (an unlinked temp file shows as deleted)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder) + "/"):
            out.append(target)
    return out


# -- the index against a model of Redis's loader -------------------------------------------------


def loader_model(
    records: list[tuple[int, bytes, bool, int]],
) -> tuple[tuple[int, bytes, int] | None, int]:
    """(db, key, expired, offset) records as a master loads them: (the first repeat as db, key,
    offset, or None; how many records repeat a loaded key)."""
    loaded: set[tuple[int, bytes]] = set()
    first = None
    repeats = 0
    for db, key, expired, offset in records:
        if expired:
            continue  # a master skips it
        if (db, key) in loaded:
            repeats += 1
            first = first or (db, key, offset)
        loaded.add((db, key))
    return first, repeats


records_strategy = st.lists(
    st.tuples(
        st.integers(0, 2), st.sampled_from([b"a", b"b", b"c", b"dd", b"", b"1"]), st.booleans()
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    records=records_strategy,
    spill_at=st.sampled_from([1, 2, 5, 1000]),
    mask=st.sampled_from([MASK64, 0, 1, 0xFF << 56]),
)
def test_the_index_finds_what_the_loader_refuses(
    records: list[tuple[int, bytes, bool]], spill_at: int, mask: int
) -> None:
    """Fed directly (offsets 10, 20, ...), with collisions forced by masks and spills forced
    by tiny caps: the first repeat and the count are the model's."""
    at = {10 * (i + 1): (db, key) for i, (db, key, _) in enumerate(records)}
    with KeyIndex(at.__getitem__, spill_at=spill_at, mask=mask) as keys:
        for i, (db, key, expired) in enumerate(records):
            keys.add(db, key, 10 * (i + 1), expired)
        found = keys.finish()
    first, repeats = loader_model(
        [(db, k, e, 10 * (i + 1)) for i, (db, k, e) in enumerate(records)]
    )
    assert found.repeats == repeats
    if first is None:
        assert found.first is None
    else:
        assert found.first is not None
        assert (found.first.db, found.first.key, found.first.offset) == first
        earlier = [
            10 * (i + 1) for i, (d, k, e) in enumerate(records) if (d, k) == first[:2] and not e
        ]
        assert found.first.first_offset == earlier[0]
    # The warning: no error, but some key stored more than once (copies that expired).
    names = [(d, k) for d, k, _ in records]
    twice = any(names.count(n) > 1 for n in set(names))
    assert (found.expired is not None) == (first is None and twice)


def test_candidates_in_c_and_python_agree() -> None:
    import random

    rng = random.Random(5)
    for n in (0, 1, 2, 17, 500):
        hashes = [rng.choice([1, 2, 3, rng.getrandbits(64)]) for _ in range(n)]
        data = b"".join(ENTRY.pack(h, i) for i, h in enumerate(hashes))
        expected = [i for i, h in enumerate(hashes) if hashes.count(h) > 1]
        assert py_candidates(data) == expected
        if walker_module._speedups is not None:
            assert walker_module._speedups.candidates(data) == expected


def test_hashes_are_the_same_in_c_and_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every entry the C scan writes is the one the Python walk writes: hash (digits for an
    integer key, db mixed in), record offset, expiry bit; in the same bucket."""
    data = rdb(
        select(0),
        string(b"plain", expire_ms=PAST),
        int_key(-3),
        select(5),
        string(b"plain", expire_ms=FUTURE),
        empty_set(b"not noted"),
    )
    entries = {}
    for fast in (True, False):
        monkeypatch.setattr(walker_module, "USE_SPEEDUPS", fast)
        walker = RdbWalker(data, deep=True)
        keys = KeyIndex(walker.record_key)
        walker.tally(NOW_MS, 5, keys)
        entries[fast] = {
            b: [ENTRY.unpack_from(bucket, i) for i in range(0, len(bucket), ENTRY_SIZE)]
            for b, bucket in enumerate(keys.buckets)
            if bucket
        }
        keys.close()
    assert entries[True] == entries[False]
    flat = sorted(e for bucket in entries[True].values() for e in bucket)
    plain = data.index(b"\x00\x05plain")
    assert flat == sorted(
        [
            (key_hash(b"plain", 0), (plain << 1) | 1),
            (key_hash(b"-3", 0), data.index(b"\x00\xc0\xfd") << 1),
            (key_hash(b"plain", 5), data.rindex(b"\x00\x05plain") << 1),
        ]
    )
    for b, bucket in entries[True].items():
        assert all(h >> (64 - 10) == b for h, _ in bucket) and len(entries[True]) <= BUCKETS
