"""The network restore (``rbkit restore BACKUP --to URL``) with real redis-server processes.

Every fixture goes into servers of each version: by RESTORE of DUMP payloads where the server
reads the file's RDB version, by plain commands into older servers, refused (with the
sentence, and nothing written) where neither can carry the content. After each restore the
target is compared key by key, with plain commands (tests/plain_view.py), with a reference
server that loaded the same backup directly. A 3-node cluster takes
a restore routed by slot; a non-empty target is refused without --replace; --dry-run writes
nothing; an invalid backup is refused; a password is never printed.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cluster_support import cluster
from conftest import (
    DEBUG_CONFIG,
    FIXTURES,
    binary,
    falkordb,
    invoke_cli,
    keep_expired_keys,
    load_expected,
    server_ms,
    wait_past,
)
from plain_view import LostPending, assert_same_keyspace, reference

from parsers.errors import CorruptError, TruncatedError
from parsers.rdb.decode import (
    HashValue,
    ModuleValue,
    StreamValue,
    ZSetValue,
    decode_value,
)
from parsers.rdb.dump import dump_payload, split_dump
from parsers.rdb.stream_meta import read_stream_meta
from parsers.rdb.versions import readable_rdb_version
from parsers.rdb.versions import server_reads as payload_readable
from parsers.rdb.walker import RdbWalker
from toolkit.check.backup import check_backup
from toolkit.check.keys import display_key
from toolkit.mapped import mapped
from toolkit.restore.network.commands import CHUNK, Capabilities, NoCommands, rebuild, score_text
from toolkit.restore.network.load import Batch, ClusterWriter, load
from toolkit.restore.network.plan import COMMANDS, make_plan
from toolkit.restore.network.source import RdbSource
from toolkit.restore.network.target import inspect_target, parse_target, reply_names
from toolkit.restore.network.verify import verify
from toolkit.server.process import RedisServer, free_port, raw_reply, running_server

AOF = FIXTURES.parent / "aof"
# Where the file's RDB version is readable: (fixture, target version).
PAYLOAD_CASES = [
    ("redis-6.2-all-types", "6.2"),
    ("redis-6.2-all-types", "7.0"),
    ("redis-6.2-all-types", "8.2"),
    ("redis-7.0-all-types", "7.0"),
    ("redis-7.0-all-types", "8.2"),
    ("redis-8.2-all-types", "8.2"),
    ("redis-8.2-hash-field-ttl", "8.2"),
    ("redis-8.2-modules", "8.2"),
    ("redis-7.0-functions-only", "7.0"),
    ("redis-7.0-empty", "7.0"),
]


# -- helpers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def target(version: str, **config: str) -> Iterator[RedisServer]:
    """A scratch server of ``version`` (8.2 with FalkorDB loaded, for graph values)."""
    with_falkordb = config.pop("falkordb", "yes") == "yes" and version == "8.2"
    modules = [falkordb()] if with_falkordb else []
    with running_server(binary(version), config=config, modules=modules) as server:
        yield server


def url_of(server: RedisServer) -> str:
    return f"redis://127.0.0.1:{server.port}"


def restore(backup: Path | str, server: RedisServer | str, *args: str) -> tuple[int, Any, str]:
    """``rbkit restore BACKUP --to URL --json ARGS`` -> (exit code, report or None, stderr)."""
    url = server if isinstance(server, str) else url_of(server)
    run = invoke_cli("restore", backup, "--to", url, "--json", *args)
    assert "Traceback" not in run.stdout + run.stderr
    return run.exit_code, json.loads(run.stdout) if run.stdout.strip() else None, run.stderr


def fixture(name: str) -> Path:
    return FIXTURES / f"{name}.rdb"


def now_ms() -> int:
    return int(time.time() * 1000)


def assert_holds_file(
    server: RedisServer,
    path: Path,
    *,
    reads: str | None = None,
    skip_dbs: frozenset[int] = frozenset(),
    lost_pending: LostPending | None = None,
    client_of: Any = None,
) -> int:
    """``server`` (or, with ``client_of``, the node that function gives for a key) holds
    exactly what a server of version ``reads`` (default: the target's own) holds after loading
    ``path`` itself: the same keys with the same types, content, TTLs and, on the same
    version, encodings, read with plain commands on both. Returns how many keys were compared.
    """
    version = reads or ".".join(map(str, server.binary.version[:2]))
    with reference(path, version) as ref:
        return assert_same_keyspace(
            server, ref, skip_dbs=skip_dbs, lost_pending=lost_pending, client_of=client_of
        )


def libraries(server: RedisServer) -> list[str]:
    """FUNCTION LIST library names (none before 7.0)."""
    if server.binary.version < (7, 0):
        return []
    return reply_names(server.client().execute_command("FUNCTION LIST"), "library_name")


def make_rdb12(tmp_path: Path) -> Path:
    """An RDB 12 written by Redis 8.2 with no module values: every built-in type, chunks
    larger than CHUNK, TTLs, and streams with groups, consumers, a PEL (one entry of it
    deleted from the stream), an emptied stream and one made by MKSTREAM."""
    directory = tmp_path / "rdb12"
    directory.mkdir()
    with running_server(binary("8.2"), directory=directory) as server:
        c = server.client()
        far = now_ms() + 3600_000
        c.set("s:plain", "hello")
        c.set("s:int", 12345)
        c.set("s:ttl", "x", pxat=far)
        c.rpush("l:big", *[f"item:{i}" for i in range(CHUNK + 500)])
        c.rpush("l:small", 1, 2, "three")
        c.sadd("set:ints", *range(50))
        c.sadd("set:big", *[f"m{i}" for i in range(CHUNK + 10)])
        c.zadd("z", {"a": 1.5, "b": float("inf"), "c": float("-inf"), "d": 0.1, "e": 1e300})
        c.hset("h:big", mapping={f"f{i}": f"v{i}" for i in range(CHUNK + 200)})
        c.hset("h:ttl", mapping={"a": "1"})
        c.pexpireat("h:ttl", far)
        for i in range(1, 21):
            c.xadd("st", {"n": str(i), "k": "v"}, id=f"{i}-1")
        c.xgroup_create("st", "g1", id="0")
        c.xreadgroup("g1", "alice", {"st": ">"}, count=5)
        c.xreadgroup("g1", "bob", {"st": ">"}, count=3)
        c.xack("st", "g1", "1-1")
        c.xdel("st", "2-1")  # alice's pending 2-1 has no entry any more: XCLAIM cannot claim it
        c.execute_command("XGROUP", "CREATECONSUMER", "st", "g1", "carol")
        c.xgroup_create("st", "g2", id="$")
        c.xadd("emptied", {"a": "1"}, id="5-5")
        c.xdel("emptied", "5-5")
        c.xgroup_create("mk", "g", id="0", mkstream=True)
        c.save()
    return directory / "dump.rdb"


def keys_digest(server: RedisServer) -> dict[int, tuple[int, list[tuple[bytes, bytes | None]]]]:
    """Every db's keys with their DUMP payloads: what 'touched nothing' compares."""
    out = {}
    for name in server.client().info("keyspace"):
        db = int(name[2:])
        c = server.client(db)
        keys = sorted(c.scan_iter(count=1000))
        out[db] = (len(keys), [(k, c.dump(k)) for k in keys])
    return out


# -- the DUMP payload --------------------------------------------------------------------------


def test_payload_is_byte_for_byte_what_dump_returns(tmp_path: Path) -> None:
    """A payload built from the saved file's value bytes equals the server's own DUMP."""
    with running_server(binary("7.0"), directory=tmp_path) as server:
        c = server.client()
        c.set("str", "x" * 100)
        c.set("int", 42)
        c.rpush("list", *range(200))
        c.sadd("intset", 1, 2, 3)
        c.zadd("zset", {"a": 1, "b": 2.5})
        c.hset("hash", mapping={"f": "v"})
        c.xadd("stream", {"f": "v"}, id="1-1")
        c.save()
        dumps = {k: c.dump(k) for k in c.scan_iter()}
        with mapped(tmp_path / "dump.rdb") as mm:
            walker = RdbWalker(mm)
            built = {
                bytes(walker.key_at(k)): dump_payload(t, mm[v:end], walker.version)
                for _db, t, k, v, end, _n, _e in walker.walk()
            }
    assert built == dumps
    assert split_dump(dumps[b"str"])[:2] == (0, 10)
    with pytest.raises(CorruptError, match="checksum"):
        split_dump(dumps[b"str"][:-1] + b"\x00")


def test_payload_versions_per_server_family() -> None:
    assert readable_rdb_version((6, 2, 14), False) == 9
    assert readable_rdb_version((7, 0, 15), False) == 10
    assert readable_rdb_version((7, 2, 4), False) == 11
    assert readable_rdb_version((8, 2, 3), False) == 12
    assert readable_rdb_version((8, 6, 0), False) == 13
    assert readable_rdb_version((8, 1, 0), True) == 11
    assert readable_rdb_version((9, 0, 0), True) == 80
    assert payload_readable("REDIS", 10, (7, 0, 15), False)
    assert not payload_readable("REDIS", 12, (7, 0, 15), False)
    assert payload_readable("REDIS", 11, (9, 0, 0), True)  # Valkey reads Redis up to 11
    assert not payload_readable("REDIS", 12, (9, 0, 0), True)  # ... and refuses 12-79
    assert not payload_readable("VALKEY", 80, (8, 6, 0), False)  # other type ids
    assert payload_readable("VALKEY", 80, (9, 0, 0), True)


# -- the commands of the command path ----------------------------------------------------------


def test_scores_and_chunks_as_commands() -> None:
    assert [score_text(s) for s in (1.5, 0.1, 1e300, float("inf"), float("-inf"))] == [
        b"1.5", b"0.1", b"1e+300", b"+inf", b"-inf",
    ]  # fmt: skip
    assert float(score_text(0.1 + 0.2)) == 0.1 + 0.2
    built = rebuild(b"k", ZSetValue({b"m%d" % i: float(i) for i in range(2500)}),
                    caps=Capabilities(), now_ms=0)  # fmt: skip
    assert [len(c) for c in built.commands] == [2 + 2000, 2 + 2000, 2 + 1000]
    with pytest.raises(NoCommands, match="module type"):
        rebuild(b"g", ModuleValue("graphdata", 1), caps=Capabilities(), now_ms=0)


def test_hash_field_ttls_as_commands() -> None:
    value = HashValue(
        {b"a": b"1", b"b": b"2", b"c": b"3", b"gone": b"4"},
        {b"a": 5000, b"b": 5000, b"c": 6000, b"gone": 100},
    )
    built = rebuild(b"h", value, caps=Capabilities(), now_ms=1000)
    assert built.commands == [
        (b"HSET", b"h", b"a", b"1", b"b", b"2", b"c", b"3"),
        (b"HPEXPIREAT", b"h", b"5000", b"FIELDS", b"2", b"a", b"b"),
        (b"HPEXPIREAT", b"h", b"6000", b"FIELDS", b"1", b"c"),
    ]
    assert built.fields_expired == 1
    old = rebuild(b"h", value, caps=Capabilities(hpexpireat=False), now_ms=1000)
    assert len(old.commands) == 1 and old.field_ttls_dropped == 3


def stream_id(sid: tuple[int, int] | None) -> bytes | None:
    return None if sid is None else b"%d-%d" % sid


def test_stream_metadata_matches_the_decoded_groups_and_the_server() -> None:
    """read_stream_meta (what the command path sends) agrees with the decoder, and with what
    Redis 7.0 shows of the same file (XINFO STREAM FULL): lengths, ids, PELs with their
    delivery times and counts, consumers with their seen times."""
    path = fixture("redis-7.0-all-types")
    streams = 0
    with mapped(path) as mm, reference(path, "7.0") as ref:
        walker = RdbWalker(mm)
        for db, t, key_at, vpos, end, _n, _e in walker.walk():
            if t not in (15, 19, 21):
                continue
            value = decode_value(mm, t, vpos)
            meta = read_stream_meta(mm, t, vpos)
            assert isinstance(value, StreamValue)
            assert (meta.length, meta.last_id) == (value.length, value.last_id)
            for g, m in zip(value.groups, meta.groups, strict=True):
                assert (g.name, g.last_id, g.entries_read) == (m.name, m.last_id, m.entries_read)
                assert g.pending == len(m.pending) == sum(len(c.pending) for c in m.consumers)
                assert g.consumers == tuple(c.name for c in m.consumers)
            with pytest.raises(TruncatedError):
                read_stream_meta(mm[: end - 1], t, vpos)
            assert walker.key_at(key_at)
            key = bytes(walker.key_at(key_at))
            full = raw_reply(ref.client(db), "XINFO", "STREAM", key, "FULL", "COUNT", 0)
            assert (full[b"length"], full[b"last-generated-id"], full[b"entries-added"]) == (
                meta.length, stream_id(meta.last_id), meta.entries_added
            ), key  # fmt: skip
            assert full[b"max-deleted-entry-id"] == stream_id(meta.max_deleted_id), key
            assert [
                (
                    g[b"name"],
                    g[b"last-delivered-id"],
                    g[b"entries-read"],
                    [tuple(p) for p in g[b"pending"]],
                    [(c[b"name"], c[b"seen-time"], [p[0] for p in c[b"pending"]])
                     for c in g[b"consumers"]],
                )
                for g in full[b"groups"]
            ] == [
                (
                    m.name,
                    stream_id(m.last_id),
                    m.entries_read,
                    [
                        (stream_id(p.id), owner, p.delivery_time_ms, p.delivery_count)
                        for p in m.pending
                        for owner in [next(c.name for c in m.consumers if p.id in c.pending)]
                    ],
                    [(c.name, c.seen_time_ms, [stream_id(i) for i in c.pending])
                     for c in m.consumers],
                )
                for m in meta.groups
            ], key  # fmt: skip
            streams += 1
    rows = [row for rows in load_expected(path)["keys"].values() for row in rows]
    assert streams == sum(1 for row in rows if row["type"] == "stream")


# -- payload path ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version"), PAYLOAD_CASES, ids=[f"{n}->{v}" for n, v in PAYLOAD_CASES]
)
def test_payload_path_restores_the_fixture_exactly(name: str, version: str) -> None:
    path = fixture(name)
    expected = load_expected(path)
    with target(version) as server:
        code, report, err = restore(path, server, "--yes")
        assert code == 0, (report or {}).get("reasons") or err
        assert report["schema"] == "rbkit.restore/1" and report["mode"] == "network"
        assert report["outcome"] == "verified" and report["path"] == "payload"
        assert report["verification"]["mode"] == "keyspace"
        assert report["verification"]["key_names_compared"] is True
        assert_holds_file(server, path)
        assert libraries(server) == sorted(expected["functions"])
    gone = sum(
        1 for keys in expected["keys"].values() for k in keys
        if k["expire_ms"] is not None and k["expire_ms"] <= now_ms()
    )  # fmt: skip
    assert report["restored"]["expired_skipped"] == gone


