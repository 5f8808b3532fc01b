"""A keyspace model that replays the write commands of an AOF into an :class:`Inventory`.

``Keyspace.execute(args)`` applies one command the way Redis applies it while loading an AOF:
command names are case-insensitive, a command Redis would reject (wrong type, bad syntax)
changes nothing, collections that become empty disappear, and no key expires while loading
(an expiry already past is kept and counted in ``expired_at_check`` by :meth:`inventory`).

What is tracked per key is what Redis's own semantics need to stay exact: the members of
sets, the fields (and field expiries) of hashes, member -> score of sorted sets, the items of
lists, the entry ids of streams, and for strings only the length (``-1`` once unknown, e.g.
after INCR on an existing value). Values are plain Python containers, not per-key objects:

=========  ==========================================================================
string     ``int`` (the length; -1: unknown but not zero)
list       ``collections.deque`` of bytes
set        ``set`` of bytes
zset       ``_ZSet`` (a dict member -> float score)
hash       ``_Hash`` (a dict field -> absolute expiry ms, or None)
stream     ``_Stream`` (entry ids as ``ms << 64 | seq``, last id, group names)
other      ``_Opaque`` (a module value, or a RESTORE payload that could not be decoded)
=========  ==========================================================================

Whenever the result depends on something the model does not know (a command it does not
model, a random SPOP, a script, a relative expiry without a time, a lex range over mixed
scores...), ``approximate`` becomes True, with the command counted in ``unknown`` (effect
not applied) or the reason counted in ``approximations`` (applied as well as possible).
Commands Redis would have refused are counted in ``errors``; a Redis-written AOF holds none,
so they make the model approximate too.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice

from parsers.errors import FormatError
from parsers.rdb.constants import TYPE_NAMES, ValueType
from parsers.rdb.decode import (
    HashValue,
    ListValue,
    ModuleValue,
    SetValue,
    StreamValue,
    StringValue,
    ZSetValue,
    decode_value,
)
from parsers.rdb.module import module_type_name
from parsers.rdb.records import library_name
from parsers.rdb.strings import read_length, read_string, skip_string
from parsers.rdb.values import SKIPPERS
from toolkit.inventory import BigKey, DbStats, Inventory

Args = Sequence[bytes]

# An expiry whose absolute time is unknown (a relative EXPIRE without a timestamp): beyond
# any real time, so it never counts as expired at check time.
UNKNOWN_TIME = 1 << 64
_SEQ_BITS = 64
_SEQ_MASK = (1 << 64) - 1
_MAX_ID = (1 << 128) - 1

_INT_RE = re.compile(rb"-?(?:0|[1-9][0-9]*)\Z")
_FLOAT_BAD = re.compile(rb"[\s_]|nan", re.I)

_FUNCTION2 = 245  # RDB opcode of a function library in a FUNCTION DUMP payload
_FUNCTION_PRE_GA = 246  # the same in Redis 7.0 release candidates
_GEO_LAT = 85.05112878
_GEO_STEP = 26


class _Err(Exception):
    """Redis would reply with an error: the command has no effect."""


class _Skip(Exception):
    """The command touches a value the model cannot see into: already noted as approximate."""


class _ZSet(dict):
    """A sorted set: member -> score."""

    __slots__ = ()


class _Hash(dict):
    """A hash: field -> absolute expiry in ms, or None when the field does not expire."""

    __slots__ = ()


class _Stream:
    """A stream: live entry ids in order (``ms << 64 | seq``), the last id, group names."""

    __slots__ = ("groups", "ids", "last_id")

    def __init__(self) -> None:
        self.ids: dict[int, None] = {}
        self.last_id = 0
        self.groups: set[bytes] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def copy(self) -> _Stream:
        s = _Stream()
        s.ids = dict(self.ids)
        s.last_id = self.last_id
        s.groups = set(self.groups) if self.groups else None
        return s


class _Opaque:
    """A value the model only knows the type (and maybe size) of."""

    __slots__ = ("elements", "module", "type")

    def __init__(self, type_name: str, elements: int | None, module: bool = False) -> None:
        self.type = type_name
        self.elements = elements
        self.module = module

    def copy(self) -> _Opaque:
        return self


_TYPE_OF: dict[type, str] = {
    int: "string",
    deque: "list",
    set: "set",
    _ZSet: "zset",
    _Hash: "hash",
    _Stream: "stream",
}


class _Db:
    __slots__ = ("expires", "keys")

    def __init__(self) -> None:
        self.keys: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}


def type_name(value: object) -> str:
    """The name Redis's TYPE command gives a model value."""
    name = _TYPE_OF.get(type(value))
    if name is not None:
        return name
    assert isinstance(value, _Opaque)
    return value.type


def _elements(value: object) -> int:
    if type(value) is int:
        return 1
    if isinstance(value, _Opaque):
        return value.elements or 0
    return len(value)  # type: ignore[arg-type]


def _copy(value: object) -> object:
    if type(value) is int:
        return value
    if isinstance(value, (_Stream, _Opaque)):
        return value.copy()
    return type(value)(value)  # type: ignore[call-arg]


# -- argument parsing --------------------------------------------------------------------------


def _int(b: bytes, what: str = "value") -> int:
    """A signed 64-bit integer spelled as Redis's string2ll accepts it."""
    if _INT_RE.match(b) is None or len(b) > 20:
        raise _Err(f"{what} is not an integer or out of range")
    v = int(b)
    if not -(1 << 63) <= v < 1 << 63:
        raise _Err(f"{what} is not an integer or out of range")
    return v


