"""What the text output looks like to a person: the verdict first, prose within the width,
colour on a terminal only, one style for sizes, counts, times and TTL changes, and a help
page in plain words with examples."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT
from test_diff_render import keys_report

from toolkit.check.backup import check_backup
from toolkit.check.render import render_check
from toolkit.diff.render import render_table
from toolkit.text import count, headline, layout, plural, pre, size, ttl_change, utc_iso

AOF = ROOT / "fixtures" / "aof"
ESC = "\x1b"
COMMANDS = ("check", "restore", "diff")
PYTHON_TYPES = re.compile(r"<(bool|path|str|text|int|float|list\[[a-z]+\]|int range)>|\{[A-Z]+\}")


def rbkit(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``rbkit ARGS`` with stdout and stderr pipes (not a terminal), ``env`` added, and no
    COLUMNS/NO_COLOR/FORCE_COLOR from the test's own environment unless given."""
    environ = {
        k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR", "FORCE_COLOR")
    }
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def prose_lines(text: str) -> list[str]:
    """The lines of a report that are not in a table (a table: the header line above a row of
    dashes, down to the next blank line) nor a server's log lines."""
    lines = text.split("\n")
    in_table = [False] * len(lines)
    for i, line in enumerate(lines):
        if i and re.fullmatch(r"[-\s|:]+", line) and "--" in line:
            j = i - 1
            while j < len(lines) and lines[j].strip():
                in_table[j] = True
                j += 1
    return [line for line, table in zip(lines, in_table, strict=True) if not table]


def assert_fits(text: str, width: int) -> None:
    long = [line for line in prose_lines(text) if len(line) > width]
    assert not long, f"prose lines over {width} columns:\n" + "\n".join(long)


# -- width ------------------------------------------------------------------------------------


RDB = "fixtures/rdb/redis-7.0-all-types.rdb"


@pytest.mark.parametrize(
    ("args", "width", "wraps"),
    [
        (("check", RDB), 80, False),
        (("check", RDB), 50, True),
        (("check", RDB, "--quick"), 80, True),
        (("check", "fixtures/aof/redis-7.0-rdb-base/appendonlydir"), 80, True),
        (("check", "fixtures/aof/damaged/truncated-last-command.aof"), 60, True),
        (("diff", RDB, "fixtures/rdb/redis-8.2-all-types.rdb"), 80, True),
        (("diff", RDB, "fixtures/rdb/redis-8.2-all-types.rdb"), 60, True),
        (("restore", RDB, "--stage-only"), 80, True),
    ],
    ids=["check", "check-50", "quick", "aof", "aof-damaged", "diff", "diff-60", "drill"],
)
def test_prose_fits_the_width(args: tuple[str, ...], width: int, wraps: bool) -> None:
    wide = rbkit(*args, COLUMNS="400")
    narrow = rbkit(*args, COLUMNS=str(width))
    assert narrow.returncode == wide.returncode, narrow.stderr
    assert_fits(narrow.stdout, width)
    # Where the unwrapped report has longer prose lines, this test could fail: it did wrap.
    assert wraps == any(len(line) > width for line in prose_lines(wide.stdout)), wide.stdout
    if args[0] == "check":  # nothing lost in the wrapping: the same words, in the same order
        assert narrow.stdout.split() == wide.stdout.split()


def test_verdict_is_the_first_line_and_stays_whole() -> None:
    out = rbkit("check", "fixtures/rdb/redis-7.0-all-types.rdb", "--quick", COLUMNS="40").stdout
    assert out.split("\n")[0] == "fixtures/rdb/redis-7.0-all-types.rdb: STRUCTURE NOT VALIDATED"
    drill = rbkit("restore", "fixtures/rdb/redis-7.0-all-types.rdb", "--stage-only", COLUMNS="80")
    first = drill.stdout.split("\n")[0]
    assert first.startswith(
        "restore drill (--stage-only) of fixtures/rdb/redis-7.0-all-types.rdb: VERIFIED"
    )
    assert len(first) <= 80