def test_databases_32_needs_a_target_with_as_many() -> None:
    path = fixture("redis-7.0-databases-32")
    with target("7.0") as server:
        code, report, _ = restore(path, server, "--yes")
        assert code == 1 and report["outcome"] == "refused"
        assert report["reasons"] == [
            f"the backup holds 3 keys in dbs 20, 31; {url_of(server)} has databases 16 "
            "(CONFIG GET databases), so db 15 is its last"
        ]
        assert server.client().dbsize() == 0 and not server.client().info("keyspace")
    with target("7.0", databases="32") as server:
        code, report, _ = restore(path, server, "--yes")
        assert code == 0, report["reasons"]
        assert_holds_file(server, path)


# -- command path and refusals into older servers -----------------------------------------------


def test_command_path_into_6_2_restores_all_types_with_force() -> None:
    path = fixture("redis-7.0-all-types")
    sentence = (
        "the backup holds function libraries (rbkitlib), which need Redis >= 7.0 "
        f"(FUNCTION LOAD); the target is redis {binary('6.2').version_text}"
    )
    with target("6.2") as server:
        code, report, _ = restore(path, server, "--yes")
        assert code == 1 and report["reasons"] == [sentence]
        assert server.client().dbsize() == 0
        code, report, _ = restore(path, server, "--yes", "--force")
        assert code == 0, report["reasons"]
        assert report["path"] == "commands" and report["plan"]["losses"] == [sentence]
        assert report["plan"]["libraries_action"] == "skip"
        assert_holds_file(server, path, reads="7.0")


