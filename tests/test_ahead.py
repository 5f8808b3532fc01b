"""toolkit.ahead: work in a background thread hands back what it made or raised."""

from __future__ import annotations

import pytest

from toolkit.ahead import Ahead


def test_ahead_returns_or_raises_what_the_work_did() -> None:
    assert Ahead(lambda: 6 * 7).result() == 42
    with pytest.raises(ZeroDivisionError):
        Ahead(lambda: 1 // 0).result()
