"""The AOF keyspace model, one command family at a time.

Each case in ``CASES`` is a command sequence and the exact keyspace Redis's documented
semantics give: the model must produce it, and so must a real redis-server (7.0, or 8.2 for
hash-field TTL commands) fed the same commands, so the expectations are checked too. Cases
about loading itself (expiries already past, relative times, approximations) run on the
model only: a live server and a loading one differ there by design.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from conftest import binary

from parsers.rdb.decode import HashValue, ModuleValue, SetValue, StreamValue, StringValue
from toolkit.check.keyspace import UNKNOWN_TIME, Keyspace
from toolkit.server.process import RedisServer, running_server

FUT = 4_102_444_800_000  # 2100-01-01, in ms: "far in the future" for every expiry below
FUT_S = FUT // 1000
NOW = 1_700_000_000_000

State = dict[int, dict[bytes, Any]]
Expires = dict[int, dict[bytes, int]]


def cmd(text: str) -> tuple[bytes, ...]:
    """``'SET a "x y"'`` -> (b'SET', b'a', b'x y')."""
    return tuple(w.encode() for w in shlex.split(text))


def run(commands: list[str], at_ms: int | None = None) -> Keyspace:
    ks = Keyspace()
    for c in commands:
        ks.execute(cmd(c), at_ms)
    return ks


def model_state(ks: Keyspace) -> tuple[State, Expires]:
    """Every key's value (as ``Keyspace.value`` gives it) and expiry, per db."""
    values: State = {}
    expires: Expires = {}
    for db, key, _type, expire, _n in ks.entries():
        values.setdefault(db, {})[key] = ks.value(db, key)
        if expire is not None:
            expires.setdefault(db, {})[key] = expire
    return values, expires


def server_state(server: RedisServer, dbs: range = range(16)) -> tuple[State, Expires]:
    """The same picture of a live server: SCAN, TYPE and a read per type, PEXPIRETIME."""
    values: State = {}
    expires: Expires = {}
    hfe = server.binary.version >= (7, 4, 0)
    for db in dbs:
        c = server.client(db)
        for key in c.scan_iter(count=1000):
            t = c.type(key).decode()
            v: Any
            if t == "string":
                v = c.strlen(key)
            elif t == "list":
                v = c.lrange(key, 0, -1)
            elif t == "set":
                v = set(c.smembers(key))
            elif t == "zset":
                v = dict(c.zrange(key, 0, -1, withscores=True))
            elif t == "hash":
                fields = c.hkeys(key)
                ttls = [-1] * len(fields)
                if hfe:
                    ttls = c.execute_command("HPEXPIRETIME", key, "FIELDS", len(fields), *fields)
                v = {f: (None if t < 0 else t) for f, t in zip(fields, ttls, strict=True)}
            elif t == "stream":
                v = [i.decode() for i, _ in c.xrange(key)]
            else:
                v = t
            values.setdefault(db, {})[key] = v
            expire = c.pexpiretime(key)
            if expire >= 0:
                expires.setdefault(db, {})[key] = expire
        c.close()
    return values, expires


def send_all(server: RedisServer, commands: list[str]) -> None:
    """Send each command on one connection (so SELECT and MULTI hold); ignore error replies."""
    conn = redis.Connection(host="127.0.0.1", port=server.port)
    try:
        for c in commands:
            conn.send_command(*cmd(c))
            with contextlib.suppress(redis.ResponseError):
                conn.read_response()
    finally:
        conn.disconnect()


def fuzzy_lengths(found: State, expected: State) -> State:
    """``found`` with string lengths replaced by -1 where ``expected`` says "unknown" (-1)."""
    out: State = {}
    for db, keys in found.items():
        out[db] = {}
        for k, v in keys.items():
            want = expected.get(db, {}).get(k)
            out[db][k] = -1 if want == -1 and isinstance(v, int) and v > 0 else v
    return out