@pytest.mark.parametrize("version", ["7.0", "6.2"])
def test_command_path_rebuilds_streams_and_collections(tmp_path: Path, version: str) -> None:
    path = make_rdb12(tmp_path)
    with target(version) as server:
        code, report, _ = restore(path, server, "--yes")
        assert code == 0, report["reasons"]
        assert report["path"] == "commands"
        assert report["restored"]["pending_entries_lost"] == 1
        assert any("pending entries whose stream entry" in i for i in report["plan"]["inexact"])
        # The streams' bookkeeping and the PEL's delivery times and counts too (XINFO FULL).
        assert_holds_file(server, path, reads="8.2", lost_pending={b"st": {b"g1": 1}})


def test_rdb12_with_modules_and_field_ttls_is_refused_by_7_0() -> None:
    path = fixture("redis-8.2-all-types")
    with target("7.0") as server:
        code, report, _ = restore(path, server, "--yes")
        assert code == 1 and report["outcome"] == "refused"
        name = f"redis {binary('7.0').version_text}"
        assert report["reasons"] == [
            "the backup holds 1 value of module type graphdata, which cannot be sent as "
            f"commands (only RESTORE of its DUMP payload carries it, and {name} cannot read "
            "this file's payloads)",
            "the backup holds 1 value of module type vectorset, which cannot be sent as "
            f"commands (only RESTORE of its DUMP payload carries it, and {name} cannot read "
            "this file's payloads)",
            "103 hash fields in 3 hashes (e.g. 'hash:fttl:large') have a TTL of their own, "
            f"which needs HPEXPIREAT (Redis >= 7.4); the target is {name} (--force restores "
            "those fields without their TTL)",
        ]
        assert server.client().dbsize() == 0 and libraries(server) == []


