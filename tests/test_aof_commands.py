"""AOF commands judged as the loading server judges them (toolkit/aof_commands.py).

The command tables are data written from live servers' COMMAND output; here the tables of
the servers this machine has are compared with those servers again, and each kind of refusal
(unknown command or subcommand, a module's command, a container alone, too few arguments) is
checked against what a real redis-server does when it starts on the same AOF.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aof_support import aof, resp, server_load
from conftest import binary, falkordb, invoke_cli

from parsers.aof import command_table as ct
from toolkit.check.backup import check_backup
from toolkit.server.process import (
    ServerBinary,
    find_binaries,
    raw_reply,
    running_server,
)

AOF_FIXTURES = Path(__file__).parent.parent / "fixtures" / "aof"
SUPPORTED = {
    "Redis 6.2",
    "Redis 7.0",
    "Redis 7.2",
    "Redis 7.4",
    "Redis 8.2",
    "Valkey 8.0",
    "Valkey 9.1",
}


def labels() -> set[str]:
    return {t.label.rsplit(".", 1)[0] for t in ct.tables()}


def test_every_supported_server_version_has_a_table() -> None:
    assert labels() == SUPPORTED
    for table in ct.tables():
        assert len(table.commands) > 200, table.label
        assert table.source.startswith(f"COMMAND of {table.server}-server {table.version_text}")


def raw_command(
    server_binary: ServerBinary, modules: tuple[Path, ...] = ()
) -> dict[bytes, tuple[int, frozenset[str]]]:
    """Name -> (arity, flags) of every command and subcommand, read live with COMMAND."""
    with running_server(server_binary, modules=modules) as server:
        client = server.client()
        reply = raw_reply(client, "COMMAND")
    out = {}
    for entry in reply:
        out[entry[0].upper()] = (entry[1], frozenset(f.decode() for f in entry[2]))
        for sub in entry[9] if len(entry) > 9 else []:
            out[sub[0].upper()] = (sub[1], frozenset(f.decode() for f in sub[2]))
    return out


def table_entries(table: dict[bytes, ct.Spec]) -> dict[bytes, tuple[int, frozenset[str]]]:
    out = {}
    for name, spec in table.items():
        out[name] = (spec.arity, spec.flags)
        for sub, s in spec.subcommands.items():
            out[name + b"|" + sub] = (s.arity, s.flags)
    return out


def test_the_tables_of_the_servers_here_equal_their_live_command_output() -> None:
    binaries = {b.version[:2]: b for b in find_binaries()}
    assert {(6, 2), (7, 0), (8, 2)} <= binaries.keys(), binaries
    for table in ct.tables():
        server = binaries.get(table.version[:2]) if table.server == "redis" else None
        if server is None:
            continue  # built elsewhere for the table (fixtures/README.md says how)
        assert server.version == table.version
        assert table_entries(table.commands) == raw_command(server), table.label


def test_the_graph_module_table_equals_falkordb_loaded_live() -> None:
    library = falkordb()
    server = binary("8.2")
    plain, loaded = raw_command(server), raw_command(server, (library,))
    graph = ct.find_module("graph")
    assert graph is not None and graph.library == library.name
    added = {n: v for n, v in loaded.items() if n not in plain}
    assert table_entries(graph.commands) == added


# -- each refusal, against a real server ------------------------------------------------------

GOOD = aof(("SET", "a", "1"), ("SELECT", "1"), ("RPUSH", "l", "x", "y"))
CASES = {
    # name: (the damaged command, rbkit's code, whether Redis 7.0 starts on the file)
    "unknown-name": (("XATD", "s", "*", "f", "v"), "unknown_command", False),
    "control-byte-name": ((b"\x06LUSHDB",), "unknown_command", False),
    "unknown-subcommand": (("XGROUP", "BOGUS", "s", "g"), "unknown_command", False),
    "container-alone": (("XGROUP",), "wrong_arity", False),
    "too-few-arguments": (("INCR",), "wrong_arity", False),
    "module-command": (("JSON.SET", "j", "$", "1"), "module_command", False),
    # Redis ignores arguments past a fixed arity; rbkit calls the file altered (stricter).
    "too-many-arguments": (("GET", "a", "extra"), "wrong_arity", True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_refusal_is_an_error_at_the_command_and_matches_redis_7_0(
    case: str, tmp_path: Path
) -> None:
    command, code, redis_loads = CASES[case]
    damaged = resp(*command)
    path = tmp_path / "appendonly.aof"
    path.write_bytes(GOOD + damaged + resp("SET", "b", "2"))
    result = check_backup(path)
    errors = [p for p in result.problems if p.severity == "error"]
    assert [(p.code, p.offset) for p in errors] == [(code, len(GOOD))], result.problems
    assert errors[0].message.startswith("appendonly.aof: ")
    assert "\x06" not in errors[0].message
    if code == "module_command":
        assert "ReJSON" in errors[0].message
    load = server_load(binary("7.0"), path)
    assert load.loads == redis_loads, load.log
    if case in ("unknown-name", "unknown-subcommand", "module-command"):
        name = command[0] if isinstance(command[0], str) else command[0].decode()
        assert f"Unknown command '{name}' reading the append only file" in load.log


def test_a_valid_file_is_valid_and_redis_loads_it(tmp_path: Path) -> None:
    path = tmp_path / "appendonly.aof"
    path.write_bytes(GOOD + resp("XGROUP", "HELP") + resp("MULTI") + resp("EXEC"))
    result = check_backup(path)
    assert result.valid, result.problems
    assert server_load(binary("7.0"), path).loads


def test_errors_past_ten_kinds_are_counted_in_one_more_line(tmp_path: Path) -> None:
    path = tmp_path / "appendonly.aof"
    path.write_bytes(GOOD + b"".join(resp(f"NOPE{i}", "k") for i in range(14)))
    result = check_backup(path)
    errors = [p for p in result.problems if p.severity == "error"]
    assert len(errors) == 11
    assert "and 4 more command(s) of 4 other kinds" in errors[-1].message


# -- which table ------------------------------------------------------------------------------


def test_a_6_2_preamble_is_judged_by_the_6_2_table_as_redis_6_2_does(tmp_path: Path) -> None:
    source = (AOF_FIXTURES / "redis-6.2-preamble.aof").read_bytes()
    path = tmp_path / "appendonly.aof"
    path.write_bytes(source + resp("FUNCTION", "FLUSH"))
    result = check_backup(path)
    assert result.aof is not None and result.aof.command_table == "Redis 6.2.14"
    assert "written by Redis 6.2" in result.aof.command_table_why
    assert [p.code for p in result.problems if p.severity == "error"] == ["unknown_command"]
    assert not server_load(binary("6.2"), path).loads
    # The same command is fine for a 7.0 writer: Redis 7.0 loads it.
    plain = tmp_path / "plain.aof"
    plain.write_bytes(GOOD + resp("FUNCTION", "FLUSH"))
    assert check_backup(plain).valid
    assert server_load(binary("7.0"), plain).loads


def test_without_a_version_the_newest_redis_table_or_the_one_knowing_every_command(
    tmp_path: Path,
) -> None:
    path = tmp_path / "appendonly.aof"
    path.write_bytes(GOOD)
    result = check_backup(path)
    newest = ct.newest("redis")
    assert result.aof is not None and result.aof.command_table == newest.label
    # DELIFEQ and MSETEX are Valkey 9's: that table judges the file.
    path.write_bytes(GOOD + resp("DELIFEQ", "a", "1"))
    result = check_backup(path)
    assert result.aof is not None and result.aof.command_table.startswith("Valkey 9.1")
    assert "DELIFEQ" in result.aof.command_table_why
    assert result.valid, result.problems


@pytest.mark.parametrize(
    ("server", "version", "table", "nearest"),
    [
        ("redis", (7, 0, 15), "Redis 7.0", False),
        ("redis", (7, 0, 3), "Redis 7.0", False),
        ("redis", (7, 3, 0), "Redis 7.2", True),
        ("redis", (9, 0, 0), "Redis 8.2", True),
        ("redis", (8, 0, 2), "Redis 7.4", True),
        ("redis", (5, 0, 7), "Redis 6.2", False),
        ("valkey", (8, 1, 4), "Valkey 8.0", True),
        ("valkey", (9, 0, 0), "Valkey 8.0", True),
        ("valkey", (7, 2, 5), "Redis 7.2", True),
    ],
)
def test_the_table_for_a_version_is_its_own_or_the_nearest_older(
    server: str, version: tuple[int, ...], table: str, nearest: bool
) -> None:
    chosen, why = ct.table_for(server, version)
    assert chosen.label.rsplit(".", 1)[0] == table
    assert ("nearest older" in why) == nearest or "oldest" in why


# -- --module ---------------------------------------------------------------------------------

JSON_FILE = aof(("SET", "a", "1"), ("JSON.SET", "j", "$", '{"x":1}'))


@pytest.mark.parametrize("given", ["ReJSON", "rejson", "/opt/redis-stack/lib/rejson.so"])
def test_a_declared_module_makes_its_commands_approximate_not_errors(
    given: str, tmp_path: Path
) -> None:
    path = tmp_path / "appendonly.aof"
    path.write_bytes(JSON_FILE)
    result = check_backup(path, modules=(given,))
    assert result.valid, result.problems
    assert result.aof is not None and result.aof.approximate
    (warning,) = [p for p in result.problems if p.code == "approximate"]
    assert "JSON.SET (ReJSON)" in warning.message


def test_a_module_without_a_table_is_assumed_to_provide_the_unknown_commands(
    tmp_path: Path,
) -> None:
    path = tmp_path / "appendonly.aof"
    path.write_bytes(aof(("SET", "a", "1"), ("MYMOD.PUT", "k", "v")))
    assert not check_backup(path).valid
    result = check_backup(path, modules=("/srv/mymod.so",))
    assert result.valid and result.aof is not None and result.aof.approximate
    assert any(
        "assumed a command of the module /srv/mymod.so" in p.message for p in result.problems
    )


def test_cli_module_option_and_report(tmp_path: Path) -> None:
    path = tmp_path / "appendonly.aof"
    path.write_bytes(JSON_FILE)
    refused = invoke_cli("check", path)
    assert refused.exit_code == 1
    assert "module_command" in refused.stdout and "--module ReJSON" in refused.stdout
    accepted = invoke_cli("check", path, "--module", "ReJSON", "--json")
    assert accepted.exit_code == 0
    report = json.loads(accepted.stdout)
    assert report["aof"]["modules"] == ["ReJSON"]
    assert report["aof"]["command_table"]["server"] == ct.newest("redis").label
    assert report["approximate"] is True


def test_diff_of_an_aof_with_module_commands_needs_the_module(tmp_path: Path) -> None:
    source = AOF_FIXTURES / "redis-8.2-aof-base" / "appendonlydir"
    refused = invoke_cli("diff", source, source)
    assert refused.exit_code == 2
    assert "GRAPH.QUERY" in refused.stderr and "--module graph" in refused.stderr
    same = invoke_cli("diff", source, source, "--module", "graph")
    assert same.exit_code == 0, same.stderr
