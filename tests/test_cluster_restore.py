"""``rbkit restore SET --to redis://ANY-NODE --cluster``: a 3-master Redis 7.0 cluster's backup
set restored into a 2-master cluster, by slot, then compared key by key (plain reads and
PEXPIRETIME, read through the slot's owner) with the source cluster; a set with a shard gone
or a file swapped is refused by the one gate over the set, and --force restores what there is."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cluster_support import cluster, save_set, write_with_cli
from conftest import invoke_cli
from plain_view import key_view
from redis.cluster import RedisCluster

from toolkit.server.process import RedisServer

KEYS = 1200


def _commands() -> list[list[str]]:
    cmds = [["SET", f"k{i}", f"value-{i}"] for i in range(KEYS)]
    cmds += [["HSET", f"{{u{i}}}:h", "name", f"n{i}", "age", str(i)] for i in range(60)]
    cmds += [["ZADD", f"{{u{i}}}:z", "1.5", "a", "2", "b"] for i in range(60)]
    cmds += [["RPUSH", f"l{i}", "x", "y", "z"] for i in range(40)]
    cmds += [["SADD", f"s{i}", "1", "2", "three"] for i in range(40)]
    cmds += [["XADD", f"x{i}", "1-1", "f", "v"] for i in range(10)]
    cmds += [["SET", f"ttl{i}", "v", "PX", "90000000"] for i in range(30)]
    return cmds


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[RedisServer], Path]]:
    with cluster() as nodes:
        write_with_cli(nodes[0], _commands())
        yield nodes, save_set(nodes, tmp_path_factory.mktemp("set"))


def _restore(path: Path, seed: RedisServer, *extra: str) -> tuple[int, dict]:
    url = f"redis://127.0.0.1:{seed.port}"
    run = invoke_cli("restore", path, "--to", url, "--json", "--yes", *extra)
    return run.exit_code, json.loads(run.stdout)


def _rc(node: RedisServer) -> RedisCluster:
    return RedisCluster(host="127.0.0.1", port=node.port)


def _owner(rc: RedisCluster, key: bytes) -> redis.Redis:
    """A plain client of the node that owns ``key``'s slot."""
    return rc.get_redis_connection(rc.get_node_from_key(key))


def _assert_same_keys(source: list[RedisServer], target: list[RedisServer]) -> None:
    """The two clusters hold the same keys, each with the same type, content and expiry,
    read with plain commands on the node owning its slot (a key on another node is missed)."""
    keys = _all_keys(source)
    assert _all_keys(target) == keys
    src, dst = _rc(source[0]), _rc(target[0])
    try:
        for key in keys:
            a, b = _owner(dst, key), _owner(src, key)
            assert key_view(a, key, (7, 0), {}) == key_view(b, key, (7, 0), {}), key
            pexpiretime = ("PEXPIRETIME", key)
            assert a.execute_command(*pexpiretime) == b.execute_command(*pexpiretime), key
    finally:
        src.close()
        dst.close()


def _all_keys(nodes: list[RedisServer]) -> set[bytes]:
    return {k for n in nodes for k in n.client().scan_iter(count=1000)}


def test_a_set_goes_into_a_cluster_of_another_shape(
    source: tuple[list[RedisServer], Path],
) -> None:
    nodes, path = source
    with cluster(nodes=2) as target:
        code, report = _restore(path, target[1], "--cluster")
        assert code == 0, report["reasons"]
        assert report["outcome"] == "verified" and report["verification"]["verified"]
        assert report["verification"]["mode"] == "keyspace"  # the union, read back whole
        assert report["path"] == "payload" and report["target"]["cluster"] is True
        assert sum(n.client().dbsize() for n in target) == len(_all_keys(nodes))
        _assert_same_keys(nodes, target)


def test_the_primaries_are_read_back_as_their_snapshots(
    source: tuple[list[RedisServer], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the snapshot threshold lowered to one key, the verify reads every primary as its
    replication snapshot (side by side) and finds the union of the set's keys."""
    monkeypatch.setattr("toolkit.restore.network.verify.SNAPSHOT_MIN_KEYS", 1)
    nodes, path = source
    with cluster(nodes=2) as target:
        for node in target:
            node.client().config_set("repl-diskless-sync-delay", "0")
            node.client().config_resetstat()
        code, report = _restore(path, target[0], "--cluster")
        assert code == 0, report["reasons"]
        verification = report["verification"]
        assert verification["verified"] and verification["mode"] == "keyspace"
        assert verification["read"]["read_by"] == "snapshot", verification
        for node in target:
            assert node.client().info("commandstats")["cmdstat_sync"]["calls"] == 1
        _assert_same_keys(nodes, target)


def test_an_incomplete_set_is_refused_unless_forced(
    source: tuple[list[RedisServer], Path], tmp_path: Path
) -> None:
    nodes, path = source
    partial = tmp_path / "set"
    shutil.copytree(path, partial)
    shutil.rmtree(partial / "shard-2")
    with cluster(nodes=2) as target:
        code, report = _restore(partial, target[0], "--cluster")
        assert code == 1 and report["outcome"] == "refused"
        assert "slot(s) owned by no shard of the set" in report["reasons"][0]
        assert sum(n.client().dbsize() for n in target) == 0
        code, report = _restore(partial, target[0], "--cluster", "--force")
        assert code == 0, report["reasons"]
        expected = nodes[0].client().dbsize() + nodes[1].client().dbsize()
        assert sum(n.client().dbsize() for n in target) == expected


def test_a_swapped_file_is_refused(source: tuple[list[RedisServer], Path], tmp_path: Path) -> None:
    _, path = source
    swapped = tmp_path / "set"
    shutil.copytree(path, swapped)
    shutil.copy(swapped / "shard-0" / "dump.rdb", swapped / "shard-1" / "dump.rdb")
    with cluster(nodes=2) as target:
        code, report = _restore(swapped, target[0], "--cluster")
        assert code == 1 and report["outcome"] == "refused"
        assert "key(s) in slots it does not own" in report["reasons"][0]
        assert sum(n.client().dbsize() for n in target) == 0


def test_a_set_needs_cluster(source: tuple[list[RedisServer], Path]) -> None:
    _, path = source
    run = invoke_cli("restore", path, "--to", "redis://127.0.0.1:1", "--yes")
    assert run.exit_code == 2 and "pass --cluster" in run.stderr


def test_a_set_of_aof_shards_goes_in_through_the_drill(tmp_path: Path) -> None:
    """Shards holding appendonlydir/: each is loaded into a scratch server here and saved as
    an RDB (as a single AOF backup is), then the set goes in by slot."""
    with cluster(config={"appendonly": "yes", "appendfsync": "always"}) as nodes:
        write_with_cli(nodes[0], _commands()[::7])
        save_set(nodes, tmp_path / "set", aof=True)
        with cluster(nodes=2) as target:
            code, report = _restore(tmp_path / "set", target[0], "--cluster")
            assert code == 0, report["reasons"]
            assert [s["name"] for s in report["steps"]].count("convert") == 3
            _assert_same_keys(nodes, target)