def test_module_values_need_the_module_on_the_target() -> None:
    path = fixture("redis-8.2-modules")
    with target("8.2", falkordb="no") as server:
        code, report, _ = restore(path, server, "--yes")
        assert code == 1
        assert report["reasons"] == [
            "the backup holds 1 value of module type graphdata (FalkorDB or RedisGraph), and "
            f"{url_of(server)} has no module for it (MODULE LIST: vectorset)"
        ]
        assert server.client().dbsize() == 0
        code, report, _ = restore(path, server, "--yes", "--force")
        assert code == 0, report["reasons"]
        assert report["plan"]["databases"]["0"]["left_out"] == 1
        assert report["verification"]["mode"] == "keys"
        assert server.client().type("vset:items") == b"vectorset"
        assert server.client().exists("g") == 0


def test_forced_command_path_keeps_hash_field_ttls_with_hpexpireat() -> None:
    """Into 8.2 by commands (as into a server that cannot read the file, e.g. Valkey 9):
    HSET then HPEXPIREAT, field by field TTL exactly as in the file."""
    path = fixture("redis-8.2-hash-field-ttl")
    result = check_backup(path)
    with target("8.2") as server, RdbSource(path) as source:
        url = parse_target(url_of(server))
        info = inspect_target(url, cluster=False)
        plan = make_plan(
            result, source, info, cluster=False, replace=False, force=False, path=COMMANDS
        )
        assert plan.path == COMMANDS and plan.field_ttls == "keep" and not plan.refused
        stats = load(plan, source, url)
        assert stats.stopped is None and stats.keys == 3
        assert verify(plan, result, source, url, stats, None).verified
        assert_holds_file(server, path)


