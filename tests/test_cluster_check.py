"""``rbkit check --cluster SET`` against a real 3-master Redis 7.0 cluster on loopback: keys
written with ``redis-cli -c``, each node SAVEd, the set assembled (a folder per shard with its
dump.rdb and nodes.conf), then checked whole, with a shard removed, with a shard's file swapped
for another's, and in the layout ``redis-cli --cluster backup`` writes. Expected slots, key
counts and key slots come from the live cluster (CLUSTER SLOTS, DBSIZE, CLUSTER KEYSLOT)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import time
from array import array
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cluster_support import cluster, cluster_node, owned_ranges, redis_cli, save_set, write_with_cli
from conftest import invoke_cli
from json_schemas import assert_valid
from rdb_bytes import rstr

from parsers.cluster import slots
from parsers.cluster.slots import key_slot, name_slots, py_key_slot
from parsers.rdb.crc64 import crc64
from parsers.rdb.walker import RdbWalker
from toolkit.server.process import RedisServer

HOSTILE = "\x1b[31mred\x1b[0m"


def _commands() -> list[list[str]]:
    cmds = [["SET", f"k{i}", str(i)] for i in range(1500)]
    cmds += [["HSET", f"{{user{i}}}:h", "f", "v", "g", "w"] for i in range(50)]
    cmds += [["RPUSH", f"{{user{i}}}:l", "a", "b"] for i in range(50)]
    cmds += [["SADD", f"s{i}", "x", "y"] for i in range(30)]
    cmds += [["SET", f"ttl{i}", "v", "EX", "100000"] for i in range(40)]
    cmds += [["SET", f"{HOSTILE}{i}", "v"] for i in range(20)]
    return cmds


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[RedisServer], Path]]:
    """The running cluster and its backup set (the cluster stays up for the comparisons)."""
    with cluster() as nodes:
        write_with_cli(nodes[0], _commands())
        yield nodes, save_set(nodes, tmp_path_factory.mktemp("set"))


def _check(path: Path, *extra: str) -> tuple[int, dict]:
    run = invoke_cli("check", "--cluster", "--json", path, *extra)
    assert run.exit_code in (0, 1), run.stderr
    report = json.loads(run.stdout)
    for shard in report["shards"]:
        if shard["check"] is not None:
            assert_valid(shard["check"])
    return run.exit_code, report


def _node_name(node: RedisServer) -> str:
    node_id = node.client().execute_command("CLUSTER", "MYID")
    node_id = node_id.decode() if isinstance(node_id, bytes) else node_id
    return f"127.0.0.1:{node.port} ({node_id[:8]})"


def test_key_slot_is_the_servers(live: tuple[list[RedisServer], Path]) -> None:
    nodes, _ = live
    c = nodes[0].client()
    keys = [
        b"foo",
        b"123456789",
        b"{user1000}.following",
        b"foo{}{bar}",
        b"foo{{bar}}zap",
        b"foo{bar}{zap}",
        b"{}",
        b"a{b",
        b"}{x}",
        b"",
        b"\xff\x00{\x01}\x80",
        bytes(range(256)),
    ]
    expected = [c.execute_command("CLUSTER", "KEYSLOT", key) for key in keys]
    for key, slot in zip(keys, expected, strict=True):
        assert key_slot(key) == py_key_slot(key) == slot, key
    # The names of a batch of key columns, back to back: by the C helper and without it.
    offsets = array("q", [0])
    for key in keys:
        offsets.append(offsets[-1] + len(key))
    names = b"".join(keys)
    by_c = name_slots(names, memoryview(offsets), len(keys))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(slots, "_speedups", None)
        by_python = name_slots(names, memoryview(offsets), len(keys))
    assert memoryview(by_c).cast("H").tolist() == expected
    assert by_python == by_c


def test_the_set_is_whole(live: tuple[list[RedisServer], Path]) -> None:
    nodes, path = live
    code, report = _check(path)
    assert code == 0 and report["valid"] and report["problems"] == []
    assert report["layout"] == "folders"
    assert report["slots"] == {"missing": [], "doubled": []} and report["strays"] == 0
    sizes = [n.client().dbsize() for n in nodes]
    assert report["totals"]["keys"] == sum(sizes)
    assert report["totals"]["expires"] == 40
    for node, shard, size in zip(nodes, report["shards"], sizes, strict=True):
        assert shard["verdict"] == "valid" and shard["keys"] == size
        assert [tuple(r) for r in shard["slots"]] == owned_ranges(node)
        assert shard["node"]["address"] == f"127.0.0.1:{node.port}"
        assert shard["slot_info"] is None  # Redis 7.0 writes none
    text = invoke_cli("check", "--cluster", path)
    assert text.exit_code == 0
    assert text.stdout.startswith(f"{path}: VALID (cluster backup set, 3 shards")
    assert "slots: all 16384 owned by exactly one shard" in text.stdout


def test_a_missing_shard_names_its_slots(
    live: tuple[list[RedisServer], Path], tmp_path: Path
) -> None:
    nodes, path = live
    partial = tmp_path / "set"
    shutil.copytree(path, partial)
    shutil.rmtree(partial / "shard-1")
    code, report = _check(partial)
    assert code == 1 and not report["valid"]
    expected = [{"range": list(r), "node": _node_name(nodes[1])} for r in owned_ranges(nodes[1])]
    assert report["slots"]["missing"] == expected
    assert [p["code"] for p in report["problems"]] == ["missing_slots"]
    first, last = owned_ranges(nodes[1])[0]
    text = invoke_cli("check", "--cluster", partial)
    assert text.exit_code == 1 and f"owned by no shard of the set: {first}-{last}" in text.stdout


def test_a_swapped_file_names_its_strays(
    live: tuple[list[RedisServer], Path], tmp_path: Path
) -> None:
    nodes, path = live
    swapped = tmp_path / "set"
    shutil.copytree(path, swapped)
    shutil.copy(swapped / "shard-2" / "dump.rdb", swapped / "shard-1" / "dump.rdb")
    code, report = _check(swapped)
    assert code == 1
    shard = report["shards"][1]
    assert shard["verdict"] == "valid"  # the file itself is sound
    assert shard["strays"] == shard["keys"] == nodes[2].client().dbsize() == report["strays"]
    c2 = nodes[2].client()
    ranges2 = owned_ranges(nodes[2])
    assert len(shard["stray_examples"]) == 5
    for example in shard["stray_examples"]:
        key = example["key"].encode()
        assert c2.exists(key) and example["slot"] == c2.execute_command("CLUSTER", "KEYSLOT", key)
        assert any(a <= example["slot"] <= b for a, b in ranges2)
    assert [p["code"] for p in report["problems"]] == ["stray_keys"]
    text = invoke_cli("check", "--cluster", swapped)
    assert f"shard shard-1: {shard['strays']} key(s) in slots it does not own" in text.stdout
    assert "\x1b" not in text.stdout


def test_hostile_stray_names_are_escaped(
    live: tuple[list[RedisServer], Path], tmp_path: Path
) -> None:
    _, path = live
    # A shard whose file is another's: the first strays include the hostile names when the
    # file holds them; the text report shows them escaped, the JSON as they are.
    for source in ("shard-0", "shard-1", "shard-2"):
        swapped = tmp_path / source
        shutil.copytree(path, swapped)
        target = "shard-1" if source != "shard-1" else "shard-0"
        shutil.copy(swapped / source / "dump.rdb", swapped / target / "dump.rdb")
        text = invoke_cli("check", "--cluster", swapped)
        assert text.exit_code == 1 and "\x1b" not in text.stdout
        assert "stray_keys" in text.stdout


def test_the_redis_cli_backup_layout(live: tuple[list[RedisServer], Path], tmp_path: Path) -> None:
    nodes, _ = live
    out = tmp_path / "cli-backup"
    out.mkdir()
    subprocess.run(
        [str(redis_cli()), "--cluster", "backup", f"127.0.0.1:{nodes[0].port}", str(out)],
        capture_output=True,
        check=True,
    )
    assert (out / "nodes.json").is_file()
    code, report = _check(out)
    assert code == 0 and report["layout"] == "redis-cli", report["problems"]
    assert report["totals"]["keys"] == sum(n.client().dbsize() for n in nodes)
    by_address = {s["node"]["address"]: s for s in report["shards"]}
    for node in nodes:
        shard = by_address[f"127.0.0.1:{node.port}"]
        assert [tuple(r) for r in shard["slots"]] == owned_ranges(node)
        assert shard["keys"] == node.client().dbsize()
    # The file of one master gone: its slots are missing, named after nodes.json.
    gone = next(out.glob(f"redis-node-127.0.0.1-{nodes[2].port}-*.rdb"))
    gone.unlink()
    code, report = _check(out)
    assert code == 1
    assert report["slots"]["missing"] == [
        {"range": list(r), "node": _node_name(nodes[2])} for r in owned_ranges(nodes[2])
    ]


def test_slot_info_of_redis_8_against_the_keys(tmp_path: Path) -> None:
    """Redis 8.2 writes a SLOT_INFO record per slot: it agrees with the keys; a record edited
    to say one key more is named (the file saved without checksum, so the edit is the only
    problem)."""
    with cluster("8.2", nodes=1, config={"rdbchecksum": "no"}) as (node,):
        c = node.client()
        for i in range(300):
            c.set(f"{{t{i % 40}}}:{i}", i)
        c.save()
        per_slot = {
            s: c.execute_command("CLUSTER", "COUNTKEYSINSLOT", s)
            for s in {c.execute_command("CLUSTER", "KEYSLOT", f"{{t{i}}}") for i in range(40)}
        }
        folder = tmp_path / "set" / "node"
        folder.mkdir(parents=True)
        shutil.copy(node.directory / "dump.rdb", folder / "dump.rdb")
        shutil.copy(node.directory / "nodes.conf", folder / "nodes.conf")
    code, report = _check(tmp_path / "set")
    shard = report["shards"][0]
    assert code == 0 and shard["slot_info"] == {"slots": len(per_slot), "mismatched": []}
    assert report["totals"]["keys"] == sum(per_slot.values()) == 300
    data = bytearray((folder / "dump.rdb").read_bytes())
    walker = RdbWalker(bytes(data))
    for _ in walker.walk():
        pass
    record = walker.slot_info[0]
    assert record.keys < 63 and data[record.offset] == 244
    at = data.index(bytes([record.keys]), record.offset + 1 + (1 if record.slot < 64 else 2))
    data[at] += 1
    (folder / "dump.rdb").write_bytes(bytes(data))
    code, report = _check(tmp_path / "set")
    assert code == 0  # a warning: the keys are all there
    assert report["shards"][0]["slot_info"]["mismatched"] == [[record.slot, record.slot]]
    (problem,) = report["problems"]
    assert problem["code"] == "slot_info_mismatch" and problem["severity"] == "warning"
    assert f"slot {record.slot}: it says {record.keys + 1} key(s)" in problem["message"]
    assert per_slot[record.slot] == record.keys


def test_not_a_set(tmp_path: Path) -> None:
    run = invoke_cli("check", "--cluster", tmp_path)
    assert run.exit_code == 2 and "no shard folders" in run.stderr
    run = invoke_cli("check", "--cluster", "--quick", tmp_path)
    assert run.exit_code == 2 and "--quick does not apply" in run.stderr


def test_a_shard_twice_doubles_its_slots(
    live: tuple[list[RedisServer], Path], tmp_path: Path
) -> None:
    nodes, path = live
    doubled = tmp_path / "set"
    shutil.copytree(path, doubled)
    shutil.copytree(doubled / "shard-0", doubled / "shard-0-again")
    code, report = _check(doubled)
    assert code == 1 and report["strays"] == 0
    assert report["slots"]["doubled"] == [
        {"range": list(r), "shards": ["shard-0", "shard-0-again"]} for r in owned_ranges(nodes[0])
    ]
    assert [p["code"] for p in report["problems"]] == ["doubled_slots"]


def test_a_set_of_aof_shards(tmp_path: Path) -> None:
    """Nodes with appendonly yes: each shard folder holds the node's appendonlydir/ (base RDB
    and incremental AOF) and nodes.conf; their keys are hashed from the AOF's keyspace model."""
    with cluster(config={"appendonly": "yes", "appendfsync": "always"}) as nodes:
        write_with_cli(nodes[0], _commands())
        sizes = [n.client().dbsize() for n in nodes]
        save_set(nodes, tmp_path / "set", aof=True)
        ranges = [owned_ranges(n) for n in nodes]
    code, report = _check(tmp_path / "set")
    assert code == 0, report["problems"]
    assert [s["keys"] for s in report["shards"]] == sizes
    assert [[tuple(r) for r in s["slots"]] for s in report["shards"]] == ranges
    assert all(s["check"]["format"] == "aof" for s in report["shards"])
    # One shard's AOF in another's folder: its keys are strays there.
    shutil.rmtree(tmp_path / "set" / "shard-1" / "appendonlydir")
    shutil.copytree(
        tmp_path / "set" / "shard-2" / "appendonlydir",
        tmp_path / "set" / "shard-1" / "appendonlydir",
    )
    code, report = _check(tmp_path / "set")
    assert code == 1 and report["shards"][1]["strays"] == sizes[2]