def _float(b: bytes) -> float:
    """A double as strtod reads it (no blanks, no NaN)."""
    if not b or _FLOAT_BAD.search(b) is not None:
        raise _Err("value is not a valid float")
    try:
        v = float(b)
    except ValueError:
        try:
            v = float.fromhex(b.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise _Err("value is not a valid float") from None
    if math.isnan(v):
        raise _Err("value is not a valid float")
    return v


def _parse_id(b: bytes, *, missing_seq: int = 0, special: bool = False) -> int:
    """A stream id ``ms-seq`` (or ``ms``) as ``ms << 64 | seq``; '-' and '+' if ``special``."""
    if special and b == b"-":
        return 0
    if special and b == b"+":
        return _MAX_ID
    ms, dash, seq = b.partition(b"-")
    try:
        ms_v = int(ms) if ms.isdigit() else -1
        seq_v = (int(seq) if seq.isdigit() else -1) if dash else missing_seq
    except ValueError:
        ms_v = seq_v = -1
    if not 0 <= ms_v <= _SEQ_MASK or not 0 <= seq_v <= _SEQ_MASK:
        raise _Err("Invalid stream ID specified as stream command argument")
    return ms_v << _SEQ_BITS | seq_v


def format_id(stream_id: int) -> str:
    """``ms-seq`` of a model stream id."""
    return f"{stream_id >> _SEQ_BITS}-{stream_id & _SEQ_MASK}"


def _score_bound(b: bytes) -> tuple[float, bool]:
    """A ZRANGEBYSCORE bound: (value, exclusive)."""
    if b.startswith(b"("):
        return _float(b[1:]), True
    return _float(b), False


def _lex_bound(b: bytes) -> tuple[bytes | None, bool, int]:
    """A lex range item: (value, exclusive, kind) with kind -1 for '-', +1 for '+', 0 else."""
    if b == b"-":
        return b"", True, -1
    if b == b"+":
        return None, True, 1
    if b[:1] == b"(":
        return b[1:], True, 0
    if b[:1] == b"[":
        return b[1:], False, 0
    raise _Err("min or max not valid string range item")


def _lex_cmp(a: tuple[bytes | None, bool, int], b: tuple[bytes | None, bool, int]) -> int:
    """sdscmplex of two range items (- below everything, + above)."""
    if a[2] == b[2] and a[2] != 0:
        return 0
    if a[2] == -1 or b[2] == 1:
        return -1
    if a[2] == 1 or b[2] == -1:
        return 1
    x, y = a[0], b[0]
    assert x is not None and y is not None
    return (x > y) - (x < y)


def _gte_min(value: bytes, lo: tuple[bytes | None, bool, int]) -> bool:
    if lo[2] == -1:
        return True
    if lo[2] == 1:
        return False
    assert lo[0] is not None
    return value > lo[0] if lo[1] else value >= lo[0]


def _lte_max(value: bytes, hi: tuple[bytes | None, bool, int]) -> bool:
    if hi[2] == 1:
        return True
    if hi[2] == -1:
        return False
    assert hi[0] is not None
    return value < hi[0] if hi[1] else value <= hi[0]


def _rank_range(start: int, end: int, n: int) -> range:
    """The ranks ``start..end`` (negative from the end) select, clamped as Redis does."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    start = max(start, 0)
    if start > end or start >= n:
        return range(0)
    return range(start, min(end, n - 1) + 1)


def _geohash_score(lon: float, lat: float) -> float:
    """The sorted-set score GEOADD stores: a 52-bit interleaved geohash."""
    lat_off = int((lat + _GEO_LAT) / (2 * _GEO_LAT) * (1 << _GEO_STEP))
    lon_off = int((lon + 180.0) / 360.0 * (1 << _GEO_STEP))
    bits = 0
    for i in range(_GEO_STEP):
        bits |= ((lat_off >> i) & 1) << (2 * i) | ((lon_off >> i) & 1) << (2 * i + 1)
    return float(bits)


def _sorted(z: dict[bytes, float]) -> list[tuple[bytes, float]]:
    """A sorted set in Redis order: by score, then member bytes."""
    return sorted(z.items(), key=lambda kv: (kv[1], kv[0]))


# -- the model ---------------------------------------------------------------------------------

# Commands with no effect on the keyspace (reads, and writes to state the model does not keep).
_NO_OPS = frozenset(
    b"""PING ECHO WATCH UNWATCH TIME GET MGET EXISTS TYPE TTL PTTL EXPIRETIME PEXPIRETIME STRLEN
    GETRANGE SUBSTR GETBIT BITCOUNT BITPOS BITFIELD_RO LCS LLEN LINDEX LRANGE LPOS SCARD
    SISMEMBER SMISMEMBER SMEMBERS SRANDMEMBER SINTER SUNION SDIFF SINTERCARD SSCAN ZCARD ZSCORE
    ZMSCORE ZRANK ZREVRANK ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX
    ZREVRANGEBYLEX ZCOUNT ZLEXCOUNT ZRANDMEMBER ZSCAN ZUNION ZINTER ZDIFF ZINTERCARD HGET HMGET
    HGETALL HKEYS HVALS HLEN HEXISTS HSTRLEN HRANDFIELD HSCAN HTTL HPTTL HEXPIRETIME
    HPEXPIRETIME XLEN XRANGE XREVRANGE XREAD XINFO XPENDING GEOPOS GEODIST GEOHASH
    GEORADIUS_RO GEORADIUSBYMEMBER_RO GEOSEARCH PFCOUNT PFDEBUG PFSELFTEST SCAN KEYS RANDOMKEY
    DBSIZE OBJECT DUMP TOUCH SORT_RO PUBLISH SPUBLISH SCRIPT INFO LASTSAVE WAIT WAITAOF
    XACK XCLAIM XAUTOCLAIM XREADGROUP""".split()
)
# Stream group commands: no keyspace effect, but the key must be a stream if it exists.
_STREAM_NO_OPS = frozenset((b"XACK", b"XCLAIM", b"XAUTOCLAIM"))
# Commands whose effect is unknowable from their arguments (scripts run on the loading server).
_SCRIPTS = frozenset((b"EVAL", b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO", b"FCALL", b"FCALL_RO"))


class Keyspace:
    """The keyspace an AOF builds, command by command (see the module docstring).

    ``unknown`` counts commands not applied (not modelled, or scripts), ``approximations``
    the reasons a result may be off, ``errors`` commands Redis would have refused;
    ``commands`` how many were executed (queued MULTI commands count at EXEC).
    """

    def __init__(self) -> None:
        self._dbs: dict[int, _Db] = {0: _Db()}
        self._dbnum = 0
        self._db = self._dbs[0]
        self._queue: list[tuple[Args, int | None]] | None = None
        self._at: int | None = None
        self.functions: dict[str, None] = {}
        self.unknown: Counter[str] = Counter()
        self.approximations: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.commands = 0
        self._approximate = False
        self._handlers: dict[bytes, Callable[[Args], None]] = {
            name: getattr(self, method) for name, method in _HANDLERS.items()
        }

    # -- public API ------------------------------------------------------------------------

    @property
    def approximate(self) -> bool:
        """True when the model may differ from what Redis would have loaded.

        Commands the model rejects (``errors``) do not count: Redis rejects them too while
        loading and goes on, so they change nothing either way; the check reports them.
        """
        return self._approximate or bool(self.unknown or self.approximations)

    @approximate.setter
    def approximate(self, value: bool) -> None:
        """A caller may mark the model approximate for reasons of its own."""
        self._approximate = value

    @property
    def in_multi(self) -> bool:
        """True between a MULTI and its EXEC/DISCARD (a file ending here is cut mid-MULTI)."""
        return self._queue is not None

    @property
    def db(self) -> int:
        """The currently selected database."""
        return self._dbnum

    def execute(self, args: Args, at_ms: int | None = None) -> None:
        """Apply one command. ``at_ms`` is its time if known (relative expiries need it)."""
        if not args:
            return
        name = args[0].upper()
        queue = self._queue
        if queue is not None and name not in (b"EXEC", b"DISCARD", b"MULTI"):
            queue.append((args, at_ms))
            return
        self._run(name, args, at_ms)

    def load_key(self, db: int, key: bytes, value: object, expire_ms: int | None) -> None:
        """Seed a key from an RDB base or preamble (a value from :mod:`parsers.rdb.decode`).

        Empty collections are skipped, as Redis skips them when it loads an RDB; expired keys
        are kept, as Redis keeps them when the RDB is an AOF's base.
        """
        v = _from_decoded(value)
        if v is None:
            return
        d = self._get_db(db)
        d.keys[key] = v
        if expire_ms is not None:
            d.expires[key] = expire_ms
        else:
            d.expires.pop(key, None)

    def load_function(self, name: str) -> None:
        """Seed a function library by name (from an RDB base or preamble)."""
        self.functions[name] = None

    def inventory(self, now_ms: int, top: int = 10) -> Inventory:
        """Per-db counts, functions, modules and the ``top`` biggest keys by elements.

        An AOF carries no encodings, so ``bytes`` is 0 everywhere and ``biggest_by_bytes``
        and ``type_ids`` are empty; ``empty`` is 0 (empty collections do not exist here).
        Elements: 1 for a string, the cardinality otherwise (streams: live entries).
        """
        inv = Inventory()
        modules: set[str] = set()
        big: list[tuple[int, int, bytes, str]] = []
        for dbnum in sorted(self._dbs):
            d = self._dbs[dbnum]
            if not d.keys:
                continue
            by_type: Counter[str] = Counter()
            for key, v in d.keys.items():
                t = type_name(v)
                by_type[t] += 1
                if isinstance(v, _Opaque) and v.module:
                    modules.add(t)
                n = _elements(v)
                if len(big) < top:
                    heapq.heappush(big, (n, dbnum, key, t))
                elif top and (n, dbnum, key) > big[0][:3]:
                    heapq.heapreplace(big, (n, dbnum, key, t))
            expired = sum(1 for t in d.expires.values() if t <= now_ms)
            inv.databases[dbnum] = DbStats(
                keys=len(d.keys),
                expires=len(d.expires),
                expired_at_check=expired,
                by_type=dict(sorted(by_type.items())),
            )
        inv.biggest_by_elements = [
            BigKey(db, key, t, n, 0) for n, db, key, t in sorted(big, reverse=True)
        ]
        inv.functions = sorted(self.functions)
        inv.modules = sorted(modules)
        return inv

    def entries(self) -> Iterator[tuple[int, bytes, str, int | None, int]]:
        """Every key as ``(db, key, type, expire_ms, elements)``."""
        for dbnum in sorted(self._dbs):
            d = self._dbs[dbnum]
            for key, v in d.keys.items():
                yield dbnum, key, type_name(v), d.expires.get(key), _elements(v)

    def value(self, db: int, key: bytes) -> object:
        """A plain copy of what the model holds for a key (None if absent), for inspection.

        string: its length; list: list of items; set: set; zset: dict member -> score;
        hash: dict field -> expiry ms or None; stream: list of ``ms-seq`` ids; else the type.
        """
        d = self._dbs.get(db)
        v = None if d is None else d.keys.get(key)
        if v is None or type(v) is int:
            return v
        if isinstance(v, deque):
            return list(v)
        if isinstance(v, _Stream):
            return [format_id(i) for i in v.ids]
        if isinstance(v, _Opaque):
            return v.type
        return v.copy()  # type: ignore[attr-defined]

    def expire_of(self, db: int, key: bytes) -> int | None:
        """The absolute expiry (ms) of a key, or None."""
        d = self._dbs.get(db)
        return None if d is None else d.expires.get(key)

    # -- machinery -------------------------------------------------------------------------

    def _run(self, name: bytes, args: Args, at_ms: int | None) -> None:
        self.commands += 1
        handler = self._handlers.get(name)
        if handler is None:
            if name in _NO_OPS:
                if name in _STREAM_NO_OPS and len(args) > 1:
                    self._check_stream_op(name, args)
                return
            self.unknown[name[:64].decode("latin-1")] += 1
            return
        self._at = at_ms
        try:
            handler(args)
        except _Err as e:
            self.errors[f"{name.decode('latin-1')}: {e}"] += 1
        except IndexError:
            self.errors[f"{name.decode('latin-1')}: wrong number of arguments"] += 1
        except _Skip:
            pass

    def _check_stream_op(self, name: bytes, args: Args) -> None:
        v = self._db.keys.get(args[1])
        if v is not None and not isinstance(v, _Stream) and type_name(v) != "stream":
            self.errors[f"{name.decode('latin-1')}: WRONGTYPE"] += 1

    def _approx(self, reason: str) -> None:
        self.approximations[reason] += 1

    def _get_db(self, n: int) -> _Db:
        d = self._dbs.get(n)
        if d is None:
            d = self._dbs[n] = _Db()
        return d

    def _lookup(self, key: bytes, cls: type, d: _Db | None = None) -> object:
        """The value at key if it is of ``cls`` (None if absent); WRONGTYPE otherwise."""
        v = (d or self._db).keys.get(key)
        if v is None or type(v) is cls:
            return v
        if isinstance(v, _Opaque) and v.type == _TYPE_OF[cls]:
            self._approx(f"{v.type} command on a value the model cannot read")
            raise _Skip
        raise _Err("WRONGTYPE Operation against a key holding the wrong kind of value")

    def _set_key(self, key: bytes, value: object, d: _Db | None = None) -> None:
        """Store a new value, dropping any TTL (Redis's setKey)."""
        d = d or self._db
        d.keys[key] = value
        d.expires.pop(key, None)

    def _delete(self, key: bytes, d: _Db | None = None) -> bool:
        d = d or self._db
        if d.keys.pop(key, None) is None:
            return False
        d.expires.pop(key, None)
        return True

    def _drop_if_empty(self, key: bytes, value: object) -> None:
        if not value:
            self._delete(key)

    def _relative(self, amount_ms: int) -> int:
        """An absolute time ``amount_ms`` after this command ran."""
        if self._at is None:
            self._approx("relative expiry without a timestamp")
            return UNKNOWN_TIME
        return self._at + amount_ms

    # -- generic ---------------------------------------------------------------------------

    def c_select(self, a: Args) -> None:
        n = _int(a[1])
        if n < 0 or len(a) != 2:
            raise _Err("DB index is out of range")
        self._dbnum = n
        self._db = self._get_db(n)

    def c_multi(self, a: Args) -> None:
        if self._queue is not None:
            raise _Err("MULTI calls can not be nested")
        self._queue = []

    def c_exec(self, a: Args) -> None:
        queue = self._queue
        if queue is None:
            raise _Err("EXEC without MULTI")
        self._queue = None
        at = self._at
        for args, at_ms in queue:
            self._run(args[0].upper(), args, at if at is not None else at_ms)

    def c_discard(self, a: Args) -> None:
        if self._queue is None:
            raise _Err("DISCARD without MULTI")
        self._queue = None

    def c_swapdb(self, a: Args) -> None:
        x, y = _int(a[1]), _int(a[2])
        if x < 0 or y < 0 or len(a) != 3:
            raise _Err("invalid DB index")
        dx, dy = self._get_db(x), self._get_db(y)
        self._dbs[x], self._dbs[y] = dy, dx
        self._db = self._dbs[self._dbnum]

    def c_flushdb(self, a: Args) -> None:
        self._check_flush_args(a)
        self._dbs[self._dbnum] = self._db = _Db()

    def c_flushall(self, a: Args) -> None:
        self._check_flush_args(a)
        self._dbs = {n: _Db() for n in self._dbs}
        self._db = self._dbs[self._dbnum]

    @staticmethod
    def _check_flush_args(a: Args) -> None:
        if len(a) > 2 or (len(a) == 2 and a[1].upper() not in (b"ASYNC", b"SYNC")):
            raise _Err("syntax error")

    def c_del(self, a: Args) -> None:
        if len(a) < 2:
            raise _Err("wrong number of arguments")
        for key in a[1:]:
            self._delete(key)

    def c_rename(self, a: Args, nx: bool = False) -> None:
        if len(a) != 3:
            raise _Err("wrong number of arguments")
        src, dst = a[1], a[2]
        d = self._db
        if src not in d.keys:
            raise _Err("no such key")
        if src == dst or (nx and dst in d.keys):
            return
        value = d.keys.pop(src)
        expire = d.expires.pop(src, None)
        self._set_key(dst, value)
        if expire is not None:
            d.expires[dst] = expire

    def c_renamenx(self, a: Args) -> None:
        self.c_rename(a, nx=True)

    def c_move(self, a: Args) -> None:
        if len(a) != 3:
            raise _Err("wrong number of arguments")
        n = _int(a[2])
        if n < 0:
            raise _Err("DB index is out of range")
        if n == self._dbnum:
            raise _Err("source and destination objects are the same")
        key, d = a[1], self._db
        dst = self._get_db(n)
        if key not in d.keys or key in dst.keys:
            return
        dst.keys[key] = d.keys.pop(key)
        expire = d.expires.pop(key, None)
        if expire is not None:
            dst.expires[key] = expire

    def c_copy(self, a: Args) -> None:
        src, dstkey = a[1], a[2]
        n, replace = self._dbnum, False
        i = 3
        while i < len(a):
            opt = a[i].upper()
            if opt == b"REPLACE":
                replace = True
            elif opt == b"DB" and i + 1 < len(a):
                n = _int(a[i + 1])
                if n < 0:
                    raise _Err("DB index is out of range")
                i += 1
            else:
                raise _Err("syntax error")
            i += 1
        if src == dstkey and n == self._dbnum:
            raise _Err("source and destination objects are the same")
        d = self._db
        value = d.keys.get(src)
        if value is None:
            return
        dst = self._get_db(n)
        if dstkey in dst.keys and not replace:
            return
        self._set_key(dstkey, _copy(value), dst)
        expire = d.expires.get(src)
        if expire is not None:
            dst.expires[dstkey] = expire

    def _expire(self, a: Args, unit: int, relative: bool) -> None:
        key = a[1]
        amount = _int(a[2])
        nx = xx = gt = lt = False
        for opt in a[3:]:
            o = opt.upper()
            if o == b"NX":
                nx = True
            elif o == b"XX":
                xx = True
            elif o == b"GT":
                gt = True
            elif o == b"LT":
                lt = True
            else:
                raise _Err(f"Unsupported option {opt!r}")
        if (nx and (xx or gt or lt)) or (gt and lt):
            raise _Err("NX and XX, GT or LT options at the same time are not compatible")
        when = self._relative(amount * unit) if relative else amount * unit
        d = self._db
        if key not in d.keys:
            return
        cur = d.expires.get(key)
        if (gt or lt) and UNKNOWN_TIME in (cur, when):
            self._approx("GT/LT against an expiry of unknown time")
        if (
            (nx and cur is not None)
            or (xx and cur is None)
            or (gt and (cur is None or when <= cur))
            or (lt and cur is not None and when >= cur)
        ):
            return
        d.expires[key] = when

    def c_expire(self, a: Args) -> None:
        self._expire(a, 1000, True)

    def c_pexpire(self, a: Args) -> None:
        self._expire(a, 1, True)

    def c_expireat(self, a: Args) -> None:
        self._expire(a, 1000, False)

    def c_pexpireat(self, a: Args) -> None:
        self._expire(a, 1, False)

    def c_persist(self, a: Args) -> None:
        if len(a) != 2:
            raise _Err("wrong number of arguments")
        self._db.expires.pop(a[1], None)

    def c_restore(self, a: Args) -> None:
        key, ttl, payload = a[1], _int(a[2]), a[3]
        replace = absttl = False
        i = 4
        while i < len(a):
            opt = a[i].upper()
            if opt == b"REPLACE":
                replace = True
            elif opt == b"ABSTTL":
                absttl = True
            elif opt in (b"IDLETIME", b"FREQ") and i + 1 < len(a):
                _int(a[i + 1])
                i += 1
            else:
                raise _Err("syntax error")
            i += 1
        if ttl < 0:
            raise _Err("Invalid TTL value, must be >= 0")
        if key in self._db.keys and not replace:
            raise _Err("BUSYKEY Target key name already exists.")
        value = self._from_payload(payload)
        if value is None:
            raise _Err("Bad data format")
        self._set_key(key, value)
        if ttl:
            self._db.expires[key] = ttl if absttl else self._relative(ttl)

    def _from_payload(self, payload: bytes) -> object:
        """The model value of a DUMP payload (type byte, value, RDB version, CRC64)."""
        if len(payload) < 11:
            return None
        type_id = payload[0]
        body = payload[:-10]
        try:
            return _from_decoded(decode_value(body, type_id, 1))
        except FormatError:
            pass
        self._approx("RESTORE payload the model could not decode")
        name = TYPE_NAMES.get(type_id, "unknown")
        if name == "string":
            return -1
        elements = None
        try:
            if type_id == ValueType.MODULE_2:
                return _Opaque(module_type_name(read_length(body, 1)[0]), None, module=True)
            skipper = SKIPPERS.get(type_id)
            if skipper is not None:
                elements = skipper(body, memoryview(body), 1, False)[1]
        except (FormatError, IndexError):
            pass
        return _Opaque(name, elements)

    def c_sort(self, a: Args) -> None:
        dst: bytes | None = None
        start, count, gets = 0, -1, 0
        i = 2
        while i < len(a):
            o = a[i].upper()
            if o == b"STORE":
                dst, i = a[i + 1], i + 2
            elif o == b"LIMIT":
                start, count, i = _int(a[i + 1]), _int(a[i + 2]), i + 3
            elif o in (b"BY", b"GET"):
                gets += o == b"GET"
                i += 2
            elif o in (b"ASC", b"DESC", b"ALPHA"):
                i += 1
            else:
                raise _Err("syntax error")
        if dst is None:
            return
        src = self._db.keys.get(a[1])
        if src is None:
            self._delete(dst)
            return
        if type(src) not in (deque, set, _ZSet):
            if isinstance(src, _Opaque) and src.type in ("list", "set", "zset"):
                self._approx("SORT ... STORE of a value the model cannot read")
                raise _Skip
            raise _Err("WRONGTYPE Operation against a key holding the wrong kind of value")
        self._approx("SORT ... STORE (order and GET values not modelled)")
        items = list(src)[max(start, 0) :]  # type: ignore[call-overload]
        if count >= 0:
            items = items[:count]
        if gets > 1:
            items = [x for x in items for _ in range(gets)]
        self._store(dst, deque(items), not items)

    def c_georadius(self, a: Args) -> None:
        upper = [x.upper() for x in a]
        where = [i for i, x in enumerate(upper) if x in (b"STORE", b"STOREDIST")]
        if not where:
            return
        if a[1] not in self._db.keys:
            self._delete(a[where[-1] + 1])
            return
        self._approx(f"{a[0].upper().decode('latin-1')} ... STORE (geometry not modelled)")

    def c_geosearchstore(self, a: Args) -> None:
        if a[2] not in self._db.keys:
            self._delete(a[1])
            return
        self._approx("GEOSEARCHSTORE (geometry not modelled)")

    def c_script_like(self, a: Args) -> None:
        self.unknown[a[0].upper().decode("latin-1")] += 1

    # -- strings ---------------------------------------------------------------------------

    def _string(self, key: bytes) -> int | None:
        return self._lookup(key, int)  # type: ignore[return-value]

    def c_set(self, a: Args) -> None:
        key, value = a[1], a[2]
        nx = xx = get = keepttl = False
        expire: int | None = None
        i = 3
        n = len(a)
        while i < n:
            opt = a[i].upper()
            if opt == b"NX" and not xx:
                nx = True
            elif opt == b"XX" and not nx:
                xx = True
            elif opt == b"GET":
                get = True
            elif opt == b"KEEPTTL" and expire is None:
                keepttl = True
            elif opt in (b"EX", b"PX", b"EXAT", b"PXAT") and i + 1 < n and expire is None:
                if keepttl:
                    raise _Err("syntax error")
                expire = self._expire_option(opt, a[i + 1])
                i += 1
            else:
                raise _Err("syntax error")
            i += 1
        old = self._string(key) if get else self._db.keys.get(key)
        if (nx and old is not None) or (xx and old is None):
            return
        if keepttl:
            self._db.keys[key] = len(value)
        else:
            self._set_key(key, len(value))
        if expire is not None:
            self._db.expires[key] = expire

    def _expire_option(self, opt: bytes, arg: bytes) -> int:
        """EX/PX/EXAT/PXAT <arg> as an absolute ms time (must be > 0)."""
        v = _int(arg)
        if v <= 0:
            raise _Err("invalid expire time")
        if opt == b"EX":
            return self._relative(v * 1000)
        if opt == b"PX":
            return self._relative(v)
        return v * 1000 if opt == b"EXAT" else v

    def c_setex(self, a: Args, unit: bytes = b"EX") -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        expire = self._expire_option(unit, a[2])
        self._set_key(a[1], len(a[3]))
        self._db.expires[a[1]] = expire

    def c_psetex(self, a: Args) -> None:
        self.c_setex(a, b"PX")

    def c_setnx(self, a: Args) -> None:
        if len(a) != 3:
            raise _Err("wrong number of arguments")
        if a[1] not in self._db.keys:
            self._set_key(a[1], len(a[2]))

    def c_mset(self, a: Args, nx: bool = False) -> None:
        if len(a) < 3 or len(a) % 2 == 0:
            raise _Err("wrong number of arguments")
        pairs = list(zip(a[1::2], a[2::2], strict=True))
        if nx and any(k in self._db.keys for k, _ in pairs):
            return
        for k, v in pairs:
            self._set_key(k, len(v))

    def c_msetnx(self, a: Args) -> None:
        self.c_mset(a, nx=True)

    def c_getset(self, a: Args) -> None:
        if len(a) != 3:
            raise _Err("wrong number of arguments")
        self._string(a[1])
        self._set_key(a[1], len(a[2]))

    def c_getdel(self, a: Args) -> None:
        if len(a) != 2:
            raise _Err("wrong number of arguments")
        if self._string(a[1]) is not None:
            self._delete(a[1])

    def c_getex(self, a: Args) -> None:
        key = a[1]
        expire: int | None = None
        persist = False
        i = 2
        while i < len(a):
            opt = a[i].upper()
            if opt == b"PERSIST" and expire is None and not persist:
                persist = True
            elif opt in (b"EX", b"PX", b"EXAT", b"PXAT") and i + 1 < len(a):
                if persist or expire is not None:
                    raise _Err("syntax error")
                expire = self._expire_option(opt, a[i + 1])
                i += 1
            else:
                raise _Err("syntax error")
            i += 1
        if self._string(key) is None:
            return
        if persist:
            self._db.expires.pop(key, None)
        elif expire is not None:
            self._db.expires[key] = expire

    def c_append(self, a: Args) -> None:
        if len(a) != 3:
            raise _Err("wrong number of arguments")
        cur = self._string(a[1])
        if cur is None:
            self._set_key(a[1], len(a[2]))
        elif cur >= 0:
            self._db.keys[a[1]] = cur + len(a[2])

    def c_setrange(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        offset = _int(a[2])
        if offset < 0:
            raise _Err("offset is out of range")
        cur = self._string(a[1])
        if not a[3]:
            return
        need = offset + len(a[3])
        if cur is None:
            self._set_key(a[1], need)
        elif cur >= 0:
            self._db.keys[a[1]] = max(cur, need)

    def _grow(self, key: bytes, need: int) -> None:
        """A bit command writes up to byte ``need``: create or extend the string."""
        cur = self._string(key)
        if cur is None:
            self._set_key(key, need)
        elif cur >= 0:
            self._db.keys[key] = max(cur, need)

    def _incr(self, key: bytes, delta: int | None) -> None:
        cur = self._string(key)
        if cur is None:
            self._set_key(key, len(str(delta)) if delta is not None else -1)
        else:
            self._db.keys[key] = -1  # the new number's length depends on the old value

    def c_incr(self, a: Args) -> None:
        if len(a) != 2:
            raise _Err("wrong number of arguments")
        self._incr(a[1], 1 if a[0].upper() == b"INCR" else -1)

    def c_incrby(self, a: Args) -> None:
        if len(a) != 3:
            raise _Err("wrong number of arguments")
        delta = _int(a[2])
        self._incr(a[1], delta if a[0].upper() == b"INCRBY" else -delta)

    def c_incrbyfloat(self, a: Args) -> None:
        if len(a) != 3:
            raise _Err("wrong number of arguments")
        _float(a[2])
        self._incr(a[1], None)

    def c_setbit(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        offset = _int(a[2])
        if not 0 <= offset < 1 << 32 or a[3] not in (b"0", b"1"):
            raise _Err("bit offset is not an integer or out of range")
        self._grow(a[1], offset // 8 + 1)

    def c_bitfield(self, a: Args) -> None:
        need = 0
        i = 2
        while i < len(a):
            op = a[i].upper()
            if op == b"OVERFLOW":
                if a[i + 1].upper() not in (b"WRAP", b"SAT", b"FAIL"):
                    raise _Err("Invalid OVERFLOW type specified")
                i += 2
                continue
            if op not in (b"GET", b"SET", b"INCRBY"):
                raise _Err("syntax error")
            t, off = a[i + 1], a[i + 2]
            sign = t[:1].lower()
            bits = _int(t[1:]) if sign in (b"i", b"u") and t[1:].isdigit() else 0
            if not (1 <= bits <= 64 and not (sign == b"u" and bits == 64)):
                raise _Err("Invalid bitfield type")
            bitoff = _int(off[1:]) * bits if off.startswith(b"#") else _int(off)
            if bitoff < 0:
                raise _Err("bit offset is not an integer or out of range")
            if op == b"GET":
                i += 3
                continue
            _int(a[i + 3])
            need = max(need, (bitoff + bits - 1) // 8 + 1)
            i += 4
        if need:
            self._grow(a[1], need)
        else:
            self._string(a[1])

    def c_bitop(self, a: Args) -> None:
        op = a[1].upper()
        if op not in (b"AND", b"OR", b"XOR", b"NOT", b"DIFF", b"DIFF1", b"ANDOR", b"ONE"):
            raise _Err("syntax error")
        dst, srcs = a[2], a[3:]
        if not srcs or (op == b"NOT" and len(srcs) != 1):
            raise _Err("wrong number of arguments")
        length = 0
        for k in srcs:
            cur = self._string(k)
            if cur is None:
                continue
            length = -1 if cur < 0 or length < 0 else max(length, cur)
        if length == 0:
            self._delete(dst)
        else:
            self._set_key(dst, length)

    def c_pfadd(self, a: Args) -> None:
        cur = self._string(a[1])
        if cur is None:
            self._set_key(a[1], -1)

    def c_pfmerge(self, a: Args) -> None:
        for k in a[2:]:
            self._string(k)
        self.c_pfadd(a[:2])

    # -- lists -----------------------------------------------------------------------------

    def _list(self, key: bytes) -> deque[bytes] | None:
        return self._lookup(key, deque)  # type: ignore[return-value]

    def c_push(self, a: Args) -> None:
        if len(a) < 3:
            raise _Err("wrong number of arguments")
        name = a[0].upper()
        lst = self._list(a[1])
        if lst is None:
            if name.endswith(b"X"):
                return
            lst = deque()
            self._db.keys[a[1]] = lst
        if name.startswith(b"L"):
            lst.extendleft(a[2:])
        else:
            lst.extend(a[2:])

    def c_linsert(self, a: Args) -> None:
        if len(a) != 5:
            raise _Err("wrong number of arguments")
        where = a[2].upper()
        if where not in (b"BEFORE", b"AFTER"):
            raise _Err("syntax error")
        lst = self._list(a[1])
        if lst is None:
            return
        try:
            i = lst.index(a[3])
        except ValueError:
            return
        lst.insert(i if where == b"BEFORE" else i + 1, a[4])

    def c_lset(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        i = _int(a[2])
        lst = self._list(a[1])
        if lst is None:
            raise _Err("no such key")
        if not -len(lst) <= i < len(lst):
            raise _Err("index out of range")
        lst[i] = a[3]

    def c_lrem(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        count, item = _int(a[2]), a[3]
        lst = self._list(a[1])
        if lst is None:
            return
        if count < 0:
            lst.reverse()
        limit = abs(count) or len(lst)
        kept: list[bytes] = []
        for x in lst:
            if limit and x == item:
                limit -= 1
            else:
                kept.append(x)
        if count < 0:
            kept.reverse()
        lst.clear()
        lst.extend(kept)
        self._drop_if_empty(a[1], lst)

    def c_ltrim(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        start, end = _int(a[2]), _int(a[3])
        lst = self._list(a[1])
        if lst is None:
            return
        keep = _rank_range(start, end, len(lst))
        if not keep:
            self._delete(a[1])
            return
        for _ in range(len(lst) - keep.stop):
            lst.pop()
        for _ in range(keep.start):
            lst.popleft()

    def _pop_list(self, key: bytes, lst: deque[bytes], left: bool, count: int) -> None:
        pop = lst.popleft if left else lst.pop
        for _ in range(min(count, len(lst))):
            pop()
        self._drop_if_empty(key, lst)

    def c_pop(self, a: Args) -> None:
        if len(a) not in (2, 3):
            raise _Err("wrong number of arguments")
        count = 1
        if len(a) == 3:
            count = _int(a[2])
            if count < 0:
                raise _Err("value is out of range, must be positive")
        lst = self._list(a[1])
        if lst is not None:
            self._pop_list(a[1], lst, a[0].upper().startswith(b"L"), count)

    def _lmove(self, src: bytes, dst: bytes, left_from: bool, left_to: bool) -> None:
        lst = self._list(src)
        if lst is None:
            return
        target = self._list(dst)
        item = lst.popleft() if left_from else lst.pop()
        if target is None:
            target = deque()
            self._db.keys[dst] = target
        if left_to:
            target.appendleft(item)
        else:
            target.append(item)
        self._drop_if_empty(src, lst)

    @staticmethod
    def _side(b: bytes) -> bool:
        side = b.upper()
        if side not in (b"LEFT", b"RIGHT"):
            raise _Err("syntax error")
        return side == b"LEFT"

    def c_rpoplpush(self, a: Args) -> None:
        if len(a) not in (3, 4):
            raise _Err("wrong number of arguments")
        if len(a) == 4:
            _float(a[3])
        self._lmove(a[1], a[2], False, True)

    def c_lmove(self, a: Args) -> None:
        if len(a) not in (5, 6):
            raise _Err("wrong number of arguments")
        if len(a) == 6:
            _float(a[5])
        self._lmove(a[1], a[2], self._side(a[3]), self._side(a[4]))

    def _first_nonempty(self, keys: Args, cls: type) -> tuple[bytes, object] | None:
        """The first key that holds a ``cls`` value (wrong types before it are errors)."""
        for k in keys:
            v = self._lookup(k, cls)
            if v is not None:
                return k, v
        return None

    def c_bpop(self, a: Args) -> None:
        if len(a) < 3:
            raise _Err("wrong number of arguments")
        _float(a[-1])
        found = self._first_nonempty(a[1:-1], deque)
        if found is not None:
            key, lst = found
            self._pop_list(key, lst, a[0].upper() == b"BLPOP", 1)  # type: ignore[arg-type]

    def _mpop_args(self, a: Args, start: int, sides: tuple[bytes, bytes]) -> tuple:
        numkeys = _int(a[start])
        if numkeys <= 0:
            raise _Err("numkeys should be greater than 0")
        keys = a[start + 1 : start + 1 + numkeys]
        if len(keys) != numkeys:
            raise _Err("syntax error")
        rest = a[start + 1 + numkeys :]
        side = rest[0].upper()
        if side not in sides:
            raise _Err("syntax error")
        count = 1
        if len(rest) == 3 and rest[1].upper() == b"COUNT":
            count = _int(rest[2])
            if count <= 0:
                raise _Err("count should be greater than 0")
        elif len(rest) != 1:
            raise _Err("syntax error")
        return keys, side == sides[0], count

    def c_lmpop(self, a: Args) -> None:
        blocking = a[0].upper() == b"BLMPOP"
        if blocking:
            _float(a[1])
        keys, left, count = self._mpop_args(a, 2 if blocking else 1, (b"LEFT", b"RIGHT"))
        found = self._first_nonempty(keys, deque)
        if found is not None:
            self._pop_list(found[0], found[1], left, count)  # type: ignore[arg-type]

    # -- sets ------------------------------------------------------------------------------

    def _set(self, key: bytes) -> set[bytes] | None:
        return self._lookup(key, set)  # type: ignore[return-value]

    def c_sadd(self, a: Args) -> None:
        if len(a) < 3:
            raise _Err("wrong number of arguments")
        s = self._set(a[1])
        if s is None:
            self._db.keys[a[1]] = set(a[2:])
        else:
            s.update(a[2:])

    def c_srem(self, a: Args) -> None:
        if len(a) < 3:
            raise _Err("wrong number of arguments")
        s = self._set(a[1])
        if s is not None:
            s.difference_update(a[2:])
            self._drop_if_empty(a[1], s)

    def c_spop(self, a: Args) -> None:
        if len(a) not in (2, 3):
            raise _Err("wrong number of arguments")
        count = _int(a[2]) if len(a) == 3 else 1
        if count < 0:
            raise _Err("value is out of range, must be positive")
        s = self._set(a[1])
        if s is None or count == 0:
            return
        if count >= len(s):
            self._delete(a[1])
            return
        self._approx("SPOP of some members (random)")
        for _ in range(count):
            s.pop()

    def c_smove(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        src, dst, member = a[1], a[2], a[3]
        s = self._set(src)
        if s is None:
            return
        t = self._set(dst)
        if s is t or member not in s:
            return
        s.discard(member)
        if t is None:
            self._db.keys[dst] = {member}
        else:
            t.add(member)
        self._drop_if_empty(src, s)

    def _store(self, dst: bytes, value: Iterable[object] | dict, empty: bool) -> None:
        if empty:
            self._delete(dst)
        else:
            self._set_key(dst, value)

    def c_setop_store(self, a: Args) -> None:
        if len(a) < 3:
            raise _Err("wrong number of arguments")
        op = a[0].upper()
        sets = [self._set(k) for k in a[2:]]
        result: set[bytes]
        if op == b"SINTERSTORE":
            complete = [s for s in sets if s is not None]
            result = set.intersection(*complete) if len(complete) == len(sets) else set()
        elif op == b"SUNIONSTORE":
            result = set().union(*(s for s in sets if s))
        else:
            result = set(sets[0] or ())
            for s in sets[1:]:
                if s:
                    result -= s
        self._store(a[1], result, not result)

    # -- sorted sets -----------------------------------------------------------------------

    def _zset(self, key: bytes) -> _ZSet | None:
        return self._lookup(key, _ZSet)  # type: ignore[return-value]

    def c_zadd(self, a: Args) -> None:
        key = a[1]
        nx = xx = gt = lt = incr = False
        i = 2
        while i < len(a):
            o = a[i].upper()
            if o == b"NX":
                nx = True
            elif o == b"XX":
                xx = True
            elif o == b"GT":
                gt = True
            elif o == b"LT":
                lt = True
            elif o == b"CH":
                pass
            elif o == b"INCR":
                incr = True
            else:
                break
            i += 1
        rest = a[i:]
        if not rest or len(rest) % 2:
            raise _Err("syntax error")
        if (nx and xx) or (nx and (gt or lt)) or (gt and lt):
            raise _Err("XX and NX / GT, LT and NX options at the same time are not compatible")
        if incr and len(rest) != 2:
            raise _Err("INCR option supports a single increment-element pair")
        pairs = [(_float(s), m) for s, m in zip(rest[::2], rest[1::2], strict=True)]
        self._zadd(key, pairs, nx=nx, xx=xx, gt=gt, lt=lt, incr=incr)

    def _zadd(
        self,
        key: bytes,
        pairs: list[tuple[float, bytes]],
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
        incr: bool = False,
    ) -> None:
        z = self._zset(key)
        if z is None:
            if xx:
                return
            z = _ZSet()
        for score, member in pairs:
            cur = z.get(member)
            if cur is None:
                if not xx:
                    z[member] = score
                continue
            if nx:
                continue
            new = cur + score if incr else score
            if math.isnan(new):
                raise _Err("resulting score is not a number (NaN)")
            if (gt and new <= cur) or (lt and new >= cur):
                continue
            z[member] = new
        if z and key not in self._db.keys:
            self._db.keys[key] = z

    def c_zincrby(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        self._zadd(a[1], [(_float(a[2]), a[3])], incr=True)

    def c_geoadd(self, a: Args) -> None:
        nx = xx = False
        i = 2
        while i < len(a) and a[i].upper() in (b"NX", b"XX", b"CH"):
            o = a[i].upper()
            nx, xx = nx or o == b"NX", xx or o == b"XX"
            i += 1
        rest = a[i:]
        if not rest or len(rest) % 3 or (nx and xx):
            raise _Err("syntax error")
        pairs = []
        for j in range(0, len(rest), 3):
            lon, lat = _float(rest[j]), _float(rest[j + 1])
            if not (-180 <= lon <= 180 and -_GEO_LAT <= lat <= _GEO_LAT):
                raise _Err("invalid longitude,latitude pair")
            pairs.append((_geohash_score(lon, lat), rest[j + 2]))
        self._zadd(a[1], pairs, nx=nx, xx=xx)

    def c_zrem(self, a: Args) -> None:
        if len(a) < 3:
            raise _Err("wrong number of arguments")
        z = self._zset(a[1])
        if z is not None:
            for m in a[2:]:
                z.pop(m, None)
            self._drop_if_empty(a[1], z)

    def _remove(self, key: bytes, z: _ZSet, members: Iterable[bytes]) -> None:
        for m in members:
            del z[m]
        self._drop_if_empty(key, z)

    def c_zremrangebyscore(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        lo, hi = _score_bound(a[2]), _score_bound(a[3])
        z = self._zset(a[1])
        if z is not None:
            self._remove(a[1], z, [m for m, s in z.items() if _in_score(s, lo, hi)])

    def c_zremrangebyrank(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        start, end = _int(a[2]), _int(a[3])
        z = self._zset(a[1])
        if z is not None:
            ranks = _rank_range(start, end, len(z))
            if ranks:
                ordered = _sorted(z)
                self._remove(a[1], z, [ordered[r][0] for r in ranks])

    def c_zremrangebylex(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        lo, hi = _lex_bound(a[2]), _lex_bound(a[3])
        z = self._zset(a[1])
        if z is not None:
            self._remove(a[1], z, [m for m, _ in self._lex_range(z, lo, hi, False)])

    def _lex_range(
        self,
        z: _ZSet,
        lo: tuple[bytes | None, bool, int],
        hi: tuple[bytes | None, bool, int],
        reverse: bool,
    ) -> list[tuple[bytes, float]]:
        """The members a lex range selects, scanning as a listpack-encoded zset does.

        With equal scores that is exactly the lex range. With mixed scores Redis's answer
        depends on the encoding (a skiplist's is random): the model marks itself approximate.
        """
        cmp = _lex_cmp(lo, hi)
        if cmp > 0 or (cmp == 0 and (lo[1] or hi[1])):
            return []
        ordered = _sorted(z)
        if not ordered:
            return []
        if len(set(z.values())) > 1:
            self._approx("lex range over members of different scores")
        if not _gte_min(ordered[-1][0], lo) or not _lte_max(ordered[0][0], hi):
            return []
        out = []
        if reverse:
            ordered.reverse()
            it = iter(ordered)
            for m, s in it:
                if _lte_max(m, hi):
                    if _gte_min(m, lo):
                        out.append((m, s))
                        out.extend(_while(it, lambda ms: _gte_min(ms[0], lo)))
                    break
        else:
            it = iter(ordered)
            for m, s in it:
                if _gte_min(m, lo):
                    if _lte_max(m, hi):
                        out.append((m, s))
                        out.extend(_while(it, lambda ms: _lte_max(ms[0], hi)))
                    break
        return out

    def _zpop(self, key: bytes, z: _ZSet, high: bool, count: int) -> None:
        if count >= len(z):
            self._delete(key)
            return
        ordered = _sorted(z)
        chosen = ordered[-count:] if high else ordered[:count]
        self._remove(key, z, [m for m, _ in chosen])

    def c_zpop(self, a: Args) -> None:
        if len(a) not in (2, 3):
            raise _Err("wrong number of arguments")
        count = _int(a[2]) if len(a) == 3 else 1
        if count < 0:
            raise _Err("value is out of range, must be positive")
        z = self._zset(a[1])
        if z is not None and count:
            self._zpop(a[1], z, a[0].upper() == b"ZPOPMAX", count)

    def c_bzpop(self, a: Args) -> None:
        if len(a) < 3:
            raise _Err("wrong number of arguments")
        _float(a[-1])
        found = self._first_nonempty(a[1:-1], _ZSet)
        if found is not None:
            self._zpop(found[0], found[1], a[0].upper() == b"BZPOPMAX", 1)  # type: ignore[arg-type]

    def c_zmpop(self, a: Args) -> None:
        blocking = a[0].upper() == b"BZMPOP"
        if blocking:
            _float(a[1])
        keys, low, count = self._mpop_args(a, 2 if blocking else 1, (b"MIN", b"MAX"))
        found = self._first_nonempty(keys, _ZSet)
        if found is not None:
            self._zpop(found[0], found[1], not low, count)  # type: ignore[arg-type]

    def _zsource(self, key: bytes) -> dict[bytes, float] | None:
        v = self._db.keys.get(key)
        if v is None:
            return None
        if type(v) is _ZSet:
            return v  # type: ignore[return-value]
        if type(v) is set:
            return dict.fromkeys(v, 1.0)  # type: ignore[arg-type]
        if isinstance(v, _Opaque) and v.type in ("zset", "set"):
            self._approx(f"{v.type} command on a value the model cannot read")
            raise _Skip
        raise _Err("WRONGTYPE Operation against a key holding the wrong kind of value")

    def c_zsetop_store(self, a: Args) -> None:
        op = a[0].upper()
        dst, numkeys = a[1], _int(a[2])
        if numkeys < 1:
            raise _Err("at least 1 input key is needed")
        keys = a[3 : 3 + numkeys]
        if len(keys) != numkeys:
            raise _Err("syntax error")
        srcs = [self._zsource(k) or {} for k in keys]
        weights = [1.0] * numkeys
        aggregate = b"SUM"
        rest = a[3 + numkeys :]
        i = 0
        while i < len(rest):
            o = rest[i].upper()
            if op != b"ZDIFFSTORE" and o == b"WEIGHTS" and len(rest) - i > numkeys:
                weights = [_float(w) for w in rest[i + 1 : i + 1 + numkeys]]
                i += 1 + numkeys
            elif op != b"ZDIFFSTORE" and o == b"AGGREGATE" and len(rest) - i >= 2:
                aggregate = rest[i + 1].upper()
                if aggregate not in (b"SUM", b"MIN", b"MAX"):
                    raise _Err("syntax error")
                i += 2
            else:
                raise _Err("syntax error")
        result: dict[bytes, float] = {}
        if op == b"ZDIFFSTORE":
            result = dict(srcs[0])
            for s in srcs[1:]:
                for m in s:
                    result.pop(m, None)
        else:
            pairs = sorted(zip(srcs, weights, strict=True), key=lambda sw: len(sw[0]))
            if op == b"ZINTERSTORE":
                first, w0 = pairs[0]
                for m, s in first.items():
                    score = _weighted(s, w0)
                    for other, w in pairs[1:]:
                        if m not in other:
                            break
                        score = _aggregate(score, _weighted(other[m], w), aggregate)
                    else:
                        result[m] = score
            else:
                for src, w in pairs:
                    for m, s in src.items():
                        score = _weighted(s, w)
                        cur = result.get(m)
                        result[m] = score if cur is None else _aggregate(cur, score, aggregate)
        self._store(dst, _ZSet(result), not result)

    def c_zrangestore(self, a: Args) -> None:
        dst, src = a[1], a[2]
        lo_arg, hi_arg = a[3], a[4]
        by = b"RANK"
        rev = False
        offset, limit = 0, -1
        limited = False
        i = 5
        while i < len(a):
            o = a[i].upper()
            if o == b"LIMIT" and len(a) - i > 2:
                offset, limit = _int(a[i + 1]), _int(a[i + 2])
                limited = True
                i += 2
            elif o == b"REV" and not rev:
                rev = True
            elif o in (b"BYSCORE", b"BYLEX") and by == b"RANK":
                by = o[2:]
            else:
                raise _Err("syntax error")
            i += 1
        if limited and by == b"RANK":
            raise _Err("LIMIT is only supported in combination with either BYSCORE or BYLEX")
        if rev and by != b"RANK":
            lo_arg, hi_arg = hi_arg, lo_arg
        chosen: list[tuple[bytes, float]]
        if by == b"RANK":
            start, end = _int(lo_arg), _int(hi_arg)
        elif by == b"SCORE":
            try:
                lo, hi = _score_bound(lo_arg), _score_bound(hi_arg)
            except _Err:
                raise _Err("min or max is not a float") from None
        else:
            lex_lo, lex_hi = _lex_bound(lo_arg), _lex_bound(hi_arg)
        z = self._zset(src)
        if z is None:
            self._delete(dst)
            return
        if by == b"RANK":
            ordered = _sorted(z)
            if rev:
                ordered.reverse()
            chosen = [ordered[r] for r in _rank_range(start, end, len(ordered))]
        else:
            if by == b"SCORE":
                ordered = _sorted(z)
                if rev:
                    ordered.reverse()
                chosen = [(m, s) for m, s in ordered if _in_score(s, lo, hi)]
            else:
                chosen = self._lex_range(z, lex_lo, lex_hi, rev)
            if offset < 0 or (offset > 0 and offset >= len(z)):
                chosen = []
            else:
                chosen = chosen[offset:] if limit < 0 else chosen[offset : offset + limit]
        self._store(dst, _ZSet(chosen), not chosen)

    # -- hashes ----------------------------------------------------------------------------

    def _hash(self, key: bytes) -> _Hash | None:
        return self._lookup(key, _Hash)  # type: ignore[return-value]

    def _hash_or_new(self, key: bytes) -> _Hash:
        h = self._hash(key)
        if h is None:
            h = self._db.keys[key] = _Hash()
        return h

    def c_hset(self, a: Args) -> None:
        if len(a) < 4 or len(a) % 2:
            raise _Err("wrong number of arguments")
        h = self._hash_or_new(a[1])
        for f in a[2::2]:
            h[f] = None

    def c_hsetnx(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        h = self._hash_or_new(a[1])
        h.setdefault(a[2], None)

    def c_hdel(self, a: Args) -> None:
        if len(a) < 3:
            raise _Err("wrong number of arguments")
        h = self._hash(a[1])
        if h is not None:
            for f in a[2:]:
                h.pop(f, None)
            self._drop_if_empty(a[1], h)

    def c_hincrby(self, a: Args) -> None:
        if len(a) != 4:
            raise _Err("wrong number of arguments")
        if a[0].upper() == b"HINCRBY":
            _int(a[3])
        else:
            _float(a[3])
        self._hash_or_new(a[1]).setdefault(a[2], None)

    @staticmethod
    def _fields(a: Args, at: int) -> Args:
        """The fields after ``FIELDS numfields`` at ``a[at]``."""
        if a[at].upper() != b"FIELDS":
            raise _Err("Mandatory argument FIELDS is missing or not at the right position")
        n = _int(a[at + 1])
        fields = a[at + 2 :]
        if n < 1 or n != len(fields):
            raise _Err("The `numfields` parameter must match the number of arguments")
        return fields

    def _hexpire(self, a: Args, unit: int, relative: bool) -> None:
        key, amount = a[1], _int(a[2])
        if amount < 0:
            raise _Err("invalid expire time, must be >= 0")
        cond = a[3].upper()
        at = 4 if cond in (b"NX", b"XX", b"GT", b"LT") else 3
        fields = self._fields(a, at)
        when = self._relative(amount * unit) if relative else amount * unit
        h = self._hash(key)
        if h is None:
            return
        for f in fields:
            if f not in h:
                continue
            cur = h[f]
            if (
                (cond == b"NX" and cur is not None)
                or (cond == b"XX" and cur is None)
                or (cond == b"GT" and (cur is None or when <= cur))
                or (cond == b"LT" and cur is not None and when >= cur)
            ):
                continue
            h[f] = when

    def c_hexpire(self, a: Args) -> None:
        self._hexpire(a, 1000, True)

    def c_hpexpire(self, a: Args) -> None:
        self._hexpire(a, 1, True)

    def c_hexpireat(self, a: Args) -> None:
        self._hexpire(a, 1000, False)

    def c_hpexpireat(self, a: Args) -> None:
        self._hexpire(a, 1, False)

    def c_hpersist(self, a: Args) -> None:
        fields = self._fields(a, 2)
        h = self._hash(a[1])
        if h is not None:
            for f in fields:
                if f in h:
                    h[f] = None

    def c_hsetex(self, a: Args) -> None:
        key = a[1]
        fnx = fxx = keepttl = False
        expire: int | None = None
        i = 2
        while a[i].upper() != b"FIELDS":
            o = a[i].upper()
            if o == b"FNX" and not fxx:
                fnx = True
            elif o == b"FXX" and not fnx:
                fxx = True
            elif o == b"KEEPTTL" and expire is None:
                keepttl = True
            elif o in (b"EX", b"PX", b"EXAT", b"PXAT") and expire is None and not keepttl:
                expire = self._expire_option(o, a[i + 1])
                i += 1
            else:
                raise _Err("syntax error")
            i += 1
        n = _int(a[i + 1])
        pairs = a[i + 2 :]
        if n < 1 or len(pairs) != 2 * n:
            raise _Err("invalid number of fields")
        fields = pairs[::2]
        h = self._hash(key)
        if (fnx and h is not None and any(f in h for f in fields)) or (
            fxx and (h is None or not all(f in h for f in fields))
        ):
            return
        if h is None:
            h = self._db.keys[key] = _Hash()
        for f in fields:
            h[f] = h.get(f) if keepttl else expire

    def c_hgetdel(self, a: Args) -> None:
        fields = self._fields(a, 2)
        h = self._hash(a[1])
        if h is not None:
            for f in fields:
                h.pop(f, None)
            self._drop_if_empty(a[1], h)

    def c_hgetex(self, a: Args) -> None:
        key = a[1]
        o = a[2].upper()
        persist = False
        expire: int | None = None
        at = 2
        if o == b"PERSIST":
            persist, at = True, 3
        elif o in (b"EX", b"PX", b"EXAT", b"PXAT"):
            expire, at = self._expire_option(o, a[3]), 4
        fields = self._fields(a, at)
        h = self._hash(key)
        if h is None or not (persist or expire is not None):
            return
        for f in fields:
            if f in h:
                h[f] = expire

    # -- streams ---------------------------------------------------------------------------

    def _stream(self, key: bytes) -> _Stream | None:
        return self._lookup(key, _Stream)  # type: ignore[return-value]

    def _trim_args(self, a: Args, i: int, xadd: bool) -> tuple[int, tuple | None, bool]:
        """Parse NOMKSTREAM / MAXLEN / MINID / LIMIT from ``a[i]``: (next index, trim, nomk)."""
        trim: tuple | None = None
        nomk = False
        while i < len(a):
            o = a[i].upper()
            more = len(a) - 1 - i
            if xadd and a[i] == b"*":
                break
            if o in (b"MAXLEN", b"MINID") and more:
                if trim is not None:
                    raise _Err("syntax error, MAXLEN and MINID options at the same time")
                approx = False
                if more >= 2 and a[i + 1] in (b"~", b"="):
                    approx = a[i + 1] == b"~"
                    i += 1
                if o == b"MAXLEN":
                    n = _int(a[i + 1])
                    if n < 0:
                        raise _Err("The MAXLEN argument must be >= 0.")
                    trim = (o, n, approx)
                else:
                    trim = (o, _parse_id(a[i + 1]), approx)
                i += 2
            elif o == b"LIMIT" and more:
                if _int(a[i + 1]) < 0:
                    raise _Err("The LIMIT argument must be >= 0.")
                i += 2
            elif xadd and o == b"NOMKSTREAM":
                nomk = True
                i += 1
            elif xadd:
                break
            else:
                raise _Err("syntax error")
        return i, trim, nomk

    def _trim(self, s: _Stream, trim: tuple) -> None:
        kind, threshold, approx = trim
        if approx:
            self._approx("approximate (~) stream trimming")
        ids = s.ids
        if kind == b"MAXLEN":
            drop = len(ids) - threshold
            if drop > 0:
                for i in list(islice(ids, drop)):
                    del ids[i]
        else:
            doomed = []
            for i in ids:
                if i >= threshold:
                    break
                doomed.append(i)
            for i in doomed:
                del ids[i]

    def c_xadd(self, a: Args) -> None:
        key = a[1]
        i, trim, nomk = self._trim_args(a, 2, True)
        idarg = a[i]
        fields = a[i + 1 :]
        if not fields or len(fields) % 2:
            raise _Err("wrong number of arguments")
        s = self._stream(key)
        last = s.last_id if s is not None else 0
        if idarg == b"*":
            self._approx("XADD with an auto-generated id")
            ms = max(self._at or 0, last >> _SEQ_BITS)
            new = ms << _SEQ_BITS if ms > last >> _SEQ_BITS else last + 1
        elif idarg.endswith(b"-*"):
            ms = _parse_id(idarg[:-2]) >> _SEQ_BITS
            if ms < last >> _SEQ_BITS:
                raise _Err("The ID specified in XADD is equal or smaller than the top item")
            new = last + 1 if ms == last >> _SEQ_BITS else ms << _SEQ_BITS
        else:
            new = _parse_id(idarg)
        if new == 0:
            raise _Err("The ID specified in XADD must be greater than 0-0")
        if new <= last:
            raise _Err("The ID specified in XADD is equal or smaller than the target stream")
        if s is None:
            if nomk:
                return
            s = _Stream()
            self._db.keys[key] = s
        s.ids[new] = None
        s.last_id = new
        if trim is not None:
            self._trim(s, trim)

    def c_xtrim(self, a: Args) -> None:
        i, trim, _ = self._trim_args(a, 2, False)
        if trim is None or i != len(a):
            raise _Err("syntax error, XTRIM must be called with a trimming strategy")
        s = self._stream(a[1])
        if s is not None:
            self._trim(s, trim)

    def c_xdel(self, a: Args) -> None:
        if len(a) < 3:
            raise _Err("wrong number of arguments")
        ids = [_parse_id(x) for x in a[2:]]
        s = self._stream(a[1])
        if s is not None:
            for i in ids:
                s.ids.pop(i, None)

    def c_xsetid(self, a: Args) -> None:
        new = _parse_id(a[2])
        s = self._stream(a[1])
        if s is None:
            raise _Err("no such key")
        if s.ids and new < next(reversed(s.ids)):
            raise _Err("The ID specified in XSETID is smaller than the target stream top item")
        s.last_id = new

    def c_xgroup(self, a: Args) -> None:
        sub = a[1].upper()
        if sub == b"HELP":
            return
        key = a[2]
        s = self._stream(key)
        if sub == b"CREATE":
            group = a[3]
            if s is None:
                if b"MKSTREAM" not in (x.upper() for x in a[5:]):
                    raise _Err("The XGROUP subcommand requires the key to exist")
                s = _Stream()
                self._db.keys[key] = s
            if s.groups is None:
                s.groups = set()
            if group in s.groups:
                raise _Err("BUSYGROUP Consumer Group name already exists")
            s.groups.add(group)
            return
        if s is None:
            raise _Err("The XGROUP subcommand requires the key to exist")
        if sub == b"DESTROY":
            if s.groups:
                s.groups.discard(a[3])
        elif sub not in (b"SETID", b"CREATECONSUMER", b"DELCONSUMER"):
            raise _Err("unknown subcommand")

    # -- functions -------------------------------------------------------------------------

    def c_function(self, a: Args) -> None:
        sub = a[1].upper()
        if sub == b"LOAD":
            replace = len(a) == 4 and a[2].upper() == b"REPLACE"
            if len(a) != 3 and not replace:
                raise _Err("syntax error")
            name = library_name(a[-1])
            if name == "?":
                raise _Err("Missing library metadata")
            if name in self.functions and not replace:
                raise _Err(f"Library '{name}' already exists")
            self.functions[name] = None
        elif sub == b"DELETE":
            name = a[2].decode("utf-8", "replace")
            if name not in self.functions:
                raise _Err("Library not found")
            del self.functions[name]
        elif sub == b"FLUSH":
            self.functions.clear()
        elif sub == b"RESTORE":
            policy = a[3].upper() if len(a) > 3 else b"APPEND"
            names = _function_payload(a[2])
            if names is None:
                self._approx("FUNCTION RESTORE payload the model could not read")
                return
            if policy == b"FLUSH":
                self.functions.clear()
            elif policy == b"APPEND":
                if any(n in self.functions for n in names):
                    raise _Err("Library already exists")
            elif policy != b"REPLACE":
                raise _Err("Wrong restore policy given")
            for n in names:
                self.functions[n] = None
        elif sub not in (b"LIST", b"DUMP", b"STATS", b"KILL", b"HELP"):
            raise _Err("unknown subcommand")


def _while(it: Iterator[tuple[bytes, float]], pred: Callable) -> Iterator[tuple[bytes, float]]:
    for x in it:
        if not pred(x):
            return
        yield x


def _in_score(s: float, lo: tuple[float, bool], hi: tuple[float, bool]) -> bool:
    return (s > lo[0] if lo[1] else s >= lo[0]) and (s < hi[0] if hi[1] else s <= hi[0])


def _weighted(score: float, weight: float) -> float:
    v = score * weight
    return 0.0 if math.isnan(v) else v


def _aggregate(a: float, b: float, how: bytes) -> float:
    if how == b"SUM":
        v = a + b
        return 0.0 if math.isnan(v) else v
    return min(a, b) if how == b"MIN" else max(a, b)


def _function_payload(payload: bytes) -> list[str] | None:
    """Library names in a FUNCTION DUMP payload, or None if it cannot be read."""
    names = []
    pos, end = 0, len(payload) - 10
    try:
        while pos < end:
            if payload[pos] == _FUNCTION2:
                code, pos = read_string(payload, pos + 1)
                names.append(library_name(bytes(code)))
            elif payload[pos] == _FUNCTION_PRE_GA:  # 7.0-rc: name, engine, [desc], code
                name, pos = read_string(payload, pos + 1)
                pos = skip_string(payload, pos)
                has_desc, pos = read_length(payload, pos)
                if has_desc:
                    pos = skip_string(payload, pos)
                pos = skip_string(payload, pos)
                names.append(bytes(name).decode("utf-8", "replace"))
            else:
                return None
    except (FormatError, IndexError):
        return None
    return names if pos == end and "?" not in names else None


def _from_decoded(value: object) -> object:
    """The model value of a decoded RDB value (None for an empty collection)."""
    if isinstance(value, StringValue):
        return len(value.data)
    if isinstance(value, ModuleValue):
        return _Opaque(value.module, None, module=True)
    v: object
    if isinstance(value, ListValue):
        v = deque(value.items)
    elif isinstance(value, SetValue):
        v = set(value.members)
    elif isinstance(value, ZSetValue):
        v = _ZSet(value.members)
    elif isinstance(value, HashValue):
        exp = value.field_expires_ms
        v = _Hash((f, exp.get(f)) for f in value.fields)
    elif isinstance(value, StreamValue):
        s = _Stream()
        s.ids = {ms << _SEQ_BITS | seq: None for (ms, seq), _ in value.entries}
        ms, seq = value.last_id
        s.last_id = ms << _SEQ_BITS | seq
        s.groups = {g.name for g in value.groups} or None
        return s
    else:
        raise TypeError(f"not a decoded RDB value: {type(value).__name__}")
    return v if v else None


_HANDLERS: dict[bytes, str] = {
    b"SELECT": "c_select",
    b"MULTI": "c_multi",
    b"EXEC": "c_exec",
    b"DISCARD": "c_discard",
    b"SWAPDB": "c_swapdb",
    b"FLUSHDB": "c_flushdb",
    b"FLUSHALL": "c_flushall",
    b"DEL": "c_del",
    b"UNLINK": "c_del",
    b"RENAME": "c_rename",
    b"RENAMENX": "c_renamenx",
    b"MOVE": "c_move",
    b"COPY": "c_copy",
    b"EXPIRE": "c_expire",
    b"PEXPIRE": "c_pexpire",
    b"EXPIREAT": "c_expireat",
    b"PEXPIREAT": "c_pexpireat",
    b"PERSIST": "c_persist",
    b"RESTORE": "c_restore",
    b"RESTORE-ASKING": "c_restore",
    b"SORT": "c_sort",
    b"GEORADIUS": "c_georadius",
    b"GEORADIUSBYMEMBER": "c_georadius",
    b"GEOSEARCHSTORE": "c_geosearchstore",
    b"SET": "c_set",
    b"SETEX": "c_setex",
    b"PSETEX": "c_psetex",
    b"SETNX": "c_setnx",
    b"MSET": "c_mset",
    b"MSETNX": "c_msetnx",
    b"GETSET": "c_getset",
    b"GETDEL": "c_getdel",
    b"GETEX": "c_getex",
    b"APPEND": "c_append",
    b"SETRANGE": "c_setrange",
    b"INCR": "c_incr",
    b"DECR": "c_incr",
    b"INCRBY": "c_incrby",
    b"DECRBY": "c_incrby",
    b"INCRBYFLOAT": "c_incrbyfloat",
    b"SETBIT": "c_setbit",
    b"BITFIELD": "c_bitfield",
    b"BITOP": "c_bitop",
    b"PFADD": "c_pfadd",
    b"PFMERGE": "c_pfmerge",
    b"LPUSH": "c_push",
    b"RPUSH": "c_push",
    b"LPUSHX": "c_push",
    b"RPUSHX": "c_push",
    b"LINSERT": "c_linsert",
    b"LSET": "c_lset",
    b"LREM": "c_lrem",
    b"LTRIM": "c_ltrim",
    b"LPOP": "c_pop",
    b"RPOP": "c_pop",
    b"RPOPLPUSH": "c_rpoplpush",
    b"BRPOPLPUSH": "c_rpoplpush",
    b"LMOVE": "c_lmove",
    b"BLMOVE": "c_lmove",
    b"BLPOP": "c_bpop",
    b"BRPOP": "c_bpop",
    b"LMPOP": "c_lmpop",
    b"BLMPOP": "c_lmpop",
    b"SADD": "c_sadd",
    b"SREM": "c_srem",
    b"SPOP": "c_spop",
    b"SMOVE": "c_smove",
    b"SINTERSTORE": "c_setop_store",
    b"SUNIONSTORE": "c_setop_store",
    b"SDIFFSTORE": "c_setop_store",
    b"ZADD": "c_zadd",
    b"ZINCRBY": "c_zincrby",
    b"GEOADD": "c_geoadd",
    b"ZREM": "c_zrem",
    b"ZREMRANGEBYSCORE": "c_zremrangebyscore",
    b"ZREMRANGEBYRANK": "c_zremrangebyrank",
    b"ZREMRANGEBYLEX": "c_zremrangebylex",
    b"ZPOPMIN": "c_zpop",
    b"ZPOPMAX": "c_zpop",
    b"BZPOPMIN": "c_bzpop",
    b"BZPOPMAX": "c_bzpop",
    b"ZMPOP": "c_zmpop",
    b"BZMPOP": "c_zmpop",
    b"ZUNIONSTORE": "c_zsetop_store",
    b"ZINTERSTORE": "c_zsetop_store",
    b"ZDIFFSTORE": "c_zsetop_store",
    b"ZRANGESTORE": "c_zrangestore",
    b"HSET": "c_hset",
    b"HMSET": "c_hset",
    b"HSETNX": "c_hsetnx",
    b"HDEL": "c_hdel",
    b"HINCRBY": "c_hincrby",
    b"HINCRBYFLOAT": "c_hincrby",
    b"HEXPIRE": "c_hexpire",
    b"HPEXPIRE": "c_hpexpire",
    b"HEXPIREAT": "c_hexpireat",
    b"HPEXPIREAT": "c_hpexpireat",
    b"HPERSIST": "c_hpersist",
    b"HSETEX": "c_hsetex",
    b"HGETDEL": "c_hgetdel",
    b"HGETEX": "c_hgetex",
    b"XADD": "c_xadd",
    b"XTRIM": "c_xtrim",
    b"XDEL": "c_xdel",
    b"XSETID": "c_xsetid",
    b"XGROUP": "c_xgroup",
    b"FUNCTION": "c_function",
    **dict.fromkeys(_SCRIPTS, "c_script_like"),
}

# Every command the model applies or knows to have no keyspace effect.
KNOWN_COMMANDS: frozenset[bytes] = frozenset(_HANDLERS) | _NO_OPS
