"""The progress line: on a terminal, for large inputs only, and gone when the work ends."""

from __future__ import annotations

import io

import pytest

from toolkit.cli import progress as progress_module
from toolkit.cli.progress import MIN_SIZE, Progress, progress_for


def test_large_input_draws_percent_and_close_clears_it() -> None:
    out = io.StringIO()
    bar = Progress("checking x.rdb", out)
    bar(MIN_SIZE // 2, MIN_SIZE)
    assert "checking x.rdb:  50.0%" in out.getvalue()
    bar.close()
    assert out.getvalue().endswith("\r")


def test_small_input_draws_nothing() -> None:
    out = io.StringIO()
    bar = Progress("checking x.rdb", out)
    bar(10, MIN_SIZE - 1)
    bar.close()
    assert out.getvalue() == ""


def test_no_progress_line_unless_stderr_is_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: False)
    assert progress_for("x") is None
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: True)
    assert isinstance(progress_for("x"), Progress)
