"""The progress bar: on a terminal, for steps that last, with the total and the time left, and
gone when the work ends."""

from __future__ import annotations

import io

import pytest

from toolkit.cli import progress as progress_module
from toolkit.cli.bar import DELAY, Bar
from toolkit.cli.progress import progress_for
from toolkit.steps import KEYS


def test_a_lasting_step_draws_done_of_total_and_close_clears_it() -> None:
    out = io.StringIO()
    bar = Bar("checking x.rdb", stream=out)
    bar.started -= DELAY  # the step has run long enough to be shown
    bar(32 << 20, 64 << 20)
    assert bar.drawn
    bar.close()
    text = out.getvalue()
    assert "checking x.rdb" in text and "50%" in text
    assert "32.0 MB / 64.0 MB" in text
    assert not bar.drawn


def test_keys_are_counted_in_keys() -> None:
    out = io.StringIO()
    bar = Bar("reading db 0", KEYS, stream=out)
    bar.started -= DELAY
    bar(12_000, 54_000)
    bar.close()
    assert "12,000 / 54,000 keys" in out.getvalue()


def test_a_quick_step_draws_nothing() -> None:
    out = io.StringIO()
    bar = Bar("checking x.rdb", stream=out)
    bar(10, 100)
    bar.close()
    assert out.getvalue() == ""


def test_no_progress_bar_unless_stderr_is_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: False)
    assert progress_for("x") is None
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: True)
    assert isinstance(progress_for("x"), Bar)