# name -> (commands, expected values, expected expiries[, minimum server version])
CASES: dict[str, tuple] = {
    "select-swapdb-flush": (
        [
            "SET a x",
            "SELECT 1",
            "SET b yy",
            "SWAPDB 0 1",
            "SET c zzz",
            "SELECT 2",
            "SET d 1",
            "FLUSHDB",
            "SELECT 3",
            "SET e 1",
        ],
        {0: {b"b": 2}, 1: {b"a": 1, b"c": 3}, 3: {b"e": 1}},
        {},
    ),
    "flushall": (
        ["SET a 1", "SELECT 1", "SET b 1", "FLUSHALL", "SET c 1", "SELECT 0", "SET d 1"],
        {0: {b"d": 1}, 1: {b"c": 1}},
        {},
    ),
    "del-unlink": (
        ["SET a 1", "SET b 1", "SET c 1", "DEL a x", "UNLINK b"],
        {0: {b"c": 1}},
        {},
    ),
    "rename": (
        [
            f"SET a 1 PXAT {FUT}",
            "SET b 22",
            "RENAME a b",
            "SET c 333",
            "RENAMENX c b",
            "RENAMENX c d",
            "RENAME d d",
            "RENAME nokey x",
        ],
        {0: {b"b": 1, b"d": 3}},
        {0: {b"b": FUT}},
    ),
    "move": (
        [
            f"SET a 1 PXAT {FUT}",
            "MOVE a 1",
            "SET b 1",
            "SELECT 1",
            "SET b 22",
            "SELECT 0",
            "MOVE b 1",
            "MOVE nokey 1",
        ],
        {0: {b"b": 1}, 1: {b"a": 1, b"b": 2}},
        {1: {b"a": FUT}},
    ),
    "copy": (
        [
            "SADD s a b",
            f"PEXPIREAT s {FUT}",
            "COPY s t",
            "COPY s t",
            "SADD t c",
            "COPY s t REPLACE",
            "COPY s u DB 2",
            "SET x 1",
            "COPY x s",
            "SADD s z",
        ],
        {0: {b"s": {b"a", b"b", b"z"}, b"t": {b"a", b"b"}, b"x": 1}, 2: {b"u": {b"a", b"b"}}},
        {0: {b"s": FUT, b"t": FUT}, 2: {b"u": FUT}},
    ),
    "expire-flags": (
        [
            "SET a 1",
            "SET b 1",
            "SET c 1",
            "SET d 1",
            f"PEXPIREAT a {FUT} NX",
            f"PEXPIREAT a {FUT + 1} NX",
            f"PEXPIREAT b {FUT} XX",
            f"PEXPIREAT c {FUT} GT",
            f"PEXPIREAT d {FUT} LT",
            f"PEXPIREAT d {FUT + 5} LT",
            f"PEXPIREAT d {FUT + 5} GT",
            f"EXPIREAT a {FUT_S + 1} XX",
            f"SET e 1 PXAT {FUT}",
            "PERSIST e",
            f"PEXPIREAT nokey {FUT}",
        ],
        {0: {b"a": 1, b"b": 1, b"c": 1, b"d": 1, b"e": 1}},
        {0: {b"a": FUT + 1000, b"d": FUT + 5}},
    ),
    "set-options": (
        [
            "SET a 1",
            "SET a 22 NX",
            "SET a 333 XX",
            "SET b x XX",
            f"SET c 1 PXAT {FUT}",
            "SET c 22 KEEPTTL",
            f"SET d 1 EXAT {FUT_S}",
            "SET e 1 GET",
            "SADD s m",
            "SET s x GET",
            "SET t 4444",
            f"set T 1 pxat {FUT}",
            "SET t 55555",
            "SET f abc NX GET",
            f"SET g 1 PXAT {FUT}",
            "SET g 22",
        ],
        {
            0: {
                b"a": 3,
                b"c": 2,
                b"d": 1,
                b"e": 1,
                b"s": {b"m"},
                b"t": 5,
                b"T": 1,
                b"f": 3,
                b"g": 2,
            }
        },
        {0: {b"c": FUT, b"d": FUT, b"T": FUT}},
    ),
    "string-commands": (
        [
            "SETNX a 1",
            "SETNX a 22",
            f"MSET b 1 c 22 z {'x' * 300}",
            "MSETNX c 1 d 1",
            "MSETNX d 1 e 22",
            f"PEXPIREAT b {FUT}",
            "GETSET b 333",
            "GETDEL c",
            "GETDEL nokey",
            "APPEND f abc",
            "APPEND f de",
            "SETRANGE g 5 ab",
            'SETRANGE h 0 ""',
            "SETRANGE f 10 x",
            "INCR i",
            "INCRBY i 99",
            "DECR j",
            "DECRBY j2 100",
            "INCRBYFLOAT k 1.5",
            "SETBIT l 17 1",
            "BITFIELD m SET u8 #2 255",
            "BITFIELD n GET u8 0",
            "BITOP OR o f l",
            "BITOP AND p nokey1 nokey2",
            "SET q 1",
            "BITOP AND q nokey",
            "PFADD r a b",
            "PFMERGE s2 r",
            "PFADD r2",
            f"GETEX f PXAT {FUT}",
            f"GETEX g PXAT {FUT}",
            "GETEX g PERSIST",
            f"GETEX e EXAT {FUT_S}",
        ],
        {
            0: {
                b"a": 1,
                b"b": 3,
                b"z": 300,
                b"d": 1,
                b"e": 2,
                b"f": 11,
                b"g": 7,
                b"i": -1,
                b"j": 2,
                b"j2": 4,
                b"k": -1,
                b"l": 3,
                b"m": 3,
                b"o": 11,
                b"r": -1,
                b"s2": -1,
                b"r2": -1,
            }
        },
        {0: {b"f": FUT, b"e": FUT}},
    ),
    "lists": (
        [
            "RPUSH l a b c",
            "LPUSH l x y",
            "LPUSHX nol a",
            "RPUSHX l z",
            "LINSERT l BEFORE a m",
            "LINSERT l AFTER nope q",
            "LSET l -1 Z",
            "LREM l 1 x",
            "RPUSH r a b a c a",
            "LREM r -2 a",
            "RPUSH r2 a b a c a",
            "LREM r2 0 a",
            "LTRIM r2 1 -1",
            "LTRIM r 1 -1",
            "LTRIM r 5 10",
            "LPOP l",
            "RPOP l 2",
            "RPOPLPUSH l l",
            "LMOVE l d RIGHT LEFT",
            "BLMOVE d l LEFT RIGHT 0",
            "BRPOPLPUSH l e 0",
            "RPUSH g 1 2 3 4",
            "LMPOP 2 nokey g RIGHT COUNT 2",
            "BLPOP nokey e 0",
            "RPUSH f 1 2 3",
            "BRPOP f 0",
            "BLMPOP 0 1 f LEFT",
            "RPUSH h 1",
            "LPOP h 5",
            "RPUSH i 1 2 3",
            "LINSERT i AFTER 3 4",
        ],
        {
            0: {
                b"l": [b"b", b"m"],
                b"r2": [b"c"],
                b"g": [b"1", b"2"],
                b"f": [b"2"],
                b"i": [b"1", b"2", b"3", b"4"],
            }
        },
        {},
    ),
    "sets": (
        [
            "SADD s a b c",
            "SADD s c d",
            "SREM s a x",
            "SADD t a",
            "SPOP t",
            "SADD t2 a b",
            "SPOP t2 5",
            "SMOVE s u b",
            "SMOVE s u zz",
            "SADD v c e",
            "SINTERSTORE i s v",
            "SUNIONSTORE un s v u",
            "SDIFFSTORE df s v",
            "SINTERSTORE i2 s nokey",
            "SET x 1",
            "SDIFFSTORE x v s",
            "SET y 1",
            "SINTERSTORE y nokey",
            "SADD w a",
            "SREM w a",
            "SMOVE u u b",
        ],
        {
            0: {
                b"s": {b"c", b"d"},
                b"u": {b"b"},
                b"v": {b"c", b"e"},
                b"i": {b"c"},
                b"un": {b"b", b"c", b"d", b"e"},
                b"df": {b"d"},
                b"x": {b"e"},
            }
        },
        {},
    ),
    "zsets": (
        [
            "ZADD z 1 a 2 b 3 c",
            "ZADD z NX 10 a 4 d",
            "ZADD z XX 20 b 5 e",
            "ZADD z GT 0 c",
            "ZADD z LT 0 c",
            "ZADD z GT CH 5 d",
            "ZADD z INCR 2 a",
            "ZINCRBY z 1.5 a",
            "ZINCRBY n 2 m",
            "ZREM n m",
            "ZADD z 7 e 8 f 9 g",
            "ZREMRANGEBYSCORE z (7 8",
            "ZREMRANGEBYRANK z 0 0",
            "ZPOPMIN z",
            "ZPOPMAX z 2",
            "ZADD l 0 a 0 b 0 c 0 d 0 e",
            "ZREMRANGEBYLEX l [b (d",
            "ZUNIONSTORE u 2 z l WEIGHTS 2 1 AGGREGATE SUM",
            "ZINTERSTORE i 2 z l AGGREGATE MAX",
            "ZDIFFSTORE df 2 l z",
            "SADD s d x",
            "ZUNIONSTORE us 2 s z AGGREGATE MIN",
            "ZRANGESTORE r z 0 0",
            "ZRANGESTORE r2 l (a [z BYLEX LIMIT 1 1",
            "ZRANGESTORE r3 z +inf -inf BYSCORE REV LIMIT 0 1",
            "ZRANGESTORE r4 nokey 0 -1",
            "ZADD r5 1 x",
            "ZRANGESTORE r5 z 5 4",
            "ZMPOP 2 nokey l MIN COUNT 2",
            "BZPOPMAX l 0",
            "BZMPOP 0 1 i MAX",
            "ZADD inf +inf a -inf b",
            "ZINCRBY inf -inf a",
            "ZUNIONSTORE nan 2 inf inf WEIGHTS 1 -1",
        ],
        {
            0: {
                b"z": {b"d": 5.0, b"e": 7.0},
                b"u": {b"a": 0.0, b"d": 10.0, b"e": 14.0},
                b"i": {b"d": 5.0},
                b"df": {b"a": 0.0},
                b"s": {b"d", b"x"},
                b"us": {b"d": 1.0, b"x": 1.0, b"e": 7.0},
                b"r": {b"d": 5.0},
                b"r2": {b"e": 0.0},
                b"r3": {b"e": 7.0},
                b"inf": {b"a": float("inf"), b"b": float("-inf")},
                b"nan": {b"a": 0.0, b"b": 0.0},
            }
        },
        {},
    ),
    "geoadd": (
        ["GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania"],
        {0: {b"g": {b"Palermo": 3479099956230698.0, b"Catania": 3479447370796909.0}}},
        {},
    ),
    "hashes": (
        [
            "HSET h a 1 b 2",
            "HMSET h c 3",
            "HSETNX h a 9",
            "HSETNX h d 4",
            "HDEL h a x",
            "HINCRBY h e 5",
            "HINCRBYFLOAT h f 1.5",
            "HSET g x 1",
            "HDEL g x",
            "HDEL nokey x",
        ],
        {0: {b"h": {b"b": None, b"c": None, b"d": None, b"e": None, b"f": None}}},
        {},
    ),
    "hash-field-ttl": (
        [
            "HSET h a 1 b 2 c 3",
            f"HPEXPIREAT h {FUT} FIELDS 2 a b",
            f"HPEXPIREAT h {FUT + 1} NX FIELDS 2 a c",
            f"HPEXPIREAT h {FUT + 5} GT FIELDS 1 b",
            f"HPEXPIREAT h {FUT + 9} LT FIELDS 1 b",
            "HPERSIST h FIELDS 1 a",
            f"HEXPIREAT h {FUT_S + 1} XX FIELDS 2 c nope",
            "HSET h b 9",
            "HINCRBY h c 1",
            f"HPEXPIREAT nokey {FUT} FIELDS 1 a",
        ],
        {0: {b"h": {b"a": None, b"b": None, b"c": FUT + 1000}}},
        {},
        (7, 4),
    ),
    "hsetex-hgetex-hgetdel": (
        [
            f"HSETEX x FNX PXAT {FUT} FIELDS 2 p 1 q 2",
            "HSETEX x FNX FIELDS 1 p 3",
            "HSETEX x FXX KEEPTTL FIELDS 1 p 5",
            "HSETEX x FXX FIELDS 2 p 1 zz 2",
            "HSETEX x FIELDS 1 q 7",
            f"HGETEX x PXAT {FUT + 2} FIELDS 2 q nope",
            "HGETEX x PERSIST FIELDS 1 p",
            f"HSETEX y PXAT {FUT} FIELDS 1 a 1",
            "HGETDEL y FIELDS 1 a",
            "HSET w a 1 b 2",
            "HGETDEL w FIELDS 1 a",
        ],
        {0: {b"x": {b"p": None, b"q": FUT + 2}, b"w": {b"b": None}}},
        {},
        (8, 0),
    ),
    "streams": (
        [
            "XADD s 1-1 f v",
            "XADD s 1-2 f v",
            "XADD s 2-* f v",
            "XADD s 2-* f v",
            "XADD s 3 f v",
            "XADD s 2-5 f v",
            "XDEL s 1-2 9-9",
            "XADD s MAXLEN 3 4-0 f v",
            "XADD x 1-1 f v",
            "XADD x 1-2 f v",
            "XADD x 2-1 f v",
            "XTRIM x MINID 2",
            "XADD t NOMKSTREAM 1-1 f v",
            "XGROUP CREATE t g $ MKSTREAM",
            "XGROUP CREATE s g 0",
            "XGROUP CREATECONSUMER s g c1",
            "XSETID s 9-0",
            "XADD s 9-1 f v",
            "XADD u 0-* a b",
            "XADD u MAXLEN = 0 0-* a b",
            "XADD v MINID = 5 5-1 f v",
            "XGROUP DESTROY s g",
        ],
        {
            0: {
                b"s": ["2-1", "3-0", "4-0", "9-1"],
                b"x": ["2-1"],
                b"t": [],
                b"u": [],
                b"v": ["5-1"],
            }
        },
        {},
    ),
    "multi-exec-discard": (
        [
            "MULTI",
            "SET a 1",
            "SELECT 1",
            "SET b 22",
            "EXEC",
            "SET c 1",
            "MULTI",
            "SET d 1",
            "DISCARD",
        ],
        {0: {b"a": 1}, 1: {b"b": 2, b"c": 1}},
        {},
    ),
}


