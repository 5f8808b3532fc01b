"""Restores between Redis and Valkey 9.1, and of Redis Stack's module values, against the real
servers: what can go where, and a refusal with the server's own reason where it cannot.

What the servers themselves do is proved here first, each time, with plain commands: Valkey
9.1.2 refuses a DUMP payload of Redis's RDB 12 and Redis 8.2 one of Valkey's RDB 80 (so rbkit
takes the command path between them); Redis refuses a hash field expiry past 2^46 - 1 ms
(HPEXPIREAT: invalid expire time), which Valkey takes; Redis 7.0 has no HPEXPIREAT; a server
without RedisJSON or RedisBloom refuses their payloads. Module values are compared by their
serialized bytes (DUMP without its version and CRC footer): nothing better exists without the
module's own reading commands.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import FIXTURES, binary, invoke_cli, load_expected, stack_module_paths, valkey
from plain_view import assert_same_keyspace, reference
from restore_support import make_target, rbkit
from server_verdict import refusal

from toolkit.server.process import RedisServer, raw_reply, running_server

__all__ = ["make_target"]  # the fixture

BEYOND_REDIS_CAP_MS = 1 << 50  # fixtures/generate.py: a field TTL only Valkey takes
REDIS_FIELD_TTL_CAP_MS = (1 << 46) - 1  # t_hash.c HFE_MAX_ABS_TIME_MSEC


@contextlib.contextmanager
def server(version: str, modules: bool = False) -> Iterator[RedisServer]:
    """A scratch server: "9.1" Valkey, "7.4" Redis Stack (with its modules if ``modules``)."""
    mods = stack_module_paths() if modules else []
    with running_server(binary(version), modules=mods) as s:
        yield s


def restore_to(backup: Path, target: RedisServer, *args: str) -> tuple[int, dict[str, Any]]:
    run = invoke_cli("restore", backup, "--to", f"redis://127.0.0.1:{target.port}", "--json",
                     "--yes", *args)  # fmt: skip
    assert "Traceback" not in run.stdout + run.stderr
    return run.exit_code, json.loads(run.stdout)


def rdb(name: str) -> Path:
    return FIXTURES / f"{name}.rdb"


def assert_holds(target: RedisServer, path: Path, reads: str) -> int:
    """The target holds what a server of ``reads`` holds after loading ``path`` itself."""
    with reference(path, reads) as ref:
        return assert_same_keyspace(target, ref, encodings=reads == _version_of(target))


def _version_of(s: RedisServer) -> str:
    return ".".join(map(str, s.binary.version[:2]))


# -- what the servers do, proved ----------------------------------------------------------------


def test_the_servers_refuse_each_others_payloads_and_redis_caps_field_ttls() -> None:
    with server("8.2") as redis82, server("9.1") as vk:
        r, v = redis82.client(), vk.client()
        r.hset("h", mapping={"a": "1"})
        r.execute_command("HPEXPIREAT", "h", 4_102_444_800_000, "FIELDS", 1, "a")
        redis_payload = r.dump("h")  # RDB 12 (HASH_METADATA / LISTPACK_EX)
        v.hset("h", mapping={"a": "1"})
        v.execute_command("HPEXPIREAT", "h", BEYOND_REDIS_CAP_MS, "FIELDS", 1, "a")
        valkey_payload = v.dump("h")  # Valkey RDB 80 (HASH_2)
        assert redis_payload[-10:-8] == b"\x0c\x00" and valkey_payload[-10:-8] == b"\x50\x00"
        with pytest.raises(redis.ResponseError, match="payload version or checksum"):
            v.restore("from-redis", 0, redis_payload)
        with pytest.raises(redis.ResponseError, match="payload version or checksum"):
            r.restore("from-valkey", 0, valkey_payload)
        r.hset("cap", mapping={"a": "1"})
        assert r.execute_command("HPEXPIREAT", "cap", REDIS_FIELD_TTL_CAP_MS, "FIELDS", 1, "a") == [
            1
        ]
        with pytest.raises(redis.ResponseError, match="invalid expire time"):
            r.execute_command("HPEXPIREAT", "cap", REDIS_FIELD_TTL_CAP_MS + 1, "FIELDS", 1, "a")


# -- into Valkey --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["valkey-9.1-all-types", "valkey-9.1-hash-field-ttl"])
def test_valkey_backup_into_valkey_by_payload_exactly(name: str) -> None:
    path = rdb(name)
    with server("9.1") as target:
        code, report = restore_to(path, target)
        assert code == 0, report.get("reasons")
        assert report["outcome"] == "verified" and report["path"] == "payload"
        assert assert_holds(target, path, reads="9.1") > 0
        expected = load_expected(path)["functions"]
        listed = target.client().execute_command("FUNCTION", "LIST")
        assert sorted(lib[b"library_name"].decode() for lib in listed) == sorted(expected)


def test_redis_rdb_10_into_valkey_by_payload() -> None:
    """Valkey reads Redis's RDB up to 11: a 7.0 backup goes as RESTORE payloads."""
    path = rdb("redis-7.0-all-types")
    with server("9.1") as target:
        code, report = restore_to(path, target)
        assert code == 0, report.get("reasons")
        assert report["path"] == "payload"
        assert "reads REDIS RDB 10" in report["path_reason"]
        assert_holds(target, path, reads="9.1")


