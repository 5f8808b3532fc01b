"""The keyspace model against a real server: replaying its AOF must rebuild its keyspace.

Hypothesis writes random command sequences over a few keys in three dbs (keys collide and
change type; commands a key's type rejects are sent anyway, since Redis does not propagate a
failed command), with MULTI/EXEC, SELECT, SWAPDB, MOVE, RENAME, COPY, FLUSHDB, scripts,
expiries far ahead and in the past. A fresh redis-server 7.0 with ``appendonly yes``,
``appendfsync always`` and no RDB preamble runs them; its ``appendonlydir`` is then replayed
into a :class:`Keyspace` whose inventory and per-key values must equal what the server holds.
A second test does the same across a rewrite with an RDB preamble, seeding from the base RDB.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from conftest import binary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_keyspace import FUT, fuzzy_lengths, model_state, server_state

from parsers.aof.manifest import parse_manifest
from parsers.aof.resp import Annotation, read_commands
from parsers.rdb.decode import decode_key_values
from parsers.rdb.walker import RdbWalker
from toolkit.check.keyspace import Keyspace
from toolkit.server.process import RedisServer, running_server

DBS = range(3)
AOF_CONFIG = {
    "appendonly": "yes",
    "appendfsync": "always",
    "aof-use-rdb-preamble": "no",
}
# The only approximation a server-written AOF may cause: a lex range over mixed scores
# (the model then scans as a listpack-encoded zset does, which these small zsets are).
ALLOWED_APPROXIMATIONS = {"lex range over members of different scores"}


VERSIONS = ["7.0", "8.2"]


# -- the command generator -------------------------------------------------------------------

Cmd = tuple[bytes, ...]

SHARED_KEYS = [b"k0", b"k1"]  # every family uses these too, so types collide there


def keys(*own: bytes) -> st.SearchStrategy[bytes]:
    return st.sampled_from([*own, *SHARED_KEYS])


SK, LK, TK, ZK, HK, XK = (
    keys(b"s0", b"s1"),
    keys(b"l0", b"l1"),
    keys(b"t0", b"t1"),
    keys(b"z0", b"z1"),
    keys(b"h0"),
    keys(b"x0", b"x1"),
)
KEY = keys(b"s0", b"l0", b"t0", b"z0", b"h0", b"x0")
MEMBER = st.sampled_from([b"a", b"b", b"c", b"d"])
MEMBERS = st.lists(MEMBER, min_size=1, max_size=4)
SCORE = st.sampled_from([b"0", b"0", b"1", b"2.5", b"-1", b"+inf"])
DB = st.sampled_from([str(d).encode() for d in DBS])
SMALL = st.integers(-3, 3).map(lambda i: str(i).encode())
COUNT = st.integers(1, 4).map(lambda i: str(i).encode())
FUTURE = st.integers(0, 10**6).map(lambda i: str(FUT + i).encode())
WHEN = st.one_of(FUTURE, FUTURE, st.just(b"1000"))  # an absolute ms time, sometimes past
STREAM_ID = st.sampled_from([b"*", b"*", b"1-1", b"2-0", b"2-*", b"5", b"9-9"])
LIBS = [b"liba", b"libb"]


def c(*parts: object) -> st.SearchStrategy[Cmd]:
    """A command from literal bytes and strategies (lists of bytes are spliced in)."""
    strategies = [p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts]

    def flat(values: tuple) -> Cmd:
        out: list[bytes] = []
        for v in values:
            out.extend(v if isinstance(v, (list, tuple)) else [v])
        return tuple(out)

    return st.tuples(*strategies).map(flat)


def opt(*choices: object) -> st.SearchStrategy:
    """One of the given option lists (or nothing)."""
    return st.sampled_from([[]] + [list(x) if isinstance(x, tuple) else [x] for x in choices])


def _lib(name: bytes) -> bytes:
    return b"#!lua name=" + name + b"\nredis.register_function('" + name + b"f', function() end)"


SCRIPT = (
    b"redis.pcall('SET', KEYS[1], ARGV[1]) redis.pcall('RPUSH', KEYS[2], ARGV[1]) "
    b"redis.pcall('SADD', KEYS[1], ARGV[1])"
)

_COMMANDS = [
    # strings
    c(
        b"SET",
        SK,
        MEMBER,
        opt(b"NX", b"XX", b"GET", b"KEEPTTL", (b"PXAT", b"1000"), (b"EX", b"100000")),
    ),
    c(b"SET", SK, MEMBER, b"PXAT", FUTURE, opt(b"NX", b"XX", b"GET")),
    c(b"APPEND", SK, MEMBER),
    c(b"INCR", SK),
    c(b"INCRBYFLOAT", SK, b"1.5"),
    c(b"SETRANGE", SK, SMALL.map(lambda b: b.lstrip(b"-")), MEMBER),
    c(b"GETDEL", SK),
    c(b"GETEX", SK, st.sampled_from([[b"PERSIST"], [b"PX", b"100000"], [b"PXAT", b"1000"]])),
    c(b"MSET", SK, MEMBER, SK, MEMBER),
    c(b"MSETNX", SK, MEMBER, SK, MEMBER),
    c(b"SETBIT", SK, st.sampled_from([b"0", b"9", b"40"]), b"1"),
    c(b"PFADD", SK, MEMBERS),
    c(b"BITOP", b"OR", SK, SK, SK),
    # lists
    c(st.sampled_from([b"RPUSH", b"LPUSH", b"RPUSHX", b"LPUSHX"]), LK, MEMBERS),
    c(st.sampled_from([b"LPOP", b"RPOP"]), LK, opt(b"1", b"2", b"9")),
    c(b"LREM", LK, SMALL, MEMBER),
    c(b"LINSERT", LK, st.sampled_from([b"BEFORE", b"AFTER"]), MEMBER, MEMBER),
    c(b"LSET", LK, SMALL, MEMBER),
    c(b"LTRIM", LK, SMALL, SMALL),
    c(b"LMOVE", LK, LK, st.sampled_from([b"LEFT", b"RIGHT"]), st.sampled_from([b"LEFT"])),
    c(b"RPOPLPUSH", LK, LK),
    c(b"LMPOP", b"2", LK, LK, st.sampled_from([b"LEFT", b"RIGHT"]), opt((b"COUNT", b"2"))),
    c(st.sampled_from([b"BLPOP", b"BRPOP"]), LK, LK, b"0.01"),
    c(b"BLMOVE", LK, LK, b"RIGHT", b"LEFT", b"0.01"),
    # sets
    c(b"SADD", TK, MEMBERS),
    c(b"SREM", TK, MEMBERS),
    c(b"SPOP", TK, opt(b"1", b"2", b"9")),
    c(b"SMOVE", TK, TK, MEMBER),
    c(st.sampled_from([b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE"]), TK, TK, TK),
    # sorted sets
    c(b"ZADD", ZK, opt(b"NX", b"XX", b"GT", b"LT", (b"XX", b"GT"), b"CH"), SCORE, MEMBER),
    c(b"ZADD", ZK, SCORE, MEMBER, SCORE, MEMBER),
    c(b"ZADD", ZK, b"INCR", SCORE, MEMBER),
    c(b"ZINCRBY", ZK, SCORE, MEMBER),
    c(b"ZREM", ZK, MEMBERS),
    c(b"ZREMRANGEBYSCORE", ZK, st.sampled_from([b"-inf", b"(0", b"1"]), b"2.5"),
    c(b"ZREMRANGEBYRANK", ZK, SMALL, SMALL),
    c(b"ZREMRANGEBYLEX", ZK, st.sampled_from([b"-", b"[b", b"(a"]), b"[c"),
    c(st.sampled_from([b"ZPOPMIN", b"ZPOPMAX"]), ZK, opt(b"2")),
    c(st.sampled_from([b"BZPOPMIN", b"BZPOPMAX"]), ZK, b"0.01"),
    c(b"ZMPOP", b"2", ZK, ZK, st.sampled_from([b"MIN", b"MAX"]), opt((b"COUNT", b"3"))),
    c(
        st.sampled_from([b"ZUNIONSTORE", b"ZINTERSTORE"]),
        ZK,
        b"2",
        ZK,
        ZK,
        opt((b"WEIGHTS", b"2", b"-1"), (b"AGGREGATE", b"MAX")),
    ),
    c(b"ZDIFFSTORE", ZK, b"2", ZK, ZK),
    c(
        b"ZRANGESTORE",
        ZK,
        ZK,
        st.sampled_from(
            [
                [b"0", b"1"],
                [b"-inf", b"(2.5", b"BYSCORE"],
                [b"+", b"[b", b"BYLEX", b"REV", b"LIMIT", b"0", b"2"],
            ]
        ),
    ),
    c(b"GEOADD", ZK, b"13.36", b"38.11", MEMBER),
    # hashes
    c(b"HSET", HK, MEMBER, b"v", opt((b"d", b"w"))),
    c(b"HSETNX", HK, MEMBER, b"v"),
    c(b"HDEL", HK, MEMBERS),
    c(b"HINCRBY", HK, MEMBER, b"2"),
    c(b"HINCRBYFLOAT", HK, MEMBER, b"0.5"),
    # hash field expiry (7.4, 8.0): a 7.0 server rejects them, and writes nothing
    c(b"HPEXPIREAT", HK, WHEN, opt(b"NX", b"XX", b"GT", b"LT"), b"FIELDS", b"1", MEMBER),
    c(b"HEXPIRE", HK, b"100000", b"FIELDS", b"2", MEMBER, MEMBER),
    c(b"HPERSIST", HK, b"FIELDS", b"1", MEMBER),
    c(
        b"HSETEX",
        HK,
        opt(b"FNX", b"FXX"),
        opt(b"KEEPTTL", (b"PXAT", str(FUT + 7).encode()), (b"PXAT", b"1000"), (b"PX", b"9000")),
        b"FIELDS",
        b"1",
        MEMBER,
        b"v",
    ),
    c(
        b"HGETEX",
        HK,
        opt(b"PERSIST", (b"PXAT", str(FUT + 9).encode()), (b"PXAT", b"1000"), (b"EX", b"9")),
        b"FIELDS",
        b"1",
        MEMBER,
    ),
    c(b"HGETDEL", HK, b"FIELDS", b"1", MEMBER),
    # streams
    c(
        b"XADD",
        XK,
        opt((b"MAXLEN", b"~", b"2"), (b"MAXLEN", b"1"), b"NOMKSTREAM"),
        STREAM_ID,
        b"f",
        b"v",
    ),
    c(b"XDEL", XK, st.sampled_from([b"1-1", b"2-0", b"5-0"])),
    c(
        b"XTRIM",
        XK,
        st.sampled_from([[b"MAXLEN", b"1"], [b"MINID", b"~", b"3"], [b"MINID", b"2"]]),
    ),
    c(b"XGROUP", b"CREATE", XK, b"g", b"$", opt(b"MKSTREAM")),
    c(b"XSETID", XK, b"99-0"),
    c(b"XREADGROUP", b"GROUP", b"g", b"c1", b"COUNT", b"1", b"STREAMS", XK, b">"),
    c(b"XAUTOCLAIM", XK, b"g", b"c2", b"0", b"0"),
    # keys, expiries, dbs
    c(st.sampled_from([b"DEL", b"UNLINK"]), KEY, opt(b"k1")),
    c(st.sampled_from([b"RENAME", b"RENAMENX"]), KEY, KEY),
    c(b"MOVE", KEY, DB),
    c(b"COPY", KEY, KEY, opt((b"DB", b"1"), b"REPLACE", (b"DB", b"2", b"REPLACE"))),
    c(b"PEXPIREAT", KEY, WHEN, opt(b"NX", b"XX", b"GT", b"LT")),
    c(b"EXPIRE", KEY, b"100000"),
    c(b"PERSIST", KEY),
    c(b"SELECT", DB),
    c(b"SELECT", DB),
    c(b"SWAPDB", DB, DB),
    st.sampled_from([(b"FLUSHDB",), (b"PING",), (b"PING",)]),
    # scripts and functions: Redis 7 writes their effects, never the script
    c(b"EVAL", SCRIPT, b"2", KEY, KEY, MEMBER),
    c(b"FUNCTION", b"LOAD", opt(b"REPLACE"), st.sampled_from(LIBS).map(_lib)),
    c(b"FUNCTION", b"DELETE", st.sampled_from(LIBS)),
]
# A uniform pick among the builders (st.one_of would favour the first ones).
COMMANDS = st.sampled_from(_COMMANDS).flatmap(lambda builder: builder)

STEPS = st.lists(
    st.one_of(
        COMMANDS.map(lambda cmd: [cmd]),
        st.tuples(
            st.lists(COMMANDS, min_size=1, max_size=4), st.sampled_from([b"EXEC", b"DISCARD"])
        ).map(lambda t: [(b"MULTI",), *t[0], (t[1],)]),
    ),
    min_size=20,
    max_size=60,
).map(lambda steps: [cmd for step in steps for cmd in step])


# -- running and replaying ---------------------------------------------------------------------


def send(server: RedisServer, commands: list[Cmd]) -> None:
    """Each command on one connection (SELECT and MULTI hold); error replies are ignored."""
    conn = redis.Connection(host="127.0.0.1", port=server.port)
    try:
        for cmd in commands:
            conn.send_command(*cmd)
            with contextlib.suppress(redis.ResponseError):
                conn.read_response()
    finally:
        conn.disconnect()


def replay(directory: Path, ks: Keyspace | None = None) -> Keyspace:
    """Load a server's appendonlydir into a Keyspace as Redis would: base, then incr files."""
    ks = ks or Keyspace()
    aof_dir = directory / "appendonlydir"
    (manifest_path,) = aof_dir.glob("*.manifest")
    manifest = parse_manifest(manifest_path.read_bytes())
    files = ([manifest.base] if manifest.base else []) + list(manifest.incrs)
    for entry in files:
        data = (aof_dir / entry.name).read_bytes()
        if data.startswith(b"REDIS"):
            walker = RdbWalker(data)
            for db, key, expire, value in decode_key_values(walker):
                ks.load_key(db, key, value, expire)
            for f in walker.functions:
                ks.load_function(f.library)
            continue
        ks.execute((b"SELECT", b"0"))  # each file is loaded by a fresh client, in db 0
        at_ms = None
        for item in read_commands(data):
            if isinstance(item, Annotation):
                ts = item.timestamp
                at_ms = ts * 1000 if ts is not None else at_ms
            else:
                ks.execute(item.args, at_ms)
        assert not ks.in_multi, f"{entry.name} ends inside MULTI"
    return ks