def _case_params() -> list[Any]:
    return [pytest.param(case, id=name) for name, case in CASES.items()]


@pytest.mark.parametrize("case", _case_params())
def test_model(case: tuple) -> None:
    commands, values, expires = case[:3]
    ks = run(commands)
    assert model_state(ks) == (values, expires)
    assert not ks.unknown and not ks.approximations, (ks.unknown, ks.approximations)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[tuple[int, int], RedisServer]]:
    """A 7.0 server, and an 8.2 one for hash-field TTL commands."""
    with contextlib.ExitStack() as stack:
        yield {
            (7, 0): stack.enter_context(running_server(binary("7.0"))),
            (8, 2): stack.enter_context(running_server(binary("8.2"))),
        }


def _server_params() -> list[Any]:
    """Each case on each server version it applies to (7.0 and 8.2)."""
    return [
        pytest.param(case, version, id=f"{name}-{version[0]}.{version[1]}")
        for name, case in CASES.items()
        for version in ((7, 0), (8, 2))
        if version >= (case[3] if len(case) > 3 else (7, 0))
    ]


@pytest.mark.parametrize(("case", "version"), _server_params())
def test_server_agrees(
    case: tuple, version: tuple[int, int], servers: dict[tuple[int, int], RedisServer]
) -> None:
    """The expectations of each case are what a real server does with the same commands."""
    commands, values, expires = case[:3]
    server = servers[version]
    server.client().flushall()
    send_all(server, commands)
    found_values, found_expires = server_state(server)
    assert (fuzzy_lengths(found_values, values), found_expires) == (values, expires)