def test_redis_rdb_12_into_valkey_by_commands_with_field_ttls() -> None:
    path = rdb("redis-8.2-hash-field-ttl")
    with server("9.1") as target:
        code, report = restore_to(path, target)
        assert code == 0, report.get("reasons")
        assert report["path"] == "commands"
        assert "Valkey refuses payloads of Redis's REDIS RDB 12" in report["path_reason"]
        assert report["plan"]["field_ttls"] == "keep"
        assert_holds(target, path, reads="8.2")  # every field TTL, to the ms


def test_redis_module_values_cannot_go_to_valkey() -> None:
    path = rdb("redis-8.2-all-types")
    with server("9.1") as target:
        code, report = restore_to(path, target)
        assert code == 1 and report["outcome"] == "refused"
        assert any("module type graphdata" in r for r in report["reasons"])
        assert any("module type vectorset" in r for r in report["reasons"])
        assert target.client().dbsize() == 0


# -- from Valkey into Redis ---------------------------------------------------------------------


def test_valkey_field_ttl_past_redis_cap_is_refused_by_redis_8_2() -> None:
    path = rdb("valkey-9.1-hash-field-ttl")
    name = f"redis {binary('8.2').version_text}"
    sentence = (
        "1 hash field in 1 hash (e.g. 'hash:fttl:beyond-redis-cap') have a TTL past "
        f"{REDIS_FIELD_TTL_CAP_MS} ms (year 4199), the latest Redis takes (HPEXPIREAT: invalid "
        f"expire time; Valkey has no such cap); the target is {name} (--force restores those "
        "fields without their TTL)"
    )
    with server("8.2") as target:
        code, report = restore_to(path, target)
        assert code == 1 and report["reasons"] == [sentence]
        assert target.client().dbsize() == 0
        code, report = restore_to(path, target, "--force")
        assert code == 0, report.get("reasons")
        assert report["path"] == "commands" and report["plan"]["losses"] == [sentence]
        assert report["restored"]["field_ttls_dropped"] == 1
        c = target.client()
        assert c.execute_command(
            "HPEXPIRETIME", "hash:fttl:beyond-redis-cap", "FIELDS", 2, "far", "plain"
        ) == [-1, -1]
        # Every other field TTL arrived as it is in the file (Valkey reads it back the same).
        with reference(path, "9.1") as ref:
            for key in ("hash:fttl:small", "hash:fttl:hsetex", "hash:fttl:hgetex"):
                fields = sorted(ref.client().hkeys(key))
                args = ("HPEXPIRETIME", key, "FIELDS", len(fields), *fields)
                assert c.execute_command(*args) == ref.client().execute_command(*args)