def live_inventory(server: RedisServer) -> dict[int, tuple[int, int, dict[str, int]]]:
    """Per db (keys, expires, by_type) from INFO keyspace and SCAN + TYPE."""
    info = server.client().info("keyspace")
    out = {}
    for db in DBS:
        c = server.client(db)
        by_type = Counter(c.type(k).decode() for k in c.scan_iter(count=1000))
        c.close()
        stats = info.get(f"db{db}")
        if stats or by_type:
            out[db] = (stats["keys"], stats["expires"], dict(sorted(by_type.items())))
    return out


def live_functions(server: RedisServer) -> list[str]:
    libraries = server.client(decode_responses=True).function_list()
    return sorted(dict(zip(lib[::2], lib[1::2], strict=True))["library_name"] for lib in libraries)


def check_model_against(server: RedisServer, ks: Keyspace) -> None:
    # Read the server first: SCAN expires keys already past, and their DELs reach the AOF.
    values, expires = server_state(server, DBS)
    want_inventory = live_inventory(server)
    functions = live_functions(server)
    ks = replay(server.directory, ks)
    assert not ks.unknown and not ks.errors, (ks.unknown, ks.errors)
    assert set(ks.approximations) <= ALLOWED_APPROXIMATIONS, ks.approximations
    inv = ks.inventory(int(time.time() * 1000))
    got_inventory = {
        db: (s.keys, s.expires, s.by_type) for db, s in inv.databases.items() if db in DBS
    }
    assert got_inventory == want_inventory
    assert all(s.expired_at_check == 0 for s in inv.databases.values())
    assert inv.functions == functions
    model_values, model_expires = model_state(ks)
    assert model_values == fuzzy_lengths(values, model_values)
    assert model_expires == expires