# -- loading semantics and approximations (model only) ------------------------------------


def test_past_expiry_is_kept_while_loading_and_counted_at_check() -> None:
    ks = run(
        [
            "SET a 1 PXAT 1000",
            "SET a 22 NX",  # the key still exists while loading: NX fails
            "SET b 1",
            "PEXPIREAT b 2000",
            "APPEND b xx",
            f"SET c 1 PXAT {FUT}",
        ]
    )
    assert ks.value(0, b"a") == 1
    assert ks.value(0, b"b") == 3
    inv = ks.inventory(NOW)
    assert (inv.databases[0].keys, inv.databases[0].expires) == (3, 3)
    assert inv.databases[0].expired_at_check == 2
    assert ks.inventory(500).databases[0].expired_at_check == 0
    assert not ks.approximate


def test_relative_expiries_use_the_command_time() -> None:
    ks = run(
        [
            "SET a 1 EX 10",
            "SET b 1 PX 10",
            "SETEX c 5 x",
            "PSETEX d 5 x",
            "SET e 1",
            "EXPIRE e 7",
            "SET f 1",
            "PEXPIRE f 7",
            "SET g 1",
            "GETEX g EX 3",
        ],
        at_ms=NOW,
    )
    # A DUMP payload: type 0 (string), "x", RDB version 11, CRC64 (not checked by the model).
    ks.execute((b"RESTORE", b"h", b"100", b"\x00\x01x\x0b\x00" + bytes(8)), NOW)
    _, expires = model_state(ks)
    assert expires == {
        0: {
            b"a": NOW + 10_000,
            b"b": NOW + 10,
            b"c": NOW + 5000,
            b"d": NOW + 5,
            b"e": NOW + 7000,
            b"f": NOW + 7,
            b"g": NOW + 3000,
            b"h": NOW + 100,
        }
    }
    assert not ks.approximate


