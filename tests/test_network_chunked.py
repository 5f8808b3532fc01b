"""Keys too big for one RESTORE (``rbkit restore BACKUP --to URL``): a value whose DUMP payload
is larger than the target's ``proto-max-bulk-len`` goes in chunks into a temporary key in
the key's slot, then RENAME. Real servers: a 7.0 (and an 8.2) target with
``proto-max-bulk-len 1mb`` (Redis's minimum), compared key by key, values and DUMP payloads,
with a reference server that loaded the same backup itself.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import redis
from conftest import binary
from plain_view import assert_same_keyspace, reference
from redis.crc import key_slot
from restore_support import rbkit
from test_network_restore import _owner, cluster, restore, target, url_of

from toolkit.restore.network.chunked import slot_tag, split, temp_name
from toolkit.server.process import running_server

LIMIT = 1 << 20  # proto-max-bulk-len 1mb
BIG = {  # key -> type: each value a few MB of incompressible bytes
    b"big:list": "list",
    b"big:hash": "hash",
    b"big:set": "set",
    b"big:zset": "zset",
    b"big:string": "string",
    b"{user:7}big:list": "list",  # a hash tag: the temporary key shares it
    b"big}list": "list",  # a '}' without a hash tag
    b"big:stream": "stream",  # XADD per entry, its group after
}


def _blob(n: int) -> bytes:
    return os.urandom(n)


def make_big(directory: Path, version: str, n: int = 1000) -> tuple[Path, int]:
    """A backup with the BIG keys (3000 elements of ``n`` bytes, a 3 MB string), small keys
    and TTLs, saved by a server of ``version``; returns it and the expiry (ms) given to two
    of the keys."""
    directory.mkdir()
    with running_server(binary(version), directory=directory) as server:
        c = server.client()
        at = int(c.time()[0]) * 1000 + 3600_000
        c.rpush(b"big:list", *(_blob(n) for _ in range(3000)))
        c.hset(b"big:hash", mapping={b"f%d" % i: _blob(n) for i in range(3000)})
        c.sadd(b"big:set", *(_blob(n) for _ in range(3000)))
        c.zadd(b"big:zset", {_blob(n): random.random() * 1e6 for _ in range(3000)})
        c.set(b"big:string", _blob(3 << 20), pxat=at)
        c.rpush(b"{user:7}big:list", *(_blob(2 * n) for _ in range(1500)))
        c.pexpireat(b"{user:7}big:list", at)
        c.rpush(b"big}list", *(_blob(n) for _ in range(2500)))
        for i in range(1, 3001):
            c.xadd(b"big:stream", {b"f": _blob(n)}, id=f"{i}-0")
        c.xgroup_create(b"big:stream", b"g1", id="1500-0")
        for i in range(200):
            c.set(f"small:{i}", f"v{i}")
        c.rpush("small:list", 1, 2, 3)
        c.save()
    return directory / "dump.rdb", at


def dumps(client: redis.Redis, keys: list[bytes]) -> dict[bytes, bytes | None]:
    return {k: client.dump(k) for k in keys}


@pytest.mark.parametrize("version", ["7.0", "8.2"])
def test_big_values_go_in_chunks_into_a_1mb_target(tmp_path: Path, version: str) -> None:
    path, at = make_big(tmp_path / "backup", version)
    with target(version, **{"proto-max-bulk-len": "1mb"}) as server:
        c = server.client()
        assert int(c.config_get("proto-max-bulk-len")["proto-max-bulk-len"]) == LIMIT
        code, report, err = restore(path, server, "--yes")
        assert code == 0, (report or {}).get("reasons") or err
        assert report["outcome"] == "verified" and report["path"] == "payload"
        assert report["target"]["bulk_limit"] == LIMIT
        assert report["restored"]["chunked"] == len(BIG)
        assert report["restored"]["keys"] == len(BIG) + 201
        assert report["restored"]["leftover_temp_keys"] == []
        # No temporary key is left: the keyspace is the backup's, name for name.
        assert set(c.scan_iter(count=1000)) == set(BIG) | {b"small:list"} | {
            f"small:{i}".encode() for i in range(200)
        }
        assert c.pexpiretime(b"big:string") == at == c.pexpiretime(b"{user:7}big:list")
        with reference(path, version) as ref:
            assert assert_same_keyspace(server, ref) == len(BIG) + 201
            r = ref.client()
            # Lists and strings are written as the server writes them: the same DUMP.
            same = [k for k, t in BIG.items() if t in ("list", "string")]
            assert dumps(c, same) == dumps(r, same)


def test_the_command_path_chunks_too(tmp_path: Path) -> None:
    """An 8.2 backup into 7.0 (plain commands): HSET, SADD, ZADD, RPUSH batches of 1000
    elements of 1.1 kB would be larger than 1 MB: the key goes in smaller chunks."""
    path, _at = make_big(tmp_path / "backup", "8.2", 1100)
    with target("7.0", **{"proto-max-bulk-len": "1mb"}) as server:
        code, report, err = restore(path, server, "--yes")
        assert code == 0, (report or {}).get("reasons") or err
        assert report["path"] == "commands"
        # The stream's commands are one XADD per entry, each below the limit: not chunked.
        assert report["restored"]["chunked"] == len(BIG) - 1
        with reference(path, "8.2") as ref:
            assert assert_same_keyspace(server, ref) == len(BIG) + 201


def test_an_element_larger_than_the_limit_fails_and_is_named(tmp_path: Path) -> None:
    """One list element of 1.5 MB: no command below 1 MB carries it; the load stops on that
    key, names it, and leaves no temporary key."""
    directory = tmp_path / "backup"
    directory.mkdir()
    with running_server(binary("7.0"), directory=directory) as server:
        c = server.client()
        c.set("a", "1")
        c.rpush("huge", _blob(1536 << 10), b"x")
        c.save()
    with target("7.0", **{"proto-max-bulk-len": "1mb"}) as server:
        code, report, _err = restore(directory / "dump.rdb", server, "--yes")
        assert code == 1 and report["outcome"] == "failed"
        failure = report["restored"]["failures"][0]
        assert failure["key"] == "huge"
        assert "more than the target's proto-max-bulk-len (1.0 MB)" in failure["error"]
        assert report["restored"]["failed"] == 1
        assert server.client().exists("huge") == 0
        assert not [k for k in server.client().scan_iter() if b"rbkit-restore-tmp" in k]


def test_replace_renames_over_the_existing_key(tmp_path: Path) -> None:
    path, _at = make_big(tmp_path / "backup", "7.0")
    with target("7.0", **{"proto-max-bulk-len": "1mb"}) as server:
        c = server.client()
        c.set("other", "x")  # the target is not empty: --replace is needed
        code, report, _ = restore(path, server, "--yes", "--replace")
        assert code == 0, report["reasons"]
        assert report["restored"]["chunked"] == len(BIG)
        before = c.dump(b"big:list")
        code, report, _ = restore(path, server, "--yes", "--replace")
        assert code == 0 and c.dump(b"big:list") == before


def test_temporary_names_share_the_slot() -> None:
    for key in [b"plain", b"{tag}rest", b"a}b{", b"x{}y", b"}{", b"{user:7}big:list"]:
        name = temp_name(key)
        assert key_slot(name) == key_slot(key), key
        assert b"rbkit-restore-tmp" in name
    assert slot_tag(b"{user:7}big:list") == b"user:7" and slot_tag(b"x{}y") == b"x{}y"


def test_split_keeps_every_element_below_the_budget() -> None:
    items = [bytes([i % 256]) * 300 for i in range(100)]
    parts = list(split((b"RPUSH", b"k", *items), 1000))
    assert [a for p in parts for a in p[2:]] == items
    assert all(sum(len(a) for a in p) <= 1000 for p in parts)
    pairs = [x for i in range(50) for x in (b"f%d" % i, b"v" * 100)]
    parts = list(split((b"HSET", b"k", *pairs), 500))
    assert all(len(p) % 2 == 0 for p in parts) and [a for p in parts for a in p[2:]] == pairs


def test_a_cluster_takes_the_rename_in_the_key_slot(tmp_path: Path) -> None:
    path, _at = make_big(tmp_path / "backup", "7.0")
    with cluster() as nodes:
        for node in nodes:
            node.client().config_set("proto-max-bulk-len", "1mb")
        code, report, err = restore(path, nodes[0], "--yes", "--cluster")
        assert code == 0, (report or {}).get("reasons") or err
        assert report["restored"]["chunked"] == len(BIG)
        assert report["target"]["bulk_limit"] == LIMIT
        owner = _owner(nodes)
        with reference(path, "7.0") as ref:
            assert assert_same_keyspace(nodes[0], ref, client_of=owner) == len(BIG) + 201
        assert sum(n.client().dbsize() for n in nodes) == len(BIG) + 201


def test_a_temporary_key_left_by_a_lost_connection_is_named_then_resumed(
    tmp_path: Path,
) -> None:
    """The connection goes between the chunks and the RENAME: the report names the temporary
    key left on the target; --resume writes that key again and removes it."""
    path, _at = make_big(tmp_path / "backup", "7.0")
    with target("7.0", **{"proto-max-bulk-len": "1mb"}) as server:
        c = server.client()
        run = rbkit("restore", path, "--to", url_of(server), "--yes", "--json",
                    kill_after="chunk-drop")  # fmt: skip
        report = run.json()
        c.config_set("maxclients", 10000)
        assert run.code == 1 and report["outcome"] == "failed"
        [left] = report["restored"]["leftover_temp_keys"]
        temps = [k for k in c.scan_iter() if b"rbkit-restore-tmp" in k]
        assert [left["key"].encode()] == temps and left["db"] == 0
        assert report["journal"]["kept"]
        text = rbkit("restore", path, "--to", url_of(server), "--yes").text
        assert "--resume" in text
        code, report, err = restore(path, server, "--yes", "--resume")
        assert code == 0, (report or {}).get("reasons") or err
        assert not [k for k in c.scan_iter() if b"rbkit-restore-tmp" in k]
        with reference(path, "7.0") as ref:
            assert assert_same_keyspace(server, ref) == len(BIG) + 201


def test_without_config_the_default_limit_is_assumed_and_said(tmp_path: Path) -> None:
    """A user that may not run CONFIG: proto-max-bulk-len is taken as the default 512 MB,
    with a note; nothing here is bigger, so nothing goes in chunks."""
    path, _at = make_big(tmp_path / "backup", "7.0", 10)
    with target("7.0") as server:
        server.client().execute_command(
            "ACL", "SETUSER", "restorer", "on", ">pw", "~*", "&*", "+@all", "-config"
        )
        url = f"redis://restorer:pw@127.0.0.1:{server.port}"
        code, report, err = restore(path, url, "--yes")
        assert code == 0, (report or {}).get("reasons") or err
        assert report["target"]["bulk_limit"] == 512 << 20
        assert report["target"]["bulk_limit_source"].startswith("CONFIG GET not allowed")
        assert any(
            n.startswith("CONFIG GET proto-max-bulk-len is not allowed on ")
            and "the default 512 MB is assumed" in n
            for n in report["notes"]
        )
        assert report["restored"]["chunked"] == 0
