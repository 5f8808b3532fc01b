"""The SCAN reader's set of 64-bit hashes (C, and the Python fallback) against a Python set:
the same "new" answers batch by batch, the same membership (one by one and a buffer at once)
and size, through its growth."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.server import hashset
from toolkit.server.hashset import PyHashSet

U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
# Few distinct values in a batch too, so that repeats (within a batch and across) are common.
BATCHES = st.lists(st.lists(st.one_of(U64, st.sampled_from([0, 1, 2, (1 << 64) - 1])), max_size=60))


def _kinds() -> list:
    assert hashset._hashset is not None, "the C extension is not built (make install builds it)"
    return [hashset._hashset.HashSet, PyHashSet]


@pytest.mark.parametrize("kind", _kinds(), ids=["c", "python"])
@settings(max_examples=300, deadline=None)
@given(batches=BATCHES, probes=st.lists(U64, max_size=20))
def test_answers_as_a_python_set(kind: type, batches: list[list[int]], probes: list[int]) -> None:
    held: set[int] = set()
    s = kind()
    for batch in batches:
        expected = []
        for h in batch:
            expected.append(h not in held)
            held.add(h)
        assert list(s.add(array("Q", batch))) == [int(x) for x in expected]
        assert len(s) == len(held)
    asked = [*probes, *held]
    for h in asked:
        assert (h in s) == (h in held)
    assert list(s.contains(array("Q", asked))) == [int(h in held) for h in asked]


@pytest.mark.parametrize("kind", _kinds(), ids=["c", "python"])
def test_growth_keeps_every_hash(kind: type) -> None:
    """200,000 hashes (the C table doubles from 1024 slots eight times), added twice."""
    values = array("Q", ((i * 0x9E3779B97F4A7C15) & ((1 << 64) - 1) for i in range(200_000)))
    s = kind()
    assert s.add(values) == b"\x01" * len(values)
    assert s.add(values) == b"\x00" * len(values)
    assert len(s) == len(set(values)) == 200_000
    assert all(v in s for v in values[::997])
    assert 12345 not in s and -1 not in s and "x" not in s


@pytest.mark.parametrize("kind", _kinds(), ids=["c", "python"])
def test_a_buffer_of_partial_hashes_is_refused(kind: type) -> None:
    with pytest.raises(ValueError, match="8 bytes each"):
        kind().add(b"\x00" * 12)
    with pytest.raises(ValueError, match="8 bytes each"):
        kind().contains(b"\x00" * 7)


def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not isinstance(hashset.hash_set(), PyHashSet)
    monkeypatch.setenv(hashset.ENV, "0")
    assert isinstance(hashset.hash_set(), PyHashSet)