def test_layout_wraps_prose_and_keeps_tables() -> None:
    table = pre("a" * 100)
    text = layout(
        [headline("x" * 30 + ": VALID", " because" * 12), "  note: " + "word " * 30, table], 50
    )
    lines = text.split("\n")
    assert lines[0].startswith("x" * 30 + ": VALID")
    assert all(len(line) <= 50 for line in lines[:-1])
    assert lines[-1] == "a" * 100
    note = next(i for i, line in enumerate(lines) if line.startswith("  note: word"))
    assert lines[1].startswith("  because") and lines[note + 1].startswith("    word")


# -- colour -----------------------------------------------------------------------------------


def on_a_terminal(*args: str, **env: str) -> str:
    """stdout of ``rbkit ARGS`` run with a pseudo-terminal as its stdout."""
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environ.update(env, TERM="xterm")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "toolkit", *args],
        cwd=ROOT,
        stdout=follower,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=environ,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process is done
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()


def test_verdict_coloured_on_a_terminal_only() -> None:
    rdb = "fixtures/rdb/redis-7.0-all-types.rdb"
    assert f"{ESC}[1;32mVALID{ESC}[0m" in on_a_terminal("check", rdb)
    assert ESC not in on_a_terminal("check", rdb, NO_COLOR="1")
    piped = rbkit("check", rdb)
    assert ESC not in piped.stdout + piped.stderr
    assert ESC not in rbkit("check", rdb, NO_COLOR="1", FORCE_COLOR="1").stdout


def test_invalid_red_and_json_never_coloured() -> None:
    damaged = "fixtures/aof/damaged/garbage-inserted.aof"
    assert f"{ESC}[1;31mINVALID{ESC}[0m" in rbkit("check", damaged, FORCE_COLOR="1").stdout
    out = on_a_terminal("check", damaged, "--json")
    assert ESC not in out
    assert json.loads(out)["verdict"] == "invalid"


def test_diff_sentence_coloured_by_its_outcome() -> None:
    a, b = "fixtures/rdb/redis-7.0-all-types.rdb", "fixtures/rdb/redis-7.0-strings-only.rdb"
    differ = rbkit("diff", a, b, FORCE_COLOR="1").stdout.split("\n")[0]
    assert differ.startswith(f"rbkit diff: {ESC}[1;33m")
    same = rbkit("diff", a, a, FORCE_COLOR="1").stdout.split("\n")[0]
    assert same.startswith(f"rbkit diff: {ESC}[1;32mthe same keys")


# -- one style --------------------------------------------------------------------------------


def test_one_size_and_number_style() -> None:
    assert [size(n) for n in (0, 86, 1023, 1024, 420761, 5 << 30, None)] == [
        "0 B",
        "86 B",
        "1023 B",
        "1.0 KB",
        "410.9 KB",
        "5.0 GB",
        "-",
    ]
    assert count(11_200_000) == "11,200,000" and count(None) == "-"
    assert plural(1, "key") == "1 key" and plural(2000, "batch", "batches") == "2,000 batches"


def test_times_are_iso_utc() -> None:
    assert utc_iso(1_795_472_880_000) == "2026-11-23T22:28:00Z"
    result = check_backup(FIXTURES / "redis-7.0-all-types.rdb")
    assert result.aux["ctime"] == "1795472880"  # the file's own field, kept as written
    text = render_check(result)
    assert "ctime=2026-11-23T22:28:00Z" in text and "1795472880" not in text


def test_ts_annotations_shown_as_iso_times(tmp_path: Path) -> None:
    aof = tmp_path / "appendonly.aof"
    aof.write_bytes(
        b"#TS:1795472880\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n#TS:1795472940\r\n"
    )
    text = render_check(check_backup(aof))
    assert "#TS annotations from 2026-11-23T22:28:00Z to 2026-11-23T22:29:00Z" in text