@contextlib.contextmanager
def aof_server(version: str = "7.0", **extra: str) -> Iterator[RedisServer]:
    with running_server(binary(version), config={**AOF_CONFIG, **extra}) as server:
        yield server


@pytest.mark.parametrize("version", VERSIONS)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(commands=STEPS)
def test_replayed_aof_equals_the_server(version: str, commands: list[Cmd]) -> None:
    with aof_server(version) as server:
        send(server, commands)
        check_model_against(server, Keyspace())


def wait_for_rewrite(server: RedisServer, timeout: float = 30.0) -> None:
    c = server.client()
    deadline = time.monotonic() + timeout
    while True:
        info = c.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        if time.monotonic() > deadline:
            raise AssertionError("BGREWRITEAOF did not finish")
        time.sleep(0.02)


BEFORE_REWRITE = [
    (b"SET", b"s", b"hello", b"PXAT", str(FUT).encode()),
    (b"RPUSH", b"l", b"a", b"b", b"c"),
    (b"SADD", b"set", b"1", b"2", b"x"),
    (b"ZADD", b"z", b"1", b"a", b"2.5", b"b"),
    (b"HSET", b"h", b"f", b"v", b"g", b"w"),
    (b"XADD", b"x", b"1-1", b"f", b"v"),
    (b"XADD", b"x", b"2-1", b"f", b"v"),
    (b"XGROUP", b"CREATE", b"x", b"grp", b"0"),
    (b"XADD", b"empty", b"1-1", b"f", b"v"),
    (b"XDEL", b"empty", b"1-1"),
    (b"SELECT", b"2"),
    (b"SET", b"other", b"1"),
    (b"FUNCTION", b"LOAD", _lib(b"liba")),
]
AFTER_REWRITE = [
    (b"SELECT", b"0"),
    (b"RPUSH", b"l", b"d"),
    (b"SREM", b"set", b"x"),
    (b"XADD", b"x", b"2-2", b"f", b"v"),
    (b"XGROUP", b"CREATE", b"x", b"grp2", b"$"),
    # Propagated as XCLAIM / XGROUP SETID / XACK: no keyspace effect, but they must be known.
    (b"XREADGROUP", b"GROUP", b"grp", b"c1", b"COUNT", b"2", b"STREAMS", b"x", b">"),
    (b"XACK", b"x", b"grp", b"1-1"),
    (b"XCLAIM", b"x", b"grp", b"c2", b"0", b"2-1"),
    (b"XAUTOCLAIM", b"x", b"grp", b"c3", b"0", b"0"),
    (b"XGROUP", b"CREATECONSUMER", b"x", b"grp", b"c4"),
    (b"XGROUP", b"DELCONSUMER", b"x", b"grp", b"c4"),
    (b"XGROUP", b"SETID", b"x", b"grp2", b"0"),
    (b"XGROUP", b"DESTROY", b"x", b"grp2"),
    (b"XADD", b"empty", b"3-0", b"f", b"v"),
    (b"HDEL", b"h", b"f"),
    (b"SWAPDB", b"0", b"1"),
    (b"FUNCTION", b"LOAD", _lib(b"libb")),
]