def test_relative_expiry_without_a_time_is_approximate() -> None:
    ks = run(["SET a 1", "EXPIRE a 10", "SET b 1 EX 5"])
    assert ks.expire_of(0, b"a") == UNKNOWN_TIME
    assert ks.approximate and ks.approximations["relative expiry without a timestamp"] == 2
    inv = ks.inventory(NOW)
    assert (inv.databases[0].expires, inv.databases[0].expired_at_check) == (2, 0)


def test_unknown_commands_and_scripts_are_counted() -> None:
    ks = run(["SET a 1", "JSON.SET x $ 1", "EVAL 'return 1' 0", "FCALL f 0", "json.set y $ 2"])
    assert ks.unknown == {"JSON.SET": 2, "EVAL": 1, "FCALL": 1}
    assert ks.approximate
    assert ks.value(0, b"a") == 1


def test_known_no_ops_change_nothing() -> None:
    ks = run(["PING", "GET a", "SCRIPT LOAD 'return 1'", "SCRIPT FLUSH", "PFCOUNT a", "WATCH a"])
    assert not ks.approximate
    assert list(ks.entries()) == []


def test_commands_are_case_insensitive() -> None:
    ks = run(["sEt a 1 pXaT 5", "rpush l x", "Multi", "sadd s m", "exec"])
    assert model_state(ks) == ({0: {b"a": 1, b"l": [b"x"], b"s": {b"m"}}}, {0: {b"a": 5}})


