"""rbkit diff across Redis and Valkey 9.1, and of Redis Stack's module values, with the real
servers as the sides.

Module values are compared by their serialized bytes (rbkit cannot read their content without
the module): the diff says so in a note, and where a module re-serializes a value differently
after loading it (RedisTimeSeries and RedisBloom's Top-K do, proved here with the server alone,
no rbkit involved), those keys show as changed although their content is the same.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from conftest import FIXTURES, binary, invoke_cli, stack_module_paths

from parsers.rdb.walker import RdbWalker
from toolkit.check.backup import check_backup
from toolkit.server.process import RedisServer, running_server


def url(server: RedisServer) -> str:
    return f"redis://127.0.0.1:{server.port}"


def diff(a: str | Path, b: str | Path, *args: str) -> dict[str, Any]:
    run = invoke_cli("diff", a, b, "--values", "--keys", "--limit", "1000", "--json", *args)
    assert run.exit_code in (0, 1), run.stderr
    return json.loads(run.stdout)


def restore(backup: Path, server: RedisServer, *args: str) -> None:
    run = invoke_cli("restore", backup, "--to", url(server), "--yes", "--json", *args)
    assert run.exit_code == 0, run.stdout


def changed(report: dict[str, Any]) -> set[str]:
    """The keys the diff lists, less those only expired."""
    return {k["key"] for k in report["keys"] or [] if k["kinds"] != ["expired"]}


def test_valkey_backup_diffs_clean_against_valkey_and_by_one_field_ttl_against_redis() -> None:
    path = FIXTURES / "valkey-9.1-all-types.rdb"
    with running_server(binary("9.1")) as vk, running_server(binary("8.2")) as rd:
        restore(path, vk)
        restore(path, rd, "--force")  # the field TTL past Redis's cap goes without its TTL
        same = diff(path, url(vk))
        assert same["same"] and same["keys_differing"] == 0
        # Read by its snapshot in its own format (REPLCONF version: else Valkey sends RDB 11,
        # which cannot hold a hash with field TTLs).
        assert same["b"]["via"] == "snapshot"
        across = diff(url(vk), url(rd))
        assert changed(across) == {"hash:fttl:beyond-redis-cap"}
        assert across["by_kind"]["value"] == 1
        # The Redis side against the file: the same single difference (and the 2-second keys
        # of the fixture, long expired, counted as expired, not lost).
        assert changed(diff(path, url(rd))) == {"hash:fttl:beyond-redis-cap"}


def test_redis_backup_diffs_clean_against_valkey_after_restore() -> None:
    path = FIXTURES / "redis-7.0-all-types.rdb"
    with running_server(binary("9.1")) as vk:
        restore(path, vk)
        report = diff(path, url(vk))
        assert report["keys_differing"] == 0, report["keys"]


def server_dump_bytes(path: Path) -> dict[bytes, bytes]:
    """Each module value's bytes as Redis Stack itself re-serializes it after loading the file
    (DUMP less the type byte and its 10-byte footer), no rbkit involved."""
    with running_server(binary("7.4"), modules=stack_module_paths(),
                        config={"dbfilename": "dump.rdb"}) as server:  # fmt: skip
        shutil.copyfile(path, server.directory / "dump.rdb")
        server.stop()
        server.start()
        c = server.client()
        return {k: c.dump(k)[1:-10] for k in c.scan_iter() if c.type(k) != b"hash"}


def test_stack_module_values_diff_by_their_serialized_bytes() -> None:
    path = FIXTURES / "stack-7.4-modules.rdb"
    data = path.read_bytes()
    walker = RdbWalker(data)
    in_file = {
        bytes(walker.key_at(k)): data[v:end]
        for _db, t, k, v, end, _n, _x in walker.walk()
        if t == 7
    }
    reserialized = server_dump_bytes(path)
    unstable = {k.decode() for k, b in reserialized.items() if b != in_file[k]}
    # The server's own re-serialization of RedisTimeSeries and Top-K values differs from the
    # file's bytes; every other module value comes back byte for byte.
    assert unstable == {"ts:temp", "ts:temp:avg", "topk:words"}
    with running_server(binary("7.4"), modules=stack_module_paths()) as stack:
        restore(path, stack)
        report = diff(path, url(stack), "--via", "scan")  # DUMP, as the oracle above
        assert changed(report) == unstable
        assert any("compared by their serialized bytes" in n for n in report["a"]["notes"])


def test_an_aof_of_module_commands_names_each_module() -> None:
    """Redis Stack's aof-base fixture holds RedisJSON, RedisBloom and RedisTimeSeries commands
    (its module values reach the AOF as commands): without the modules, each command is named
    with the module and library that provide it; with them the check passes."""

    target = (
        Path(__file__).resolve().parent.parent / "fixtures/aof/stack-7.4-aof-base/appendonlydir"
    )
    result = check_backup(target)
    messages = " ".join(p.message for p in result.problems if p.code == "module_command")
    # The first ten kinds are worded one by one (the rest counted in one more line).
    for module, library in (("ReJSON", "rejson.so"), ("bf", "redisbloom.so")):
        assert f"the module {module} ({library})" in messages
    assert "more command(s) of" in messages
    assert check_backup(target, modules=("ReJSON", "bf", "timeseries")).valid