# Hash field TTLs in the base RDB (a listpack-ex hash), then HINCRBYFLOAT, which 8.x writes
# as HSETEX KEEPTTL (7.4 wrote HSET, losing the field's TTL on reload).
HFE_BEFORE_REWRITE = [
    (b"SELECT", b"0"),
    (b"HSET", b"fh", b"a", b"1", b"b", b"2"),
    (b"HPEXPIREAT", b"fh", str(FUT).encode(), b"FIELDS", b"1", b"a"),
]
HFE_AFTER_REWRITE = [
    (b"SELECT", b"1"),  # fh is in db 1 after the SWAPDB
    (b"HINCRBYFLOAT", b"fh", b"a", b"1.5"),
    (b"HPEXPIREAT", b"fh", str(FUT + 1).encode(), b"FIELDS", b"1", b"b"),
]


@pytest.mark.parametrize("version", VERSIONS)
def test_rdb_preamble_after_a_rewrite(version: str) -> None:
    """A rewrite with the RDB preamble: the base is an RDB, then incr files of commands."""
    config = {"aof-use-rdb-preamble": "yes", "aof-timestamp-enabled": "yes"}
    with aof_server(version, **config) as server:
        hfe = server.binary.version >= (7, 4)
        send(server, BEFORE_REWRITE + (HFE_BEFORE_REWRITE if hfe else []))
        server.client().bgrewriteaof()
        wait_for_rewrite(server)
        send(server, AFTER_REWRITE + (HFE_AFTER_REWRITE if hfe else []))
        aof_dir = server.directory / "appendonlydir"
        assert any(p.name.endswith(".base.rdb") for p in aof_dir.iterdir())
        ks = Keyspace()
        check_model_against(server, ks)
        assert ks.value(1, b"x") == ["1-1", "2-1", "2-2"]
        assert ks.value(1, b"empty") == ["3-0"]