def test_in_multi_at_the_end_and_queued_commands_not_applied() -> None:
    ks = run(["SET a 1", "MULTI", "SET b 1"])
    assert ks.in_multi
    assert ks.value(0, b"b") is None
    ks.execute(cmd("EXEC"))
    assert not ks.in_multi and ks.value(0, b"b") == 1


def test_rejected_commands_change_nothing_and_are_counted() -> None:
    ks = run(["SET s 1", "LPUSH s x", "SADD s y", "LSET nokey 0 x", "ZADD z NX XX 1 a"])
    assert model_state(ks) == ({0: {b"s": 1}}, {})
    assert sum(ks.errors.values()) == 4
    assert not ks.approximate  # Redis rejects them as well while loading, and goes on


def test_random_spop_is_approximate_but_keeps_the_count() -> None:
    ks = run(["SADD s a b c d", "SPOP s 2"])
    assert len(ks.value(0, b"s")) == 2  # type: ignore[arg-type]
    assert ks.approximate


def test_lex_range_over_mixed_scores_is_approximate() -> None:
    ks = run(["ZADD z 0 a 1 b 2 c", "ZREMRANGEBYLEX z [b +"])
    assert ks.value(0, b"z") == {b"a": 0.0}  # what a listpack-encoded zset does
    assert ks.approximations == {"lex range over members of different scores": 1}