# -- a Redis Cluster ---------------------------------------------------------------------------


def test_cluster_restore_routes_every_key_to_its_slot(tmp_path: Path) -> None:
    rdb12 = make_rdb12(tmp_path)
    all_types = fixture("redis-7.0-all-types")
    with cluster() as nodes:
        seed = nodes[0]
        code, report, _ = restore(rdb12, seed, "--yes")
        assert code == 1
        assert report["reasons"] == [
            f"{url_of(seed)} is a Redis Cluster node (cluster_enabled:1): pass --cluster to "
            "restore into the cluster, keys routed by slot"
        ]
        # An RDB 12 into 7.0 primaries: by commands (XADD, XGROUP, XCLAIM...) routed by slot.
        code, report, _ = restore(rdb12, seed, "--yes", "--cluster")
        assert code == 0, report["reasons"]
        assert report["path"] == "commands" and report["target"]["cluster"] is True
        assert report["verification"]["mode"] == "keyspace"
        owner = _owner(nodes)
        per_node = [n.client().dbsize() for n in nodes]
        compared = assert_holds_file(
            nodes[0], rdb12, reads="8.2", lost_pending={b"st": {b"g1": 1}}, client_of=owner
        )
        assert all(per_node) and sum(per_node) == compared
        # The all-types fixture on top, payloads, its other dbs left out by --force.
        code, report, _ = restore(all_types, seed, "--yes", "--cluster")
        assert code == 1 and report["reasons"][0].startswith("target db 0 holds ")
        code, report, _ = restore(all_types, seed, "--yes", "--cluster", "--replace", "--force")
        assert code == 0, report["reasons"]
        assert report["path"] == "payload" and report["verification"]["mode"] == "keys"
        assert report["plan"]["losses"] == [
            "a Redis Cluster has db 0 only; the backup holds 8 keys in dbs 1, 5, 15"
        ]
        assert_holds_file(nodes[0], all_types, skip_dbs=frozenset({1, 5, 15}), client_of=owner)
        for n in nodes:  # functions are per node: every primary has the library
            assert libraries(n) == ["rbkitlib"]


def _owner(nodes: list[RedisServer]) -> Any:
    """key -> a client of the node that owns its slot (asserting the key is there only)."""
    clients = [n.client() for n in nodes]

    def client_of(key: bytes) -> redis.Redis:
        slot = clients[0].cluster("keyslot", key)
        owners = [c for c in clients if c.cluster("countkeysinslot", slot)]
        holders = [c for c in owners if c.exists(key)]
        assert len(holders) == 1, key
        return holders[0]

    return client_of


# -- the target's state --------------------------------------------------------------------------


def test_non_empty_target_is_refused_without_replace_and_overwritten_with_it() -> None:
    path = fixture("redis-7.0-all-types")
    with target("7.0") as server:
        c = server.client()
        for i in range(10):
            c.set(f"other:{i}", i)
        c.set("string:short", "not the backup's")
        c.rpush("hash:small", "a list, not a hash")
        before = keys_digest(server)
        code, report, _ = restore(path, server, "--yes")
        assert code == 1
        assert report["reasons"] == [
            "target db 0 holds 12 keys; pass --replace to overwrite keys of the same name "
            "(others are kept)"
        ]
        assert keys_digest(server) == before
        code, report, _ = restore(path, server, "--yes", "--replace")
        assert code == 0, report["reasons"]
        assert report["verification"]["mode"] == "keys"
        assert c.type("hash:small") == b"hash" and c.get("string:short") != b"not the backup's"
        assert all(c.get(f"other:{i}") == str(i).encode() for i in range(10))
        assert c.dbsize() == 42 + 10
        # A second run with --replace finds the library there and replaces it.
        code, report, _ = restore(path, server, "--yes", "--replace")
        assert code == 0 and report["plan"]["libraries_action"] == "replace"


def test_existing_function_library_is_refused_without_replace() -> None:
    path = fixture("redis-7.0-functions-only")
    with target("7.0") as server:
        assert restore(path, server, "--yes")[0] == 0
        code, report, _ = restore(path, server, "--yes")
        assert code == 1
        assert report["reasons"] == [
            f"{url_of(server)} already has function library rbkitlib; pass --replace to replace it"
        ]