def test_valkey_field_ttls_need_hpexpireat_on_redis_7_0() -> None:
    path = rdb("valkey-9.1-all-types")
    with server("7.0") as target:
        code, report = restore_to(path, target)
        assert code == 1
        assert [r for r in report["reasons"] if "HPEXPIREAT (Redis >= 7.4)" in r]
        assert target.client().dbsize() == 0


def test_valkey_backup_into_redis_8_2_without_field_ttls_goes_by_commands() -> None:
    path = rdb("valkey-9.1-all-types")
    with server("8.2") as target:
        code, report = restore_to(path, target, "--force")
        assert code == 0, report.get("reasons")
        assert report["path"] == "commands"
        assert "Redis cannot read a VALKEY RDB 80 file's payloads" in report["path_reason"]
        assert report["restored"]["field_ttls_dropped"] == 1  # only the one past Redis's cap


# -- Redis Stack's module values ------------------------------------------------------------------


def test_stack_module_values_into_stack_by_payload_compared_by_bytes() -> None:
    path = rdb("stack-7.4-modules")
    with server("7.4", modules=True) as target:
        code, report = restore_to(path, target)
        assert code == 0, report.get("reasons")
        assert report["outcome"] == "verified" and report["path"] == "payload"
        # Module values compared by their serialized bytes (DUMP less its footer).
        assert (
            assert_holds(target, path, reads="7.4") == load_expected(path)["databases"]["0"]["keys"]
        )
        c = target.client()
        assert c.execute_command("JSON.GET", "json:doc", "$.name") == b'["rbkit"]'
        assert c.execute_command("BF.EXISTS", "bf:users", "user:7") == 1
        info = raw_reply(c, "TS.INFO", "ts:temp")
        info = info if isinstance(info, dict) else dict(zip(info[::2], info[1::2], strict=True))
        assert info[b"rules"]  # the compaction rule came along


@pytest.mark.parametrize("version", ["8.2", "9.1"])
def test_stack_module_values_are_refused_where_no_module_reads_them(version: str) -> None:
    path = rdb("stack-7.4-modules")
    types = load_expected(path)["modules"]
    with server(version) as target:
        code, report = restore_to(path, target)
        assert code == 1 and report["outcome"] == "refused"
        for t in types:
            [reason] = [r for r in report["reasons"] if f"module type {t}" in r]
            if version == "8.2":  # the module that would read it is named
                assert "(Redis" in reason and "has no module for it" in reason
        assert target.client().dbsize() == 0
        # The server agrees: a RedisJSON payload is refused without the module.
        with server("7.4", modules=True) as stack:
            payload = stack.client()
            payload.execute_command("JSON.SET", "j", "$", "1")
            dumped = payload.dump("j")
        with pytest.raises(redis.ResponseError):
            target.client().restore("j", 0, dumped)


# -- file mode: a Valkey data dir ---------------------------------------------------------------


def test_file_restore_into_a_valkey_target(make_target) -> None:
    valkey()
    t = make_target("9.1", fill=True)
    backup = rdb("valkey-9.1-all-types")
    run = rbkit("restore", backup, "--config", t.conf, "--yes", "--json")
    assert run.code == 0, run.text
    report = run.json()
    assert report["outcome"] == "restored", report
    assert report["verification"]["verified"]
    assert (t.data / "dump.rdb").read_bytes() == backup.read_bytes()


@pytest.mark.parametrize(
    ("backup", "version", "words"),
    [
        ("redis-8.2-strings-only", "9.1", "RDB 12 (Redis 7.4+) cannot be loaded by Valkey"),
        ("valkey-9.1-all-types", "8.2", "cannot be loaded by Redis"),
    ],
)
def test_file_restore_across_families_is_refused_as_the_server_would(
    make_target, backup: str, version: str, words: str
) -> None:
    t = make_target(version, fill=True)
    run = rbkit("restore", rdb(backup), "--config", t.conf, "--yes", "--json")
    assert run.code != 0
    assert any(words in r for r in run.json()["reasons"]), run.json()
    assert t.keys(0, "old:*")  # the target's data untouched
    # The server itself refuses that file as its dump.rdb.
    assert refusal(binary(version), rdb(backup).read_bytes()) is not None
