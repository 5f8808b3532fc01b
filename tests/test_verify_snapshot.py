"""A server read as its replication snapshot (toolkit.stage.live_snapshot), as the drill reads
its scratch server and the restore its target: the counts, types and key-name digest it gives
are checked against the server itself (SCAN and TYPE through redis-py, XXH64 by the reference
package), never against rbkit's own SCAN reader; and each reason not to read by SYNC falls
back to SCAN with that reason.

The restore's sampled value check (toolkit.restore.values) is here too: its sample is drawn by
the key names' hashes, and a changed value in it is found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import xxhash
from cluster_support import cluster
from conftest import DEBUG_CONFIG, binary, keep_expired_keys, server_ms, wait_past
from test_network_restore import assert_holds_file, fixture, restore, target

from toolkit.restore.network import verify as network_verify
from toolkit.restore.values import SAMPLE, compare_values
from toolkit.server.connect import Server
from toolkit.server.process import running_server
from toolkit.stage.live_snapshot import NoSnapshot, read_snapshot


def xxh(name: bytes) -> int:
    """XXH64, seed 0, of a key name, by the reference implementation (the xxhash package)."""
    return xxhash.xxh64_intdigest(name)


def fill(client: redis.Redis) -> int:
    """Keys of every built-in type in dbs 0 and 3, some with TTLs; returns a ms time before
    which none of those TTLs runs out."""
    far = server_ms(client) + 3_600_000
    for db in (0, 3):
        c = redis.Redis(port=client.connection_pool.connection_kwargs["port"], db=db)
        pipe = c.pipeline(transaction=False)
        for i in range(700):
            pipe.set(f"s:{i}", "v" * (i % 50))
            pipe.rpush(f"l:{i % 90}", i)
            pipe.sadd(f"t:{i % 80}", i)
            pipe.zadd(f"z:{i % 70}", {str(i): i})
            pipe.hset(f"h:{i % 60}", str(i), i)
        pipe.xadd("stream", {"a": "1"})
        pipe.set(b"\xff\x00bin\r\n", "x")
        for i in range(0, 700, 7):
            pipe.pexpireat(f"s:{i}", far + i)
        pipe.execute()
        c.close()
    return far


def truth(port: int) -> dict[int, tuple[int, dict[str, int], int, int]]:
    """Per db, from the server: keys, per-type counts, keys with a TTL, XOR of XXH64 names."""
    out = {}
    for db in range(16):
        c = redis.Redis(port=port, db=db)
        keys = list(c.scan_iter(count=1000))
        if keys:
            pipe = c.pipeline(transaction=False)
            for k in keys:
                pipe.type(k)
                pipe.pttl(k)
            replies = pipe.execute()
            types = Counter(t.decode() for t in replies[0::2])
            expiring = sum(1 for ttl in replies[1::2] if ttl >= 0)
            digest = 0
            for k in keys:
                digest ^= xxh(k)
            out[db] = (len(keys), dict(types), expiring, digest)
        c.close()
    return out


def as_read(live) -> dict[int, tuple[int, dict[str, int], int, int]]:
    return {
        db: (d.scanned, d.by_type, d.expires, d.digest)
        for db, d in live.databases.items()
        if d.scanned
    }


def server_of(port: int) -> Server:
    return Server.parse(f"redis://127.0.0.1:{port}")


@pytest.mark.parametrize("version", ["7.0", "8.2", "9.1"])
def test_snapshot_read_matches_the_server(version: str) -> None:
    with running_server(binary(version), config={"repl-diskless-sync": "yes"}) as server:
        client = server.client()
        fill(client)
        live = read_snapshot(server_of(server.port), quick_fork=True)
        assert live.via == "snapshot"
        assert as_read(live) == truth(server.port)
        client.close()


def test_keys_past_their_ttl_are_left_out_and_watched_keys_found() -> None:
    config = {"repl-diskless-sync": "yes", **DEBUG_CONFIG}
    with running_server(binary("7.0"), config=config) as server:
        client = server.client()
        keep_expired_keys(client)
        fill(client)
        soon = server_ms(client) + 200
        for i in range(30):
            client.set(f"gone:{i}", "x", pxat=soon)
        client.set("stays", "x")
        wait_past(client, soon)
        watch = {0: {xxh(b"gone:1"), xxh(b"stays"), xxh(b"never")}}
        held = client.dbsize()  # the expired keys are still in memory: active expiry is off
        live = read_snapshot(server_of(server.port), watch=watch, quick_fork=True)
        found = truth(server.port)  # SCAN deletes the expired keys it meets
        assert held == found[0][0] + 30
        assert as_read(live) == found
        assert live.databases[0].watched == {xxh(b"stays"): "string"}
        client.close()


def test_the_quick_forks_settings_are_set_back() -> None:
    config = {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": "7"}
    with running_server(binary("7.0"), config=config) as server:
        client = server.client()
        fill(client)
        read_snapshot(server_of(server.port), quick_fork=True)
        assert client.config_get("repl-diskless-sync-delay") == {"repl-diskless-sync-delay": "7"}
        assert client.config_get("rdbcompression") == {"rdbcompression": "yes"}
        client.close()


def test_disk_based_sync_is_not_used() -> None:
    """With repl-diskless-sync no the server would write its own dump file: refused."""
    with running_server(binary("7.0"), config={"repl-diskless-sync": "no"}) as server:
        with pytest.raises(NoSnapshot, match="repl-diskless-sync no"):
            read_snapshot(server_of(server.port))
        assert not (server.directory / "dump.rdb").exists()


def test_a_user_without_sync_is_refused() -> None:
    with running_server(binary("7.0"), config={"repl-diskless-sync": "yes"}) as server:
        client = server.client()
        client.acl_setuser("reader", enabled=True, passwords=["+pw"], commands=["+@all", "-sync"])
        client.acl_setuser("reader", keys=["*"])
        spec = f"redis://reader:pw@127.0.0.1:{server.port}"
        with pytest.raises(NoSnapshot):
            read_snapshot(Server.parse(spec))
        client.close()


def test_redis_6_2_is_refused() -> None:
    config = {"repl-diskless-sync": "yes"}
    with running_server(binary("6.2"), config=config) as server, pytest.raises(NoSnapshot):
        read_snapshot(server_of(server.port))


def test_the_value_sample_finds_a_changed_value(tmp_path: Path) -> None:
    """5,000 keys: about SAMPLE of them are compared; one of the sampled keys changed on the
    server is found, one key outside the sample is not looked at."""
    with running_server(binary("7.0")) as server:
        client = server.client()
        pipe = client.pipeline(transaction=False)
        for i in range(5000):
            pipe.set(f"k:{i}", f"v:{i}")
        pipe.execute()
        client.save()
        backup = tmp_path / "dump.rdb"
        backup.write_bytes((server.directory / "dump.rdb").read_bytes())
        # The sample, by the rule the module documents: the low bits of XXH64 of the name.
        mask = (1 << ((5000 // SAMPLE).bit_length() - 1)) - 1
        names = [f"k:{i}".encode() for i in range(5000)]
        sampled = [k for k in names if xxh(k) & mask == 0]
        outside = [k for k in names if xxh(k) & mask]
        assert SAMPLE // 2 <= len(sampled) <= 2 * SAMPLE
        check = compare_values(backup, lambda db: server.client(db=db), 5000)
        assert check.ok and check.compared == len(sampled)
        client.set(sampled[0], "changed")
        client.set(outside[0], "changed too")
        check = compare_values(backup, lambda db: server.client(db=db), 5000)
        assert check.differing == [(0, sampled[0])]
        client.close()


@pytest.mark.parametrize("sync", ["yes", "no"])
def test_a_network_restore_is_read_back_by_snapshot_where_it_can_be(
    sync: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the snapshot threshold at 0, the target of ``restore --to`` is read back as its
    replication snapshot (repl-diskless-sync yes) or by SCAN with the reason (no); either way
    the restored keyspace equals the fixture's as its own server loads it."""
    monkeypatch.setattr(network_verify, "SNAPSHOT_MIN_KEYS", 0)
    path = fixture("redis-7.0-all-types")
    with target("7.0", **{"repl-diskless-sync": sync}) as server:
        code, report, err = restore(path, server, "--yes")
        assert code == 0, (report or {}).get("reasons") or err
        read = report["verification"]["read"]
        assert report["verification"]["key_names_compared"] is True
        if sync == "yes":
            assert read["read_by"] == "snapshot"
        else:
            assert read["read_by"] == "scan"
            assert any("repl-diskless-sync no" in n for n in report["notes"]), report["notes"]
        assert_holds_file(server, path)


