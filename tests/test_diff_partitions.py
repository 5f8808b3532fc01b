"""The diff's spilled sides (toolkit/diff/partitions.py): every row lands in the partition of
its name hash's top bits and nowhere else, the groups cover the partitions in order within
their row bound; a job in a forked process (toolkit/diff/forked.py) hands back its result or
its failure; and the diff's Python readers agree with its C ones."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import RDB_FILES

from parsers.rdb import walker as walker_module
from toolkit.diff import partitions
from toolkit.diff.compute import compute_diff
from toolkit.diff.forked import Forked
from toolkit.diff.render import diff_json
from toolkit.errors import DiffError

ALL_TYPES = [p for p in RDB_FILES if p.name.endswith("-all-types.rdb")]


def _batches(rows: int, seed: int) -> list[pa.RecordBatch]:
    rng = random.Random(seed)
    out = []
    for start in range(0, rows, 3000):
        n = min(3000, rows - start)
        out.append(
            pa.RecordBatch.from_pydict(
                {
                    "db": [rng.randrange(3) for _ in range(n)],
                    "key_hash": [rng.getrandbits(64) for _ in range(n)],
                    "key_hash2": [rng.getrandbits(64) for _ in range(n)],
                    "fp": [rng.getrandbits(64) for _ in range(n)],
                    "key_offset": list(range(start, start + n)),
                    "expire_ms": [None if i % 3 else i for i in range(n)],
                    "other": [0] * n,  # a column the join does not take
                },
                schema=pa.schema([*partitions.NARROW, pa.field("other", pa.int8())]),
            )
        )
    return out


def test_every_row_is_spilled_once_to_its_partition(tmp_path: Path) -> None:
    batches = _batches(20_000, 1)
    spilled = partitions.spill(iter(batches), tmp_path / "a.arrow")
    reader = partitions.Reader(spilled)
    seen = []
    shift = 64 - partitions.PARTITION_BITS
    for p in range(partitions.PARTITIONS):
        table = reader.table(range(p, p + 1))
        assert table.num_rows == spilled.rows[p]
        assert all(h >> shift == p for h in table["key_hash"].to_pylist())
        seen.extend(table.to_pylist())
    reader.close()
    rows = [r for b in batches for r in b.select(partitions.NARROW.names).to_pylist()]
    assert sorted(seen, key=lambda r: r["key_offset"]) == rows


@pytest.mark.parametrize("bound", [1, 50, 130, 10**9])
def test_groups_cover_the_partitions_within_their_bound(tmp_path: Path, bound: int) -> None:
    a = partitions.spill(iter(_batches(20_000, 2)), tmp_path / "a.arrow")
    b = partitions.spill(iter(_batches(15_000, 3)), tmp_path / "b.arrow")
    groups = partitions.groups(a, b, bound)
    assert [p for g in groups for p in g] == list(range(partitions.PARTITIONS))
    for g in groups:
        if len(g) > 1:
            assert sum(a.rows[p] for p in g) <= bound and sum(b.rows[p] for p in g) <= bound
    if bound == 10**9:
        assert len(groups) == 1
    if bound == 1:
        assert len(groups) == partitions.PARTITIONS


def _child_pid() -> int:
    return os.getpid()


def _fails() -> None:
    raise ValueError("no")


def test_a_forked_job_hands_back_its_result_or_its_failure() -> None:
    forked = Forked.start(_child_pid)
    assert forked is not None  # the test machine has two cores and fork
    assert forked.result() != os.getpid()
    failing = Forked.start(_fails)
    assert failing is not None
    with pytest.raises(ValueError, match="no"):
        failing.result()
    dying = Forked.start(lambda: os._exit(3))
    assert dying is not None
    with pytest.raises(DiffError, match="ended unexpectedly"):
        dying.result()


@pytest.mark.parametrize("values", [False, True])
def test_the_python_readers_give_the_same_report(
    values: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the C accelerator (fingerprints, records and values_at in Python) the diff of
    every pair of fixtures is the one the C path gives."""
    pairs = [(x, y) for x in ALL_TYPES for y in ALL_TYPES if x != y]

    def reports() -> list[dict[str, object]]:
        out = []
        for a, b in pairs:
            got = diff_json(compute_diff(str(a), str(b), values=values, limit=None))
            for side in ("a", "b"):
                got[side].pop("seconds", None)
            out.append(got)
        return out

    with_c = reports()
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", False)
    assert reports() == with_c
    assert any(r["keys"] for r in with_c)


def test_a_scratch_file_that_cannot_be_written_is_a_diff_error(tmp_path: Path) -> None:
    """A full disk (here /dev/full, where every write fails with ENOSPC) is one clear
    DiffError naming the file, not a traceback."""
    with pytest.raises(DiffError, match=r"/dev/full: No space left on device"):
        partitions.spill(iter(_batches(20_000, 4)), Path("/dev/full"))