def test_dry_run_touches_nothing() -> None:
    path = fixture("redis-7.0-all-types")
    with target("7.0") as server:
        server.client(3).set("elsewhere", "kept")
        before = keys_digest(server)
        code, report, _ = restore(path, server, "--dry-run")
        assert code == 0 and report["outcome"] == "planned" and report["dry_run"]
        assert report["plan"]["keys_to_restore"] == 50
        assert [s["name"] for s in report["steps"]] == ["gate", "connect", "journal", "preflight"]
        assert report["restored"] is None and report["verification"] is None
        assert keys_digest(server) == before
        assert libraries(server) == []
        run = invoke_cli("restore", path, "--to", url_of(server), "--dry-run")
        assert run.exit_code == 0
        assert f"into {url_of(server)}: PLAN (--dry-run): nothing was written" in run.stdout
        assert "there is no rollback over the network" in run.stdout
        assert keys_digest(server) == before


def test_expired_keys_are_skipped_and_counted(tmp_path: Path) -> None:
    directory = tmp_path / "gen"
    directory.mkdir()
    with running_server(binary("7.0"), directory=directory, config=DEBUG_CONFIG) as source:
        c = source.client()
        keep_expired_keys(c)  # the 20 soon:* stay in memory past their TTL, and in the SAVE
        soon = server_ms(c) + 100
        for i in range(20):
            c.set(f"soon:{i}", "v", pxat=soon)
            c.set(f"stays:{i}", "v", px=3600_000)
        wait_past(c, soon)
        c.save()  # the file holds 20 keys already expired, whatever the machine's speed
    with target("7.0") as server:
        code, report, _ = restore(directory / "dump.rdb", server, "--yes")
        assert code == 0, report["reasons"]
        assert report["plan"]["databases"]["0"]["expired"] == 20
        assert report["restored"]["expired_skipped"] == 20
        assert report["restored"]["keys"] == 20
        assert sorted(server.client().keys("soon:*")) == []
        assert any("had expired before the load began" in a["message"]
                   for a in report["verification"]["allowances"])  # fmt: skip


def test_invalid_backup_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.rdb"
    data = fixture("redis-7.0-all-types").read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    with target("7.0") as server:
        code, report, _ = restore(damaged, server, "--yes")
        assert code == 1 and report["outcome"] == "refused"
        assert report["reason"].startswith("the backup is invalid: truncated")
        assert [s["name"] for s in report["steps"]] == ["gate"]
        assert server.client().dbsize() == 0


# -- URLs, passwords and the command line -------------------------------------------------------


def test_password_is_used_and_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cret-Pa55"
    path = fixture("redis-7.0-strings-only")
    with target("7.0") as server:
        server.client().config_set("requirepass", secret)  # after start: the helper can wait
        shown = f"redis://127.0.0.1:{server.port}"
        run = invoke_cli("restore", path, "--to", f"redis://:{secret}@127.0.0.1:{server.port}",
                         "--yes")  # fmt: skip
        assert run.exit_code == 0, run.stdout + run.stderr
        assert f"into {shown}: VERIFIED" in run.stdout
        assert secret not in run.stdout + run.stderr
        run = invoke_cli("restore", path, "--to", f"redis://default:wrong-{secret}@127.0.0.1:"
                         f"{server.port}", "--yes", "--replace")  # fmt: skip
        assert run.exit_code == 2 and secret not in run.stdout + run.stderr
        assert run.stderr.startswith(f"error: redis://default@127.0.0.1:{server.port}: ")
        assert "the server refused the password" in run.stderr
        monkeypatch.setenv("REDISCLI_AUTH", secret)
        code, report, err = restore(path, shown, "--yes", "--replace")
        assert code == 0, err
        assert secret not in json.dumps(report)
        server.client(password=secret).config_set("requirepass", "")  # so it can be stopped
    assert parse_target(f"rediss://user:{secret}@example.com:6380/0").display == (
        "rediss://user@example.com:6380/0"
    )


def test_exit_codes_of_usage_and_io_errors(tmp_path: Path) -> None:
    path = fixture("redis-7.0-strings-only")
    with target("7.0") as server:
        run = invoke_cli("restore", path, "--to", url_of(server))  # no --yes, no terminal
        assert run.exit_code == 2
        assert "pass --yes" in run.stderr and server.client().dbsize() == 0
        run = invoke_cli("restore", path, "--to", url_of(server) + "/3", "--yes")
        assert run.exit_code == 2 and "names db 3" in run.stderr
        assert invoke_cli("restore", tmp_path / "none.rdb", "--to", url_of(server)).exit_code == 2
    run = invoke_cli("restore", path, "--to", "http://127.0.0.1:1", "--yes")
    assert run.exit_code == 2 and run.stderr.startswith("error: http://127.0.0.1:1: not a usable")
    port = free_port()
    run = invoke_cli("restore", path, "--to", f"redis://127.0.0.1:{port}", "--yes")
    assert run.exit_code == 2
    assert run.stderr.startswith(f"error: redis://127.0.0.1:{port}: cannot connect")
    assert run.stdout == ""