def content(c: redis.Redis, key: bytes) -> tuple[object, ...]:
    """A key as its server gives it: type, value (unordered where Redis keeps no order), and
    whether it has a TTL."""
    t = c.type(key)
    read = {
        b"string": c.get,
        b"list": lambda k: c.lrange(k, 0, -1),
        b"hash": c.hgetall,
        b"set": c.smembers,
        b"zset": lambda k: c.zrange(k, 0, -1, withscores=True),
    }[t]
    return t, read(key), c.pttl(key) > 0


def saved_backup(tmp_path: Path, fill: Callable[[redis.Redis], None]) -> tuple[Path, dict]:
    """A Redis 7.0 server filled by ``fill`` and SAVEd: its dump.rdb copied into
    ``tmp_path``, and each key's content as the server gave it right after the SAVE."""
    with running_server(binary("7.0")) as source:
        client = source.client()
        fill(client)
        client.save()
        want = {k: content(client, k) for k in client.scan_iter(count=1000)}
        client.close()
        backup = tmp_path / "dump.rdb"
        backup.write_bytes((source.directory / "dump.rdb").read_bytes())
    return backup, want


def cluster_restores(backup: Path) -> Iterator[tuple[bool, list, dict]]:
    """``restore --to NODE --cluster`` of ``backup`` into a new 3-primary cluster, twice: with
    every primary giving a snapshot, then with one refusing (repl-diskless-sync no): yields
    whether one refused, the nodes (the cluster still up) and the report of a restore that
    exited 0."""
    config = {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": "0"}
    for refusing in (False, True):
        with cluster(config=config) as nodes:
            if refusing:
                nodes[1].client().config_set("repl-diskless-sync", "no")
            code, report, err = restore(backup, nodes[0], "--yes", "--cluster")
            assert code == 0, (report or {}).get("reasons") or err
            assert report["verification"]["key_names_compared"] is True
            read = report["verification"]["read"]
            assert read["read_by"] == ("scan+snapshot" if refusing else "snapshot")
            yield refusing, nodes, report


def test_a_cluster_restore_is_read_back_by_each_primarys_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``restore --to NODE --cluster`` with the snapshot threshold at 0: every primary is read
    as its replication snapshot (one refusing, with repl-diskless-sync no, by SCAN: the JSON
    says scan+snapshot), and the cluster then holds exactly the source server's keys."""
    monkeypatch.setattr(network_verify, "SNAPSHOT_MIN_KEYS", 0)

    def fill(client: redis.Redis) -> None:
        far = server_ms(client) + 3_600_000
        pipe = client.pipeline(transaction=False)
        for i in range(300):
            pipe.set(f"s:{i}", f"v{i}")
            pipe.rpush(f"l:{i}", "a", "b")
            pipe.hset(f"h:{i}", mapping={"f": "1", "g": "2"})
            pipe.sadd(f"set:{i}", "x", "y", "z")
            pipe.zadd(f"z:{i}", {"m": 1.5})
            if i % 3 == 0:
                pipe.pexpireat(f"s:{i}", far)
        pipe.execute()

    backup, want = saved_backup(tmp_path, fill)
    for _refusing, nodes, report in cluster_restores(backup):
        assert report["verification"]["mode"] == "keyspace"
        held = {}
        for n in nodes:
            c = n.client()
            held.update({k: content(c, k) for k in c.scan_iter(count=1000)})
            c.close()
        assert held == want


def test_keys_expiring_while_a_cluster_is_read_back_are_judged_by_each_primarys_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache restored into a cluster: 3000 keys whose TTLs run out one every 4 ms from
    1.5 s after the backup's SAVE, so that some have run out before the load, some while
    the primaries are read back and the rest after. Each primary's snapshot is judged by its
    own cut (the backup's keys by their slots), one read by SCAN by its watched keys: the
    restore is verified with key names compared, allows for keys that ran out, and the
    cluster holds the backup's keys but those whose TTL ran out."""
    monkeypatch.setattr(network_verify, "SNAPSHOT_MIN_KEYS", 0)

    def fill(client: redis.Redis) -> None:
        start = server_ms(client) + 1_500
        pipe = client.pipeline(transaction=False)
        for i in range(3000):
            pipe.set(f"c:{i}", "v", pxat=start + 4 * i)
        for i in range(300):
            pipe.set(f"s:{i}", f"v{i}")
            pipe.hset(f"h:{i}", mapping={"f": "1"})
        pipe.execute()

    backup, want = saved_backup(tmp_path, fill)
    assert len(want) == 3600
    ran_out = Counter[str]()
    for _refusing, nodes, report in cluster_restores(backup):
        for a in report["verification"]["allowances"]:
            ran_out[a["kind"]] += a["keys"]
        held, plain = set(), {}  # (a "c:" key may run out between SCAN and TYPE)
        for n in nodes:
            c = n.client()
            for k in c.scan_iter(count=1000):
                held.add(k)
                if not k.startswith(b"c:"):
                    plain[k] = content(c, k)
            c.close()
        assert plain == {k: v for k, v in want.items() if not k.startswith(b"c:")}
        assert held <= set(want)
    assert ran_out["expired_during_drill"] > 0, ran_out  # the read-back's window was crossed
