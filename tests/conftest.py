"""Shared test helpers: the RDB fixture files, their expected JSON, and a CLI runner."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from json_schemas import check_output
from typer.testing import CliRunner

from toolkit.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
# Text output wraps its prose to COLUMNS (80 by default): the suite checks what reports say
# with lines unbroken; tests/test_output.py checks the wrapping with COLUMNS of its own.
os.environ["COLUMNS"] = "1000"
FIXTURES = ROOT / "fixtures" / "rdb"
RDB_FILES = sorted(FIXTURES.glob("*.rdb"))


class CliRun(NamedTuple):
    """What one CLI invocation left behind."""

    exit_code: int
    stdout: str
    stderr: str


def expected_path(rdb: Path) -> Path:
    """The ``*.expected.json`` written next to an ``.rdb`` fixture."""
    return rdb.with_name(rdb.name.removesuffix(".rdb") + ".expected.json")


def load_expected(rdb: Path) -> dict[str, Any]:
    """The expected inventory of an ``.rdb`` fixture, as fixtures/generate.py wrote it."""
    return json.loads(expected_path(rdb).read_text(encoding="utf-8"))


def fixture_file(name: str) -> Path:
    """The fixture ``fixtures/rdb/<name>.rdb``; fails the test if it is missing."""
    path = FIXTURES / f"{name}.rdb"
    assert path.is_file(), f"fixture {path} is missing: run fixtures/generate.py"
    return path


def invoke_cli(*args: str | Path) -> CliRun:
    """Run ``rbkit ARGS`` in-process; an uncaught exception propagates (fails the test). JSON
    output is validated against its schema (tests/json_schemas.py)."""
    # typer 0.29's CliRunner always keeps stderr apart from stdout (no mix_stderr switch).
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    check_output(args, result.stdout)
    return CliRun(result.exit_code, result.stdout, result.stderr)


@pytest.fixture(params=RDB_FILES, ids=lambda p: p.name)
def rdb_file(request: pytest.FixtureRequest) -> Path:
    """Each ``fixtures/rdb/*.rdb`` file in turn."""
    return request.param


@pytest.fixture
def expected(rdb_file: Path) -> dict[str, Any]:
    """The expected JSON of the current ``rdb_file``."""
    return load_expected(rdb_file)


@pytest.fixture
def rdb_files() -> list[Path]:
    """Every ``fixtures/rdb/*.rdb`` file (the list the parametrized tests run over)."""
    return list(RDB_FILES)


@pytest.fixture
def named_rdb() -> Callable[[str], Path]:
    """``named_rdb("redis-7.0-all-types")`` -> the path of that fixture."""
    return fixture_file


@pytest.fixture
def expected_of() -> Callable[[Path], dict[str, Any]]:
    """``expected_of(rdb_path)`` -> the expected JSON of that fixture."""
    return load_expected


@pytest.fixture
def run_cli() -> Callable[..., CliRun]:
    """``run_cli(*args)`` -> (exit_code, stdout, stderr) of ``rbkit ARGS``."""
    return invoke_cli