def test_a_replicas_backup_stands_for_its_master(
    live: tuple[list[RedisServer], Path], tmp_path: Path
) -> None:
    nodes, path = live
    with cluster_node() as replica:
        master = nodes[1]
        master_id = master.client().execute_command("CLUSTER", "MYID")
        master_id = master_id.decode() if isinstance(master_id, bytes) else master_id
        replica.client().execute_command(
            "CLUSTER", "MEET", "127.0.0.1", master.port, master.config["cluster-port"]
        )
        deadline = time.monotonic() + 30
        while True:  # REPLICATE needs the master in the replica's table first
            try:
                replica.client().execute_command("CLUSTER", "REPLICATE", master_id)
                break
            except redis.ResponseError:
                assert time.monotonic() < deadline, "the replica never learnt its master"
                time.sleep(0.05)
        want = master.client().dbsize()
        while replica.client().info("replication").get("master_link_status") != "up" or (
            replica.client().dbsize() != want
        ):
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.05)
        replica.client().save()
        with_replica = tmp_path / "set"
        shutil.copytree(path, with_replica)
        shutil.copy(replica.directory / "dump.rdb", with_replica / "shard-1" / "dump.rdb")
        shutil.copy(replica.directory / "nodes.conf", with_replica / "shard-1" / "nodes.conf")
    code, report = _check(with_replica)
    assert code == 0, report["problems"]
    shard = report["shards"][1]
    assert (
        shard["replica_of"] == master_id and shard["node"]["address"] != f"127.0.0.1:{master.port}"
    )
    assert [tuple(r) for r in shard["slots"]] == owned_ranges(master)
    assert shard["keys"] == want and report["strays"] == 0