def test_text_report_of_a_restore() -> None:
    path = fixture("redis-7.0-all-types")
    with target("7.0") as server:
        run = invoke_cli("restore", path, "--to", url_of(server), "--yes")
    assert run.exit_code == 0, run.stdout
    lines = run.stdout.splitlines()
    assert lines[0] == (
        f"network restore of {path} into {url_of(server)}: VERIFIED: restored, and the target "
        "holds what the backup holds"
    )
    assert "  path: payload: redis 7.0.15 reads REDIS RDB 10: RESTORE of DUMP payloads made of "\
        "the file's own value bytes (exact)" in lines  # fmt: skip
    assert lines[-1].startswith("verified: per-db keys, expires, types, key names (digest)")


# -- AOF backups ---------------------------------------------------------------------------------


def test_aof_backup_is_restored_through_a_scratch_rdb() -> None:
    backup = AOF / "redis-7.0-rdb-base" / "appendonlydir"
    expected = json.loads((AOF / "redis-7.0-rdb-base.expected.json").read_text())
    with target("7.0") as server:
        code, report, _ = restore(backup, server, "--yes")
        assert code == 0, report["reasons"]
        assert report["format"] == "aof"
        assert [s["name"] for s in report["steps"]][:2] == ["gate", "convert"]
        assert any("the RDB it saved is what is restored" in n for n in report["notes"])
        now = now_ms()
        for db, keys in expected["keys"].items():
            alive = {k["key"]: k["type"] for k in keys
                     if k["expire_ms"] is None or k["expire_ms"] > now}  # fmt: skip
            c = server.client(int(db))
            assert {display_key(k): c.type(k).decode() for k in c.scan_iter()} == alive
        assert libraries(server) == ["rbkitlib"]


def test_aof_with_module_values_converts_with_module() -> None:
    """An 8.2 AOF holding a FalkorDB graph: refused without --module (the scratch server
    cannot load it), restored with it."""
    backup = AOF / "redis-8.2-rdb-base" / "appendonlydir"
    module = falkordb()
    with target("8.2") as server:
        code, report, _ = restore(backup, server, "--yes")
        assert code == 1 and report["outcome"] == "refused"
        assert any("--module PATH" in r for r in report["reasons"])
        assert server.client().dbsize() == 0
        code, report, _ = restore(backup, server, "--yes", "--module", str(module))
        assert code == 0, report["reasons"]
        assert server.client().type("g") == b"graphdata"


def test_aof_conversion_leaves_no_scratch_files_behind() -> None:
    """A single-file AOF with an RDB preamble: converted, restored; its scratch dir removed."""
    scratch = Path(tempfile.gettempdir())
    before = set(scratch.glob("rbkit-network-*"))
    with target("7.0") as server:
        code, report, _ = restore(AOF / "redis-6.2-preamble.aof", server, "--yes")
        assert code == 0, report["reasons"]
    assert set(scratch.glob("rbkit-network-*")) <= before


# -- failures, the prompt, redirections ----------------------------------------------------------


def test_a_write_failing_midway_stops_the_load_and_says_so() -> None:
    """maxmemory just above what the server uses: RESTOREs fail with OOM partway; the load
    stops after that batch, the report names the failures and what the target now holds."""
    path = fixture("redis-7.0-all-types")
    with target("7.0") as server:
        c = server.client()
        # 300 kB: room for rbkit's connections (tens of kB each) and the first keys, not all.
        c.config_set("maxmemory", int(c.info("memory")["used_memory"]) + 300_000)
        code, report, _ = restore(path, server, "--yes")
        assert code == 1 and report["outcome"] == "failed"
        assert any("maxmemory" in n and "writes may fail with OOM" in n
                   for n in report["plan"]["notes"])  # fmt: skip
        restored = report["restored"]
        assert restored["failed"] > 0 and restored["failures"][0]["error"].startswith("OOM")
        assert "the load stopped there" in restored["stopped"]
        assert report["verification"] is None
        assert sum(report["keys_after"].values()) == restored["keys"] == c.dbsize() > 0
        run = invoke_cli("restore", path, "--to", url_of(server), "--yes", "--replace", "--restart")
        assert run.exit_code == 1 and ": FAILED\n" in run.stdout and "\nfailures:\n" in run.stdout


def test_the_prompt_asks_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    monkeypatch.setattr("toolkit.cli.restore._interactive", lambda: True)
    path = fixture("redis-7.0-strings-only")
    with target("7.0") as server:
        args = ["restore", str(path), "--to", url_of(server)]
        no = CliRunner().invoke(app, args, input="n\n")
        assert no.exit_code == 1 and "CANCELLED: nothing was written" in no.stdout
        assert f"Restore 14 keys into {url_of(server)}? [y/N]" in no.stderr
        assert server.client().dbsize() == 0
        yes = CliRunner().invoke(app, args, input="y\n")
        assert yes.exit_code == 0 and "VERIFIED" in yes.stdout
        assert server.client().dbsize() == 14


