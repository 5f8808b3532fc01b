"""``rbkit check``: exit codes, the table, the JSON report and errors, as a user meets them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import header_magic_version

import toolkit
from parsers.rdb.strings import string_span
from parsers.rdb.walker import RdbWalker
from toolkit.check.keys import display_key

RunCli = Callable[..., tuple[int, str, str]]
ROOT = Path(__file__).resolve().parent.parent
ALL_TYPES = "redis-7.0-all-types"
DATABASES_32 = "redis-7.0-databases-32"

# The check --json fields the README promises (schema rbkit.check/1); extra fields are allowed.
TOP_LEVEL = {
    "schema", "path", "format", "valid", "rdb_version", "magic", "checksum", "problems",
    "aux", "databases", "totals", "functions", "modules", "biggest",
}  # fmt: skip
CHECKSUM = {"status", "stored", "computed"}
PROBLEM = {"severity", "code", "offset", "message"}
DATABASE = {"keys", "expires", "expired_at_check", "by_type"}
TOTALS = {"keys", "expires"}
BIG_KEY = {"db", "key", "type", "elements", "bytes"}


def no_traceback(*outputs: str) -> None:
    """Bad input must never show a Python traceback."""
    for text in outputs:
        assert "Traceback" not in text, text


def json_report(run_cli: RunCli, *args: str | Path) -> tuple[int, dict[str, Any]]:
    """Exit code and parsed report of ``rbkit check --json ARGS``."""
    code, out, err = run_cli("check", "--json", *args)
    no_traceback(out, err)
    return code, json.loads(out)


def table_rows(out: str) -> dict[str, list[str]]:
    """Rows of the per-db table (header starting ``db keys expires``), by db."""
    lines = out.splitlines()
    starts = [i for i, line in enumerate(lines) if line.split()[:3] == ["db", "keys", "expires"]]
    assert len(starts) == 1, out
    rows: dict[str, list[str]] = {}
    for line in lines[starts[0] + 2 :]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells
    return rows


def truncated_copy(src: Path, dst_dir: Path, size: int) -> Path:
    """A copy of ``src`` cut to ``size`` bytes."""
    dst = dst_dir / f"{src.stem}-cut-{size}.rdb"
    dst.write_bytes(src.read_bytes()[:size])
    return dst


# -- valid fixtures ---------------------------------------------------------------------------


def test_table_names_file_verdict_and_db_rows(
    rdb_file: Path, expected: dict[str, Any], run_cli: RunCli
) -> None:
    code, out, err = run_cli("check", rdb_file)
    no_traceback(out, err)
    assert code == 0
    first = out.splitlines()[0]
    assert str(rdb_file) in first
    assert "VALID" in first.split() and "INVALID" not in out
    if expected["databases"]:
        rows = table_rows(out)
        for db, counts in expected["databases"].items():
            assert rows[db][1:3] == [str(counts["keys"]), str(counts["expires"])], rows[db]
        assert set(rows) - {"all"} == set(expected["databases"])


def test_json_has_design_fields_and_live_server_counts(
    rdb_file: Path, expected: dict[str, Any], run_cli: RunCli
) -> None:
    code, report = json_report(run_cli, rdb_file)
    assert code == 0
    assert set(report) >= TOP_LEVEL
    assert report["schema"] == "rbkit.check/1"
    assert report["path"] == str(rdb_file)
    assert report["format"] == "rdb"
    assert report["valid"] is True
    assert (report["magic"], report["rdb_version"]) == header_magic_version(rdb_file)
    assert set(report["checksum"]) >= CHECKSUM
    assert report["checksum"]["status"] == "ok"
    assert report["checksum"]["stored"] == report["checksum"]["computed"]
    assert all(set(p) >= PROBLEM for p in report["problems"])
    assert all(p["severity"] != "error" for p in report["problems"])
    writer = "valkey-ver" if report["magic"] == "VALKEY" else "redis-ver"
    assert report["aux"][writer] == expected["server_version"]
    assert set(report["databases"]) == set(expected["databases"])
    for db, counts in expected["databases"].items():
        got = report["databases"][db]
        assert set(got) >= DATABASE
        assert (got["keys"], got["expires"], got["by_type"]) == (
            counts["keys"],
            counts["expires"],
            counts["by_type"],
        )
    assert set(report["totals"]) >= TOTALS
    assert report["totals"]["keys"] == sum(d["keys"] for d in expected["databases"].values())
    assert report["totals"]["expires"] == sum(d["expires"] for d in expected["databases"].values())
    assert sorted(report["functions"]) == sorted(expected["functions"])
    assert set(report["modules"]) >= set(expected["modules"])
    listed = {(int(db), row["key"]) for db, rows in expected["keys"].items() for row in rows}
    for big in report["biggest"]:
        assert set(big) >= BIG_KEY
        assert (big["db"], big["key"]) in listed


def test_strict_fails_exactly_the_fixtures_with_warnings(rdb_file: Path, run_cli: RunCli) -> None:
    _code, report = json_report(run_cli, rdb_file)
    warned = any(p["severity"] == "warning" for p in report["problems"])
    strict_code, strict_out, strict_err = run_cli("check", "--strict", rdb_file)
    no_traceback(strict_out, strict_err)
    assert strict_code == (1 if warned else 0)
    assert ("INVALID" in strict_out.splitlines()[0]) == warned


def test_strict_turns_databases_warning_into_exit_1(
    named_rdb: Callable[[str], Path], expected_of: Callable[[Path], dict[str, Any]], run_cli: RunCli
) -> None:
    path = named_rdb(DATABASES_32)
    top_db = max(int(db) for db in expected_of(path)["databases"])
    # The fixture fills db 31, the last of the 'databases 32' its server ran with.
    assert top_db == int(expected_of(path)["config"]["databases"]) - 1 == 31
    code, report = json_report(run_cli, path)
    assert code == 0 and report["valid"] is True
    assert report["problems"] == [
        {
            "severity": "warning",
            "code": "databases",
            "offset": None,
            "message": f"db {top_db} needs a server with 'databases {top_db + 1}' or more "
            "(the default is 16)",
        }
    ]
    code, out, err = run_cli("check", "--strict", path)
    no_traceback(out, err)
    assert code == 1
    assert "INVALID" in out.splitlines()[0]
    strict_code, _report = json_report(run_cli, "--strict", path)
    assert strict_code == 1


@pytest.mark.parametrize("top", [0, 1, 5])
def test_top_limits_biggest_list(
    named_rdb: Callable[[str], Path],
    expected_of: Callable[[Path], dict[str, Any]],
    run_cli: RunCli,
    top: int,
) -> None:
    path = named_rdb(ALL_TYPES)
    keys = sum(d["keys"] for d in expected_of(path)["databases"].values())
    code, report = json_report(run_cli, "--top", str(top), path)
    assert code == 0
    assert len(report["biggest"]) == min(top, keys)


# -- invalid files ----------------------------------------------------------------------------


def cut_points(size: int) -> dict[str, int]:
    """Where to truncate a file of ``size`` bytes, by name."""
    return {
        "empty": 0,
        "inside-magic": 3,
        "after-header": 9,
        "middle": size // 2,
        "before-eof": size - 9,
        "inside-checksum": size - 4,
    }


@pytest.mark.parametrize("where", list(cut_points(100)))
def test_truncated_file_is_invalid_with_offset(
    named_rdb: Callable[[str], Path], tmp_path: Path, run_cli: RunCli, where: str
) -> None:
    src = named_rdb(ALL_TYPES)
    size = cut_points(src.stat().st_size)[where]
    path = truncated_copy(src, tmp_path, size)
    code, report = json_report(run_cli, path)
    assert code == 1
    assert report["valid"] is False
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert errors, report["problems"]
    for problem in errors:
        assert isinstance(problem["offset"], int)
        assert 0 <= problem["offset"] <= size
        assert "\n" not in problem["message"]
    code, out, err = run_cli("check", path)
    no_traceback(out, err)
    assert code == 1
    assert str(path) in out.splitlines()[0] and "INVALID" in out.splitlines()[0]
    for problem in errors:
        # Each problem's message sits on one line of the table, with its offset beside it.
        lines = [line for line in out.splitlines() if problem["message"] in line]
        assert len(lines) == 1, out
        assert str(problem["offset"]) in lines[0].split()


def test_truncated_message_names_the_offset(
    named_rdb: Callable[[str], Path], tmp_path: Path, run_cli: RunCli
) -> None:
    src = named_rdb(ALL_TYPES)
    path = truncated_copy(src, tmp_path, src.stat().st_size // 2)
    _code, report = json_report(run_cli, path)
    error = next(p for p in report["problems"] if p["severity"] == "error")
    assert f"offset {error['offset']}" in error["message"]


def test_cut_right_after_a_complete_key_does_not_blame_that_key(
    named_rdb: Callable[[str], Path], tmp_path: Path, run_cli: RunCli
) -> None:
    src = named_rdb(ALL_TYPES)
    walker = RdbWalker(src.read_bytes())
    *_, (_db, _type, key_off, _voff, end, _n, _exp) = walker.walk()
    last_key = display_key(bytes(walker.key_at(key_off)))
    path = truncated_copy(src, tmp_path, end)  # the last key is whole; its EOF is missing
    code, report = json_report(run_cli, path)
    assert code == 1
    error = next(p for p in report["problems"] if p["severity"] == "error")
    assert error["offset"] == end
    assert last_key not in error["message"], error["message"]


def test_flipped_byte_is_a_checksum_mismatch(
    named_rdb: Callable[[str], Path], tmp_path: Path, run_cli: RunCli
) -> None:
    data = bytearray(named_rdb(ALL_TYPES).read_bytes())
    # Inside string:large's 256 KiB of random bytes: the structure stays readable.
    at = data.index(b"string:large") + 100_000
    data[at] ^= 0xFF
    path = tmp_path / "flipped.rdb"
    path.write_bytes(bytes(data))
    code, report = json_report(run_cli, path)
    assert code == 1
    assert report["valid"] is False
    assert report["checksum"]["status"] == "mismatch"
    assert report["checksum"]["stored"] != report["checksum"]["computed"]
    assert any(p["severity"] == "error" for p in report["problems"])


def test_not_an_rdb_file_is_invalid(tmp_path: Path, run_cli: RunCli) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a backup\n")
    code, report = json_report(run_cli, path)
    assert code == 1
    assert report["valid"] is False
    assert [p["offset"] for p in report["problems"] if p["severity"] == "error"] == [0]


# -- usage and I/O errors ---------------------------------------------------------------------


def bad_paths(tmp_path: Path) -> dict[str, Path]:
    """Paths that cannot be read as a file, by name."""
    a_file = tmp_path / "plain-file"
    a_file.write_bytes(b"REDIS0011")
    return {
        "missing": tmp_path / "no-such.rdb",
        "directory": tmp_path,
        "parent-is-a-file": a_file / "dump.rdb",
    }


@pytest.mark.parametrize("kind", ["missing", "directory", "parent-is-a-file"])
@pytest.mark.parametrize("json_flag", [False, True], ids=["table", "json"])
def test_unreadable_path_is_exit_2_with_error_on_stderr(
    tmp_path: Path, run_cli: RunCli, kind: str, json_flag: bool
) -> None:
    path = bad_paths(tmp_path)[kind]
    args = ("check", "--json", path) if json_flag else ("check", path)
    code, out, err = run_cli(*args)
    no_traceback(out, err)
    assert code == 2
    assert err.startswith("error: ")
    assert str(path) in err
    assert len(err.strip().splitlines()) == 1
    if json_flag:  # the error is a JSON object on stdout too, for what reads --json
        assert json.loads(out) == {
            "schema": "rbkit.error/1",
            "error": err.strip().removeprefix("error: "),
            "exit_code": 2,
        }
    else:
        assert out == ""


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--no-such-option", "{rdb}"],
        ["check", "--top", "-1", "{rdb}"],
        ["check", "--top", "many", "{rdb}"],
        ["check"],
        ["check", "{rdb}", "{rdb}", "--timeline"],
        ["check", "{rdb}", "{rdb}", "--jobs", "0"],
        ["no-such-command"],
    ],
    ids=[
        "unknown-option",
        "negative-top",
        "non-numeric-top",
        "no-file",
        "two-files-timeline",
        "zero-jobs",
        "command",
    ],
)
def test_bad_usage_is_exit_2(
    named_rdb: Callable[[str], Path], run_cli: RunCli, args: list[str]
) -> None:
    rdb = str(named_rdb(ALL_TYPES))
    code, out, err = run_cli(*(a.replace("{rdb}", rdb) for a in args))
    no_traceback(out, err)
    assert code == 2
    assert err.strip(), "a usage error says what is wrong on stderr"


def test_version_via_python_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert toolkit.__version__ in proc.stdout
    assert "Traceback" not in proc.stderr


# -- the full check and --quick -----------------------------------------------------------------


def damaged_inside_a_listpack(src: Path, dst_dir: Path) -> Path:
    """A copy whose first hash listpack has an entry with an encoding byte listpack.c does not
    know (0xf5), and no checksum: only a check of the entries can tell."""
    data = bytearray(src.read_bytes())
    keys = RdbWalker(bytes(data)).walk()
    value_at = next(value for _db, t, _k, value, _end, _n, _e in keys if t == 16)
    blob = string_span(bytes(data), value_at)
    assert blob is not None
    data[blob[0] + 6] = 0xF5  # the first entry's encoding byte, after the listpack header
    data[-8:] = bytes(8)
    dst = dst_dir / "damaged-listpack.rdb"
    dst.write_bytes(bytes(data))
    return dst


def test_quick_says_structure_not_validated(
    named_rdb: Callable[[str], Path], run_cli: RunCli
) -> None:
    code, out, _err = run_cli("check", named_rdb(ALL_TYPES), "--quick")
    assert code == 0
    assert out.splitlines()[0].endswith(
        ": STRUCTURE NOT VALIDATED (--quick: the framing has no errors; values unchecked)"
    )
    assert "VALID" not in out.splitlines()[0].replace("NOT VALIDATED", "")
    code, report = json_report(run_cli, named_rdb(ALL_TYPES), "--quick")
    assert (code, report["validation"], report["verdict"]) == (
        0,
        "quick",
        "structure not validated",
    )


def test_damage_inside_a_value_is_invalid_by_default_and_unseen_by_quick(
    named_rdb: Callable[[str], Path], run_cli: RunCli, tmp_path: Path
) -> None:
    path = damaged_inside_a_listpack(named_rdb(ALL_TYPES), tmp_path)
    code, report = json_report(run_cli, path)
    assert (code, report["verdict"]) == (1, "invalid")
    assert [p["code"] for p in report["problems"] if p["severity"] == "error"] == ["bad_listpack"]
    code, report = json_report(run_cli, path, "--quick")
    assert (code, report["verdict"]) == (0, "structure not validated")


def test_deep_is_accepted_and_changes_nothing(
    named_rdb: Callable[[str], Path], run_cli: RunCli
) -> None:
    plain = run_cli("check", named_rdb(ALL_TYPES))
    deep = run_cli("check", named_rdb(ALL_TYPES), "--deep")
    assert deep == plain and plain[0] == 0
    code, _out, err = run_cli("check", named_rdb(ALL_TYPES), "--deep", "--quick")
    assert code == 2 and "contradict" in err