def test_valkey_slot_info_aux_fields(live: tuple[list[RedisServer], Path], tmp_path: Path) -> None:
    """Valkey 8 writes a ``slot-info`` aux field ("slot,keys,expires", rdb.c rdbSaveDb) before
    each slot's keys: a file built so, one field saying a key too many. The slots are the live
    server's CLUSTER KEYSLOT."""
    nodes, _ = live
    c = nodes[0].client()
    names = [b"alpha", b"beta", b"{t}1", b"{t}2", b"{t}3", b"gamma"]
    by_slot: dict[int, list[bytes]] = {}
    for name in names:
        by_slot.setdefault(c.execute_command("CLUSTER", "KEYSLOT", name), []).append(name)
    wrong = min(by_slot)
    out = bytearray(b"REDIS0011")
    out += b"\xfa" + rstr(b"valkey-ver") + rstr(b"8.0.1")
    out += b"\xfe\x00\xfb" + bytes([len(names), 0])
    for slot, keys in sorted(by_slot.items()):
        said = len(keys) + (slot == wrong)
        out += b"\xfa" + rstr(b"slot-info") + rstr(b"%d,%d,0" % (slot, said))
        for key in keys:
            out += b"\x00" + rstr(key) + rstr(b"v")
    code, report = _check(_one_node_set(tmp_path, out))
    shard = report["shards"][0]
    assert code == 0 and shard["keys"] == len(names)
    assert shard["slot_info"] == {"slots": len(by_slot), "mismatched": [[wrong, wrong]]}
    assert [p["code"] for p in report["problems"]] == ["slot_info_mismatch"]