# -- the AOF check's compact store against the server ------------------------------------------

C_KEY = st.sampled_from([b"c0", b"c1", b"c2", b"s0", b"t0", b"z0", b"h0", b"l0"])
# The commands the compact store applies, on keys of their own (c*) and shared ones.
_STORE_COMMANDS = [
    c(b"SET", C_KEY, MEMBER),
    c(st.sampled_from([b"RPUSH", b"LPUSH"]), C_KEY, MEMBERS),
    c(b"SADD", C_KEY, MEMBERS),
    c(st.sampled_from([b"HSET", b"HMSET"]), C_KEY, MEMBER, b"v", opt((b"d", b"w"))),
    c(b"ZADD", C_KEY, SCORE, MEMBER, opt((b"1e3", b"b"))),
    c(b"PEXPIREAT", C_KEY, WHEN),
    c(b"DEL", C_KEY),
]
MIXED_STEPS = st.lists(
    st.one_of(
        st.sampled_from(_STORE_COMMANDS).flatmap(lambda b: b).map(lambda cmd: [cmd]),
        st.sampled_from(_STORE_COMMANDS).flatmap(lambda b: b).map(lambda cmd: [cmd]),
        st.sampled_from(_COMMANDS[:-3]).flatmap(lambda b: b).map(lambda cmd: [cmd]),  # no scripts
        st.tuples(
            st.lists(COMMANDS, min_size=1, max_size=3), st.sampled_from([b"EXEC", b"DISCARD"])
        ).map(lambda t: [(b"MULTI",), *t[0], (t[1],)]),
    ),
    min_size=20,
    max_size=60,
).map(lambda steps: [cmd for step in steps for cmd in step if cmd[0] != b"EVAL"])