def test_aof_bytes_not_computed_show_a_dash() -> None:
    out = rbkit("check", "fixtures/aof/redis-7.0-rdb-base/appendonlydir").stdout
    header = next(line for line in out.split("\n") if line.startswith("db ") and "bytes" in line)
    column = header.index("bytes") + len("bytes")
    rows = [line for line in out.split("\n") if re.match(r"(\d+|all)\s", line)]
    assert rows and all(line[column - 1] == "-" for line in rows), out
    assert " 0 B" not in out
    report = json.loads(
        rbkit("check", "fixtures/aof/redis-7.0-rdb-base/appendonlydir", "--json").stdout
    )
    assert report["totals"]["bytes"] is None
    assert all(db["bytes"] is None for db in report["databases"].values())
    rdb = json.loads(rbkit("check", "fixtures/rdb/redis-7.0-all-types.rdb", "--json").stdout)
    assert rdb["totals"]["bytes"] > 0


def test_ttl_change_shown_as_a_difference() -> None:
    assert ttl_change(3_600_000, 60_000) == "TTL 1 h 0 m -> 1 m 0 s (-59 m 0 s)"
    assert ttl_change(60_000, 90_000) == "TTL 1 m 0 s -> 1 m 30 s (+30 s)"
    text = render_table(keys_report(), keys=True)
    row = next(line for line in text.split("\n") if "cart:9" in line)
    # cart:9 has 60 s left in A and 2 h in B (each side's TTL at its own time).
    assert "TTL 1 m 0 s -> 2 h 0 m (+1 h 59 m)" in row


# -- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_has_examples_and_no_python_types(command: str, flag: str) -> None:
    run = rbkit(command, flag, COLUMNS="80")
    assert run.returncode == 0, run.stderr
    assert "Examples:" in run.stdout
    assert f"rbkit {command} " in run.stdout.split("Examples:")[1]
    assert not PYTHON_TYPES.search(run.stdout), PYTHON_TYPES.search(run.stdout)
    assert all(len(line) <= 80 for line in run.stdout.split("\n")), run.stdout


def test_top_level_help_in_plain_words() -> None:
    run = rbkit("-h", COLUMNS="80")
    assert run.returncode == 0
    assert "--install-completion" in run.stdout
    assert not PYTHON_TYPES.search(run.stdout)


def test_metavars_say_what_a_value_is() -> None:
    out = rbkit("diff", "-h", COLUMNS="120").stdout
    for option, metavar in [
        ("--format", "table|json|markdown"),
        ("--limit", "N"),
        ("--match", "GLOB"),
        ("--db", "N"),
        ("--ttl-tolerance", "DURATION"),
        ("--module", "NAME|PATH"),
    ]:
        assert re.search(rf"{option}(\s+-\w)?\s+{re.escape(metavar)}\s", out), option
    assert re.search(r"--keys\s{3,}List", out)  # a flag: no metavar at all
    assert "Usage: rbkit diff [OPTIONS] A B" in out


def test_restore_options_grouped_by_mode() -> None:
    out = rbkit("restore", "-h", COLUMNS="100").stdout
    panels = re.findall(r"╭─ (.+?) ─", out)
    assert panels[-8:] == [
        "File restore (--config / --url)",
        "Network restore (--to)",
        "Selective restore (--to only)",
        "Drill (--stage-only)",
        "Rollback (--rollback DIR)",
        "Point in time (an AOF backup; any mode but --rollback)",
        "Connection (as redis-cli's)",
        "Common",
    ]
    drill = out.split("Drill (--stage-only)")[1].split("╰")[0]
    assert "--stage-only" in drill and "--to" not in drill


def test_shell_completion_completes_commands_and_choices(tmp_path: Path) -> None:
    def complete(words: str, cword: int) -> list[str]:
        env = {"_RBKIT_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
        return rbkit(**env).stdout.split()

    assert complete("rbkit re", 1) == ["restore"]
    assert complete("rbkit diff --format m", 3) == ["markdown"]
    assert "--stage-only" in complete("rbkit restore --st", 2)
    # typer detects the shell from the parent process (sh under `sh -c`, whatever runs the
    # suite) unless told to take the one named: its test switch for that.
    install = rbkit(
        "--install-completion",
        "bash",
        HOME=str(tmp_path),
        SHELL="/bin/bash",
        _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1",
    )
    assert install.returncode == 0, (install.stdout, install.stderr)
    script = tmp_path / ".bash_completions" / "rbkit.sh"
    assert "_RBKIT_COMPLETE" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()