def _one_node_set(tmp_path: Path, rdb: bytearray) -> Path:
    """A set of one shard owning every slot, its RDB ``rdb`` (the CRC-64 appended)."""
    rdb += b"\xff"
    rdb += struct.pack("<Q", crc64(bytes(rdb)))
    folder = tmp_path / "set" / "node"
    folder.mkdir(parents=True)
    (folder / "dump.rdb").write_bytes(bytes(rdb))
    (folder / "nodes.conf").write_text(
        f"{'a' * 40} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16383\n"
        "vars currentEpoch 1 lastVoteEpoch 0\n"
    )
    return folder.parent


def test_keys_outside_db_0(tmp_path: Path) -> None:
    """A cluster node refuses to start with keys outside db 0 (cluster.c,
    verifyClusterConfigWithData)."""
    rdb = bytearray(b"REDIS0009\xfe\x00\x00" + rstr(b"a") + rstr(b"1"))
    rdb += b"\xfe\x03\x00" + rstr(b"b") + rstr(b"2")
    code, report = _check(_one_node_set(tmp_path, rdb))
    assert code == 1 and report["shards"][0]["verdict"] == "valid"
    (problem,) = report["problems"]
    assert problem["code"] == "keys_outside_db0" and "keys in db 3" in problem["message"]