def test_lex_range_scan_follows_the_listpack_order(
    servers: dict[tuple[int, int], RedisServer],
) -> None:
    # In (score, member) order: c0 d1 b2. From the first member >= "b" (that is "c") Redis
    # deletes while <= "c": it stops at "d" and never reaches "b", though "b" is in range.
    commands = ["ZADD z 0 c 1 d 2 b", "ZREMRANGEBYLEX z [b [c", "ZADD y 0 c 1 a 2 b"]
    commands.append("ZRANGESTORE r y [c [b BYLEX REV")  # from the end: b, then a stops it
    ks = run(commands)
    want = {0: {b"z": {b"d": 1.0, b"b": 2.0}, b"y": {b"c": 0, b"a": 1, b"b": 2}, b"r": {b"b": 2}}}
    assert model_state(ks) == (want, {})
    server = servers[min(servers)]
    server.client().flushall()
    send_all(server, commands)
    assert server_state(server) == (want, {})


def test_xadd_auto_id_is_approximate() -> None:
    ks = run(["XADD s * f v", "XADD s * f v"], at_ms=NOW)
    assert ks.value(0, b"s") == [f"{NOW}-0", f"{NOW}-1"]
    assert ks.approximate


def test_trim_limit_as_propagated_is_exact() -> None:
    # Redis rewrites "MAXLEN ~ n" to "MAXLEN = <length after trimming>" and keeps LIMIT,
    # which only a master or an AOF may send with '='.
    ks = run(["XADD s 1-1 f v", "XADD s 1-2 f v", "XADD s MAXLEN = 1 LIMIT 100 1-3 f v"])
    assert ks.value(0, b"s") == ["1-3"]
    assert not ks.approximate


def test_approximate_trim_is_flagged() -> None:
    ks = run(["XADD s 1-1 f v", "XADD s 1-2 f v", "XTRIM s MAXLEN ~ 1"])
    assert ks.value(0, b"s") == ["1-2"]
    assert ks.approximations == {"approximate (~) stream trimming": 1}


def test_sort_store() -> None:
    ks = run(["RPUSH l 3 1 2", "SORT l STORE d", "SORT nokey STORE l", "SORT d LIMIT 0 2"])
    assert ks.value(0, b"l") is None
    assert sorted(ks.value(0, b"d")) == [b"1", b"2", b"3"]  # type: ignore[arg-type]
    assert ks.approximate


def test_functions() -> None:
    lib = "#!lua name={}\nredis.register_function('f', function() return 1 end)"
    ks = run(
        [
            f"FUNCTION LOAD {shlex.quote(lib.format('one'))}",
            f"FUNCTION LOAD {shlex.quote(lib.format('two'))}",
            f"FUNCTION LOAD REPLACE {shlex.quote(lib.format('two'))}",
            "FUNCTION DELETE one",
            f"FUNCTION LOAD {shlex.quote(lib.format('three'))}",
            "FLUSHALL",
        ]
    )
    assert ks.inventory(NOW).functions == ["three", "two"]
    assert not ks.approximate
    ks.execute(cmd("FUNCTION FLUSH"))
    assert ks.inventory(NOW).functions == []


def test_function_restore_from_a_real_dump(servers: dict[tuple[int, int], RedisServer]) -> None:
    server = servers[min(servers)]
    c = server.client()
    c.function_flush()
    for name in ("alpha", "beta"):
        c.function_load(f"#!lua name={name}\nredis.register_function('{name}f', function() end)")
    payload = c.function_dump()
    ks = Keyspace()
    ks.load_function("beta")
    ks.execute((b"FUNCTION", b"RESTORE", payload))  # APPEND: 'beta' exists -> refused
    assert ks.inventory(NOW).functions == ["beta"]
    ks.execute((b"FUNCTION", b"RESTORE", payload, b"REPLACE"))
    assert ks.inventory(NOW).functions == ["alpha", "beta"]
    ks.execute(cmd("FUNCTION DELETE alpha"))
    ks.execute((b"FUNCTION", b"RESTORE", payload, b"FLUSH"))
    assert ks.inventory(NOW).functions == ["alpha", "beta"]
    c.function_flush()


