"""``rbkit diff A B`` end to end: RDB files, saved check reports and live servers (real ones).

The pair (tests/diff_cases.py) differs by: removed user:1 and jobs:1 (db 1); added user:5,
plain and events (db 1); type cart:2; size user:3 and cart:1 (whose TTL also changed); TTL
lost session:a, gained session:b; session:c's TTL moved 500 ms (inside the default tolerance);
user:4's value changed at the same size (only --values sees it). 10 keys differ without
--values.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import binary, invoke_cli
from diff_cases import Pair, write_pair_with_oracle
from diff_support import expected_kinds

from toolkit.server.process import RedisServer, running_server

PASSWORD = "pa55-w0rd-never-shown"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return write_pair_with_oracle(tmp_path_factory.mktemp("diff-cli"))


@pytest.fixture(scope="module")
def pair(made: Pair) -> tuple[Path, Path]:
    return made.before, made.after


@pytest.fixture(scope="module")
def live_before(
    pair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    """A password-protected Redis 7.0 that loaded before.rdb."""
    directory = tmp_path_factory.mktemp("diff-live")
    shutil.copyfile(pair[0], directory / "dump.rdb")
    with running_server(binary("7.0"), directory=directory) as server:
        # Set after the start: running_server's readiness check connects without a password.
        server.client().config_set("requirepass", PASSWORD)
        try:
            yield server
        finally:
            server.client(password=PASSWORD).config_set("requirepass", "")


def diff_json(*args: str | Path) -> tuple[int, dict]:
    run = invoke_cli("diff", "--json", *args)
    assert run.stderr == ""
    return run.exit_code, json.loads(run.stdout)


# --- exit codes and the summary ------------------------------------------------------------


def test_a_file_against_itself_is_the_same_exit_0(pair: tuple[Path, Path]) -> None:
    run = invoke_cli("diff", pair[0], pair[0])
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("rbkit diff: the same keys, types, sizes and TTLs\n")


def test_differing_files_exit_1_with_a_summary_and_no_key_list(pair: tuple[Path, Path]) -> None:
    run = invoke_cli("diff", *pair)
    assert run.exit_code == 1, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "rbkit diff: 10 keys differ: 2 removed, 3 added, 5 changed"
    assert lines[1].startswith(f"  A: {pair[0]} (RDB file), ")
    assert "from aux ctime" in lines[1] or "from file mtime" in lines[1]
    rows = [line.split() for line in lines]
    assert next(r for r in rows if r[:1] == ["all"])[:8] == [
        "all",
        "12",
        "13",
        "3",
        "2",
        "0",
        "5",
        "5",
    ]
    assert "user:3" not in run.stdout  # no --keys: no key list
    assert run.stderr == ""


def test_json_report_counts_every_kind(pair: tuple[Path, Path]) -> None:
    code, data = diff_json(*pair)
    assert code == 1
    assert data["schema"] == "rbkit.diff/1" and data["same"] is False
    assert data["level"] == "keys"
    assert data["a"]["kind"] == "rdb" and data["a"]["name"] == str(pair[0])
    assert data["a"]["time_ms"] is not None and data["a"]["keys_read"] == 12
    assert data["keys_differing"] == 10 and data["keys_expired"] == 0
    kinds = data["by_kind"]
    assert (kinds["removed"], kinds["added"], kinds["type"]) == (2, 3, 1)
    assert (kinds["ttl_gained"], kinds["ttl_lost"], kinds["ttl_changed"]) == (1, 1, 1)
    assert kinds["value"] == 0
    assert data["databases"]["1"]["keys"] == {
        "a": 2,
        "b": 2,
        "added": 1,
        "removed": 1,
        "expired": 0,
        "changed": 0,
        "unchanged": 1,
    }
    assert len(data["keys"]) == 10  # every differing key, without --keys
    families = {p["prefix"]: p["total"] for p in data["prefixes"]}
    assert families["user"] == 3 and families["session"] == 2 and families["cart"] == 2


def test_format_json_is_the_same_as_json(pair: tuple[Path, Path]) -> None:
    one = json.loads(invoke_cli("diff", "--format", "json", *pair).stdout)
    two = json.loads(invoke_cli("diff", "--json", *pair).stdout)
    for data in (one, two):
        for side in ("a", "b"):
            data[side].pop("seconds")
    assert one == two


def test_markdown_format(pair: tuple[Path, Path]) -> None:
    run = invoke_cli("diff", "--format", "markdown", *pair)  # lists keys without --keys
    assert run.exit_code == 1
    text = run.stdout
    assert text.startswith("## Redis diff: before.rdb → after.rdb\n")
    assert "**Result:** 10 keys differ: 2 removed, 3 added, 5 changed" in text
    assert "| `user:1` " in text and "### Differing keys" in text


# --- key list, match, db, values, tolerance ------------------------------------------------


def test_keys_with_a_limit(pair: tuple[Path, Path]) -> None:
    code, data = diff_json("--keys", "--limit", "3", *pair)
    assert code == 1 and len(data["keys"]) == 10  # --limit is for the table and Markdown
    run = invoke_cli("diff", "--keys", "--limit", "3", *pair)
    assert "first 3 of 10 differing keys (--limit):" in run.stdout
    code, data = diff_json("--keys", *pair)
    listed = {(k["db"], k["key"]): k for k in data["keys"]}
    assert len(listed) == 10
    cart = listed[(0, "cart:1")]
    assert set(cart["kinds"]) >= {"size", "ttl_changed"}
    assert (cart["a"]["size"], cart["b"]["size"]) == (3, 4)
    assert cart["b"]["expire_ms"] - cart["a"]["expire_ms"] == 2 * 3_600_000
    assert listed[(1, "events")]["b"]["type"] == "stream"


def test_match_limits_the_keys_compared(pair: tuple[Path, Path]) -> None:
    code, data = diff_json("--keys", "--match", "user:*", *pair)
    assert code == 1
    assert data["match"] == "user:*"
    assert sorted(k["key"] for k in data["keys"]) == ["user:1", "user:3", "user:5"]
    code, _ = diff_json("--match", "queue", *pair)
    assert code == 0  # queue is the same on both sides


def test_db_limits_the_dbs_compared(pair: tuple[Path, Path]) -> None:
    code, data = diff_json("--db", "1", *pair)
    assert code == 1
    assert list(data["databases"]) == ["1"] and data["dbs_compared"] == [1]
    assert data["keys_differing"] == 2


def test_values_finds_a_change_at_the_same_size(made: Pair, pair: tuple[Path, Path]) -> None:
    code, data = diff_json("--values", "--keys", *pair)
    assert code == 1
    assert data["level"] == "values"
    a, b = made.before_keys, made.after_keys
    # Values are compared for the keys both sides hold with the same type.
    assert data["values_compared"] == sum(1 for k in a.keys() & b.keys() if a[k].type == b[k].type)
    assert data["keys_differing"] == len(expected_kinds(a, b, values=True)) == 11
    user4 = next(k for k in data["keys"] if k["key"] == "user:4")
    assert user4["kinds"] == ["value"]
    text = invoke_cli("diff", "--values", *pair).stdout
    assert f"{data['values_compared']} values compared" in text


def test_ttl_tolerance_decides_a_small_ttl_move(pair: tuple[Path, Path]) -> None:
    _, data = diff_json("--ttl-tolerance", "0", *pair)
    assert data["ttl_tolerance_ms"] == 0
    assert data["by_kind"]["ttl_changed"] == 2  # session:c's 500 ms now counts
    _, data = diff_json("--ttl-tolerance", "2s", *pair)
    assert data["ttl_tolerance_ms"] == 2000 and data["by_kind"]["ttl_changed"] == 1


# --- saved check reports -------------------------------------------------------------------


def test_a_saved_check_report_gives_counts_only(pair: tuple[Path, Path], tmp_path: Path) -> None:
    saved = tmp_path / "before.json"
    saved.write_text(invoke_cli("check", "--json", pair[0]).stdout)
    code, data = diff_json(saved, pair[1])
    assert code == 1
    assert data["level"] == "counts" and data["a"]["kind"] == "report"
    assert data["totals"]["keys"]["added"] is None
    assert invoke_cli("diff", saved, pair[0]).exit_code == 0


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("missing.rdb", "{after}"),
        ("{after}", "--format", "yaml"),
        ("--json", "--format", "markdown", "{before}", "{after}"),
        ("--ttl-tolerance", "soon", "{before}", "{after}"),
        ("{garbage}", "{after}"),
        ("redis://127.0.0.1:1/0", "{after}"),
    ],
    ids=["missing-file", "bad-format", "json-and-markdown", "bad-tolerance", "garbage", "refused"],
)
def test_bad_input_is_one_line_and_exit_2(
    pair: tuple[Path, Path], tmp_path: Path, args: tuple[str, ...]
) -> None:
    garbage = tmp_path / "garbage.rdb"
    garbage.write_bytes(b"this is not a backup\n")
    names = {"before": pair[0], "after": pair[1], "garbage": garbage}
    run = invoke_cli("diff", *(a.format(**names) for a in args))
    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 or "Usage" in run.stderr  # typer's own usage errors
    assert "Traceback" not in run.stderr


def test_error_lines_start_with_error(pair: tuple[Path, Path]) -> None:
    run = invoke_cli("diff", "missing.rdb", pair[1])
    assert run.stderr.startswith("error: ") and "missing.rdb" in run.stderr


# --- live servers --------------------------------------------------------------------------


def test_live_server_with_a_password_in_the_url_is_never_shown(
    pair: tuple[Path, Path], live_before: RedisServer
) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{live_before.port}/0"
    outputs = []
    for fmt in ("table", "json", "markdown"):
        run = invoke_cli("diff", "--format", fmt, "--keys", pair[0], url)
        assert run.exit_code == 0, run.stderr  # the server loaded before.rdb
        outputs += [run.stdout, run.stderr]
    run = invoke_cli("diff", "--keys", url, pair[1])
    assert run.exit_code == 1
    outputs += [run.stdout, run.stderr]
    assert all(PASSWORD not in out for out in outputs)
    data = json.loads(outputs[2])
    assert data["b"]["kind"] == "live" and data["b"]["keys_read"] == 12
    assert data["b"]["time_ms"] is not None and data["b"]["version"].startswith("7.0")


def test_live_server_password_from_rediscli_auth(
    pair: tuple[Path, Path], live_before: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDISCLI_AUTH", PASSWORD)
    run = invoke_cli("diff", "--json", f"redis://127.0.0.1:{live_before.port}", pair[1])
    assert run.exit_code == 1, run.stderr
    assert PASSWORD not in run.stdout


def test_wrong_password_is_an_error_that_does_not_echo_it(
    pair: tuple[Path, Path], live_before: RedisServer
) -> None:
    wrong = "wrong-" + PASSWORD
    run = invoke_cli("diff", f"redis://:{wrong}@127.0.0.1:{live_before.port}/0", pair[1])
    assert run.exit_code == 2
    assert run.stderr.startswith("error: ") and run.stderr.count("\n") == 1
    assert wrong not in run.stderr and PASSWORD not in run.stderr and run.stdout == ""
