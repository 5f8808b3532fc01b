"""toolkit.ahead: work in a second thread hands back what it made or raised."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from toolkit.ahead import Ahead, consumed_aside


def test_ahead_returns_or_raises_what_the_work_did() -> None:
    assert Ahead(lambda: 6 * 7).result() == 42
    with pytest.raises(ZeroDivisionError):
        Ahead(lambda: 1 // 0).result()


def test_consumed_aside_sees_every_item_in_order_in_another_thread() -> None:
    seen: list[int] = []
    threads: set[int] = set()

    def consume(item: int) -> None:
        seen.append(item)
        threads.add(threading.get_ident())

    consumed_aside(iter(range(1000)), consume)
    assert seen == list(range(1000))
    assert threads and threading.get_ident() not in threads


def test_a_failing_consumer_stops_the_producer_and_its_error_is_raised() -> None:
    made: list[int] = []

    def produce() -> Iterator[int]:
        for i in range(10_000):
            made.append(i)
            yield i

    def consume(item: int) -> None:
        if item == 3:
            raise ValueError("no room")

    with pytest.raises(ValueError, match="no room"):
        consumed_aside(produce(), consume, depth=2)
    assert len(made) < 10_000


def test_a_failing_producer_raises_after_the_consumer_has_its_items() -> None:
    seen: list[int] = []

    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("damaged at offset 9")

    with pytest.raises(OSError, match="offset 9"):
        consumed_aside(produce(), seen.append)
    assert seen == [1, 2]
