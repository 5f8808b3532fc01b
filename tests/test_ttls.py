"""The TTL columns of a backup's db (toolkit.stage.ttls) and how the drill's and the restore's
comparison judges them in bulk (toolkit.stage.compare.ttl_outcomes), against the rules
stated here key by key, on random keys: a key touched by an unmodelled command is left to
the server; one whose TTL ran out by the load's start is gone; one that ran out during the
read is there as the read says (counted by SCAN; for a snapshot, if its TTL runs
out after the snapshot's time); one that ran out after the read but by the server's clock
may be there or not."""

from __future__ import annotations

from array import array
from collections import Counter

import pyarrow as pa
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.rdb.constants import TYPE_NAMES
from toolkit.server.hashset import PyHashSet, hash_set
from toolkit.server.read import MetKeys
from toolkit.stage.compare import DbKeys, ttl_outcomes

SINCE, UNTIL, CLOCK = 1_000, 2_000, 3_000
RDB_TYPES = sorted(TYPE_NAMES)
SLOTS = (0, 1, 2, 16383)

key = st.tuples(
    st.integers(0, 2**64 - 1),  # the name's hash
    st.sampled_from([*RDB_TYPES, -1]),  # -1: a module value, added one by one
    st.sampled_from([b + d for b in (SINCE, UNTIL, CLOCK) for d in (-1, 0, 1)])
    | st.integers(0, 4_000)
    | st.integers(-(2**63) + 1, 2**63 - 1),  # expire ms: the edges, near them, anywhere
    st.booleans(),  # watched and found (by SCAN)
    st.booleans(),  # undecided
    st.sampled_from(SLOTS),  # its cluster hash slot
)
edge = st.sampled_from([SINCE - 1, SINCE, (SINCE + UNTIL) // 2, UNTIL, UNTIL + 1])
# How the server was read: by SCAN (None), as one snapshot cut then (an int), or as a
# cluster's primaries, each slot's cut (None: its primary was read by SCAN).
reads = st.none() | edge | st.fixed_dictionaries({s: st.none() | edge for s in SLOTS})


@settings(max_examples=300, deadline=None)
@given(st.lists(key, max_size=60, unique_by=lambda k: k[0]), st.integers(1, 7), reads)
def test_bulk_judgement_agrees_with_the_rules_key_by_key(
    keys: list[tuple[int, int, int, bool, bool, int]],
    split: int,
    read: int | dict[int, int | None] | None,
) -> None:
    """A key whose TTL ran out during the read is there if it was watched and found (SCAN),
    or if its TTL runs out after the cut of the snapshot that holds its slot."""
    d = DbKeys()
    plain = [k for k in keys if k[1] >= 0]
    for part in (plain[::split], [k for i, k in enumerate(plain) if i % split]):
        if part:  # in batches of Arrow columns, as the C walk's rows come
            d.ttls.extend(
                pa.array([k[1] for k in part], pa.uint8()),
                pa.array([k[2] for k in part], pa.int64()),
                pa.array([k[0] for k in part], pa.uint64()),
                pa.array([k[5] for k in part], pa.uint16()),
            )
    for h, _t, ms, _w, _u, slot in (k for k in keys if k[1] < 0):
        d.ttls.add(h, "graphdata", ms, slot)
    seen = {k[0] for k in keys if k[3]}
    d.undecided = {k[0]: (None, True) for k in keys if k[4]}
    assert len(d.ttls) == len(keys)

    gone: Counter[str] = Counter()
    running: Counter[str] = Counter()
    digest = before = watched_in_read = 0
    for h, t, ms, _w, _u, slot in keys:
        name = TYPE_NAMES[t] if t >= 0 else "graphdata"
        if h in d.undecided:
            continue
        cut = read.get(slot) if isinstance(read, dict) else read
        there = ms > cut if cut is not None else h in seen
        if ms <= SINCE or (ms <= UNTIL and not there):
            gone[name] += 1
            digest ^= h
            before += ms <= SINCE
        elif ms <= UNTIL:
            watched_in_read += 1
        elif ms <= CLOCK:
            running[name] += 1

    for found in (seen, _met_keys(keys, split)):
        if isinstance(read, dict):
            slot_cuts: list[int | None] = [None] * 16384
            for slot, cut in read.items():
                slot_cuts[slot] = cut
            out = ttl_outcomes(d, found, SINCE, UNTIL, CLOCK, slot_cuts=slot_cuts)
        else:
            out = ttl_outcomes(d, found, SINCE, UNTIL, CLOCK, cut_ms=read)
        assert out.gone.keys == sum(gone.values())
        assert +out.gone.by_type == gone
        assert out.gone.digest == digest
        assert out.gone_before_load == before
        assert out.watched_in_read == watched_in_read
        assert out.running_out.keys == sum(running.values())
        assert +out.running_out.by_type == running


def _met_keys(keys: list[tuple[int, int, int, bool, bool, int]], split: int) -> MetKeys:
    """The found keys as a SCAN read keeps them: in the compact sets of several primaries
    (C and Python), with keys met but gone at their TYPE (in a set, and vanished)."""
    sets = [hash_set(), PyHashSet()]
    vanished = set()
    for i, k in enumerate(keys):
        if k[3] or i % split == 0:
            sets[i % 2].add(array("Q", [k[0]]))
            if not k[3]:
                vanished.add(k[0])
    return MetKeys(sets, vanished)


def test_keys_with_a_ttl_are_kept_by_their_hash() -> None:
    d = DbKeys()
    d.add(b"early", "string", 900)
    d.add(b"in", "hash", 1_500)
    d.add(b"none", "string", None)
    assert d.count == 3 and len(d.ttls) == 2
    ms, hashes, _slots = d.ttls.columns()
    assert ms.to_pylist() == [900, 1_500]
    assert hashes.to_pylist() == [xxhash.xxh64_intdigest(b"early"), xxhash.xxh64_intdigest(b"in")]