def test_a_resharding_under_way(tmp_path: Path) -> None:
    """A slot being moved (CLUSTER SETSLOT IMPORTING/MIGRATING, one key MIGRATEd): the key on
    the importing node is not a stray (Redis accepts it there), the slot is still the source's."""
    with cluster() as nodes:
        src, dst = nodes[0], nodes[1]
        ids = [n.client().execute_command("CLUSTER", "MYID") for n in (src, dst)]
        src_id, dst_id = (i.decode() if isinstance(i, bytes) else i for i in ids)
        key = next(f"move{i}" for i in range(1000) if key_slot(f"move{i}".encode()) < 100)
        slot = src.client().execute_command("CLUSTER", "KEYSLOT", key)
        src.client().set(key, "v")
        dst.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        src.client().execute_command("MIGRATE", "127.0.0.1", dst.port, key, 0, 5000)
        path = save_set(nodes, tmp_path / "set")
        conf = (path / "shard-1" / "nodes.conf").read_text()
        assert f"[{slot}-<-{src_id}]" in conf
    code, report = _check(path)
    assert code == 0, report["problems"]
    assert report["strays"] == 0 and report["totals"]["keys"] == 1
    assert report["shards"][1]["keys"] == 1  # the key is on the importing node
    assert any(a <= slot <= b for a, b in report["shards"][0]["slots"])  # the source's


def test_a_shard_without_its_nodes_conf(
    live: tuple[list[RedisServer], Path], tmp_path: Path
) -> None:
    nodes, path = live
    partial = tmp_path / "set"
    shutil.copytree(path, partial)
    (partial / "shard-2" / "nodes.conf").unlink()
    code, report = _check(partial)
    assert code == 1 and report["shards"][2]["verdict"] == "unreadable"
    assert [p["code"] for p in report["problems"]] == ["shard_unreadable", "missing_slots"]
    assert "no nodes.conf here" in report["problems"][0]["message"]
    assert [tuple(m["range"]) for m in report["slots"]["missing"]] == owned_ranges(nodes[2])