def _elements(v: object) -> int:
    return 1 if isinstance(v, int) else len(v)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", VERSIONS)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(commands=MIXED_STEPS)
def test_checked_aof_with_the_compact_store_equals_the_server(
    version: str, commands: list[Cmd]
) -> None:
    """``rbkit check`` of the server's AOF, the compact store applying the common commands:
    its inventory and each key's type, element count and expiry are the server's."""
    from toolkit.check import aof as aof_module
    from toolkit.check.aof import check_multipart

    assert aof_module.USE_COMPACT
    with aof_server(version) as server:
        send(server, commands)
        values, expires = server_state(server, DBS)
        want_inventory = live_inventory(server)
        types = {}
        for db in DBS:
            client = server.client(db)
            types.update({(db, k): client.type(k).decode() for k in client.scan_iter(count=1000)})
            client.close()
        manifest = next((server.directory / "appendonlydir").glob("*.manifest"))
        result = check_multipart(manifest, now_ms=int(time.time() * 1000))
        assert result.replay is not None and result.inventory is not None
        ks = result.replay.keyspace
        assert ks.compact is not None  # the store took part
        assert not ks.unknown and not ks.errors, (ks.unknown, ks.errors)
        got_inventory = {
            db: (s.keys, s.expires, s.by_type)
            for db, s in result.inventory.databases.items()
            if db in DBS
        }
        assert got_inventory == want_inventory
        got = {(db, key): (t, n, e) for db, key, t, e, n in ks.entries()}
        want = {
            (db, key): (
                types[db, key],
                _elements(v),
                expires.get(db, {}).get(key),
            )
            for db, keys in values.items()
            for key, v in keys.items()
        }
        assert got == want