def test_cluster_writer_follows_moved_and_ask() -> None:
    """The slot table is read, then slots move: a -MOVED key is sent again to the new owner,
    an -ASK key (slot migrating) goes to the importing node after ASKING."""
    with cluster() as nodes:
        writer = ClusterWriter(parse_target(url_of(nodes[0])))
        ids = {n.port: n.client().cluster("myid") for n in nodes}
        clients = {n.port: n.client() for n in nodes}

        def owner_of(slot: int) -> int:
            slots = clients[nodes[0].port].execute_command("CLUSTER SLOTS")
            return next(int(p[1]) for lo, hi, p, *_ in slots if lo <= slot <= hi)

        moved, asked = b"moved:key", b"asked:key"
        m_slot, a_slot = (clients[nodes[0].port].cluster("keyslot", k) for k in (moved, asked))
        m_from, a_from = owner_of(m_slot), owner_of(a_slot)
        m_to = next(p for p in clients if p != m_from)
        a_to = next(p for p in clients if p != a_from)
        for c in clients.values():
            c.execute_command("CLUSTER", "SETSLOT", m_slot, "NODE", ids[m_to])
        clients[a_to].execute_command("CLUSTER", "SETSLOT", a_slot, "IMPORTING", ids[a_from])
        clients[a_from].execute_command("CLUSTER", "SETSLOT", a_slot, "MIGRATING", ids[a_to])
        batch = Batch(packed=False)
        batch.add(0, moved, [(b"RPUSH", moved, b"a", b"b")])
        batch.add(0, asked, [(b"SET", asked, b"v"), (b"PEXPIREAT", asked, b"99999999999999")])
        writer.send(batch)
        assert writer.collect(batch) == []
        writer.close()
        assert clients[m_to].lrange(moved, 0, -1) == [b"a", b"b"]
        assert clients[a_to].execute_command("ASKING") and clients[a_to].get(asked) == b"v"
        assert clients[m_from].execute_command("DBSIZE") == clients[a_from].dbsize() == 0


def test_forced_damaged_backup_restores_up_to_the_damage(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.rdb"
    data = fixture("redis-6.2-all-types").read_bytes()
    damaged.write_bytes(data[: len(data) - 1000])  # cut inside the last db's keys
    with target("7.0") as server:
        code, report, _ = restore(damaged, server, "--yes", "--force")
        assert code == 1 and report["outcome"] == "failed"
        assert report["reason"].startswith("reading the backup: ")
        assert "while reading key 'db5:stream' in db 5" in report["reason"]
        # Every live key of dbs 0 and 1 (complete before the cut), not all of db 5's.
        alive = {
            int(db): sum(1 for k in keys if k["expire_ms"] is None or k["expire_ms"] > now_ms())
            for db, keys in load_expected(fixture("redis-6.2-all-types"))["keys"].items()
        }
        restored = report["restored"]["keys"]
        assert (
            restored
            == sum(report["keys_after"].values())
            == server.client().dbsize() + sum(server.client(db).dbsize() for db in (1, 5, 15))
        )
        assert alive[0] + alive[1] <= restored <= alive[0] + alive[1] + alive[5] - 1
        assert any(
            n.startswith("--force: an invalid backup restored anyway") for n in report["notes"]
        )


def test_hash_whose_fields_all_expired_is_skipped(tmp_path: Path) -> None:
    """RESTORE would create it with no live field; the load skips it as an expired key."""
    directory = tmp_path / "gen"
    directory.mkdir()
    with running_server(binary("8.2"), directory=directory, config=DEBUG_CONFIG) as source:
        c = source.client()
        keep_expired_keys(c)  # expired fields stay in memory, and in the SAVE
        gone = server_ms(c) + 100
        c.hset("all:gone", mapping={"a": "1", "b": "2"})
        c.hpexpireat("all:gone", gone, "a", "b")
        c.hset("some:gone", mapping={"a": "1", "b": "2"})
        c.hpexpireat("some:gone", gone, "a")
        c.hset("none:gone", mapping={"a": "1"})
        wait_past(c, gone)
        c.save()  # fields already expired in the file, whatever the machine's speed
    path = directory / "dump.rdb"
    for version in ("8.2", "7.0"):  # payload path, command path (no field TTL left to send)
        with target(version, falkordb="no") as server:
            code, report, _ = restore(path, server, "--yes")
            assert code == 0, report["reasons"]
            assert report["restored"]["expired_skipped"] == 1
            assert report["verification"]["mode"] == "keys"
            c = server.client()
            assert sorted(c.keys()) == [b"none:gone", b"some:gone"]
            assert c.hgetall("some:gone") == {b"b": b"2"}