def test_restore_decodes_real_dump_payloads(servers: dict[tuple[int, int], RedisServer]) -> None:
    server = servers[min(servers)]
    c = server.client()
    c.flushall()
    send_all(
        server,
        [
            "SET s hello",
            "RPUSH l a b c",
            "SADD set 1 2 x",
            "ZADD z 1 a 2.5 b",
            "HSET h f v g w",
            "XADD x 1-1 f v",
            "XADD x 2-1 f v",
            "XGROUP CREATE x grp 0",
        ],
    )
    keys = [b"s", b"l", b"set", b"z", b"h", b"x"]
    ks = Keyspace()
    for k in keys:
        ks.execute((b"RESTORE", k, b"0", c.dump(k)))
    ks.execute((b"RESTORE", b"s", b"0", c.dump(b"l")))  # exists: BUSYKEY, no change
    ks.execute((b"RESTORE", b"s2", str(FUT).encode(), c.dump(b"l"), b"ABSTTL"))
    assert model_state(ks) == (
        {
            0: {
                b"s": 5,
                b"l": [b"a", b"b", b"c"],
                b"set": {b"1", b"2", b"x"},
                b"z": {b"a": 1.0, b"b": 2.5},
                b"h": {b"f": None, b"g": None},
                b"x": ["1-1", "2-1"],
                b"s2": [b"a", b"b", b"c"],
            }
        },
        {0: {b"s2": FUT}},
    )
    ks.execute(cmd("XGROUP CREATE x grp 0"))  # the group came with the payload
    assert sum(ks.errors.values()) == 2


def test_restore_of_an_unreadable_payload_keeps_its_type() -> None:
    ks = Keyspace()
    # A set (type 2) whose body is cut short: the type byte is all the model can use.
    ks.execute((b"RESTORE", b"k", b"0", b"\x02\x05\x01a" + b"\x00" * 10))
    assert ks.inventory(NOW).databases[0].by_type == {"set": 1}
    ks.execute(cmd("SADD k x"))  # cannot know whether x is new
    assert ks.approximate and ks.value(0, b"k") == "set"


def test_load_key_from_decoded_values() -> None:
    ks = Keyspace()
    ks.load_key(0, b"s", StringValue(b"abc"), FUT)
    ks.load_key(0, b"empty", SetValue(frozenset()), None)
    ks.load_key(1, b"h", HashValue({b"a": b"1", b"b": b"2"}, {b"a": FUT}), None)
    ks.load_key(1, b"x", StreamValue(0, (5, 1), (), ()), None)
    ks.load_key(2, b"m", ModuleValue("graphdata", 1), None)
    ks.load_function("lib")
    ks.execute(cmd("SELECT 1"))
    ks.execute(cmd("XADD x 5-1 f v"))  # not above the stream's last id: refused
    ks.execute(cmd("XADD x 5-2 f v"))
    inv = ks.inventory(NOW)
    assert {db: (s.keys, s.expires, s.by_type) for db, s in inv.databases.items()} == {
        0: (1, 1, {"string": 1}),
        1: (2, 0, {"hash": 1, "stream": 1}),
        2: (1, 0, {"graphdata": 1}),
    }
    assert inv.modules == ["graphdata"] and inv.functions == ["lib"]
    assert ks.value(1, b"h") == {b"a": FUT, b"b": None}
    assert ks.value(1, b"x") == ["5-2"]


def test_inventory_shape() -> None:
    ks = run(
        [
            "RPUSH big 1 2 3 4 5",
            "SADD mid a b c",
            "SET s 1",
            f"SET t 1 PXAT {FUT}",
            "SELECT 3",
            "HSET h a 1 b 2 c 3 d 4",
        ]
    )
    inv = ks.inventory(NOW, top=2)
    assert [(b.db, b.key, b.type, b.elements, b.bytes) for b in inv.biggest_by_elements] == [
        (0, b"big", "list", 5, 0),
        (3, b"h", "hash", 4, 0),
    ]
    assert inv.biggest_by_bytes == []
    assert inv.databases[0].by_type == {"list": 1, "set": 1, "string": 2}
    assert (inv.keys, inv.expires) == (5, 1)
    assert sorted(inv.databases) == [0, 3]
