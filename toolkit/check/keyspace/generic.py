"""Commands on keys and databases: SELECT, MULTI/EXEC, FLUSH*, DEL, RENAME, MOVE, COPY,
expiries, RESTORE, SORT/GEO ... STORE, scripts and FUNCTION.
"""

from __future__ import annotations

from collections import deque

from parsers.errors import FormatError
from parsers.rdb.constants import TYPE_NAMES, ValueType
from parsers.rdb.decode import decode_value
from parsers.rdb.module import module_type_name
from parsers.rdb.records import library_name
from parsers.rdb.strings import read_length, read_string, skip_string
from parsers.rdb.values import SKIPPERS
from toolkit.check.keyspace.args import ArgError, Args, int_arg
from toolkit.check.keyspace.model import KeyspaceModel, Skip
from toolkit.check.keyspace.values import (
    UNKNOWN_TIME,
    DbValues,
    Opaque,
    ZSetVal,
    copy_value,
    from_decoded,
)

_FUNCTION2 = 245  # RDB opcode of a function library in a FUNCTION DUMP payload
_FUNCTION_PRE_GA = 246  # the same in Redis 7.0 release candidates


class GenericCommands(KeyspaceModel):
    """Commands not of one value type: databases, transactions, keys, expiries, functions."""

    def c_select(self, a: Args) -> None:
        n = int_arg(a[1])
        if n < 0 or len(a) != 2:
            raise ArgError("DB index is out of range")
        self._dbnum = n
        self._db = self._get_db(n)

    def c_multi(self, a: Args) -> None:
        if self._queue is not None:
            raise ArgError("MULTI calls can not be nested")
        self._queue = []

    def c_exec(self, a: Args) -> None:
        queue = self._queue
        if queue is None:
            raise ArgError("EXEC without MULTI")
        self._queue = None
        at = self._at
        for args, at_ms in queue:
            self._run(args[0].upper(), args, at if at is not None else at_ms)

    def c_discard(self, a: Args) -> None:
        if self._queue is None:
            raise ArgError("DISCARD without MULTI")
        self._queue = None

    def c_swapdb(self, a: Args) -> None:
        x, y = int_arg(a[1]), int_arg(a[2])
        if x < 0 or y < 0 or len(a) != 3:
            raise ArgError("invalid DB index")
        dx, dy = self._get_db(x), self._get_db(y)
        self._dbs[x], self._dbs[y] = dy, dx
        self._db = self._dbs[self._dbnum]
        if self.compact is not None:
            self.compact.swapdb(x, y)

    def c_flushdb(self, a: Args) -> None:
        self._check_flush_args(a)
        self._dbs[self._dbnum] = self._db = DbValues()
        if self.compact is not None:
            self.compact.flushdb(self._dbnum)

    def c_flushall(self, a: Args) -> None:
        self._check_flush_args(a)
        self._dbs = {n: DbValues() for n in self._dbs}
        self._db = self._dbs[self._dbnum]
        if self.compact is not None:
            self.compact.flushall()

    @staticmethod
    def _check_flush_args(a: Args) -> None:
        if len(a) > 2 or (len(a) == 2 and a[1].upper() not in (b"ASYNC", b"SYNC")):
            raise ArgError("syntax error")

    def c_del(self, a: Args) -> None:
        if len(a) < 2:
            raise ArgError("wrong number of arguments")
        for key in a[1:]:
            self._delete(key)

    def c_rename(self, a: Args, nx: bool = False) -> None:
        if len(a) != 3:
            raise ArgError("wrong number of arguments")
        src, dst = a[1], a[2]
        d = self._db
        if src not in d.keys:
            raise ArgError("no such key")
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
            raise ArgError("wrong number of arguments")
        n = int_arg(a[2])
        if n < 0:
            raise ArgError("DB index is out of range")
        if n == self._dbnum:
            raise ArgError("source and destination objects are the same")
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
                n = int_arg(a[i + 1])
                if n < 0:
                    raise ArgError("DB index is out of range")
                i += 1
            else:
                raise ArgError("syntax error")
            i += 1
        if src == dstkey and n == self._dbnum:
            raise ArgError("source and destination objects are the same")
        d = self._db
        value = d.keys.get(src)
        if value is None:
            return
        dst = self._get_db(n)
        if dstkey in dst.keys and not replace:
            return
        self._set_key(dstkey, copy_value(value), dst)
        expire = d.expires.get(src)
        if expire is not None:
            dst.expires[dstkey] = expire

    def _expire(self, a: Args, unit: int, relative: bool) -> None:
        key = a[1]
        amount = int_arg(a[2])
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
                raise ArgError(f"Unsupported option {opt!r}")
        if (nx and (xx or gt or lt)) or (gt and lt):
            raise ArgError("NX and XX, GT or LT options at the same time are not compatible")
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
            raise ArgError("wrong number of arguments")
        self._db.expires.pop(a[1], None)

    def c_restore(self, a: Args) -> None:
        key, ttl, payload = a[1], int_arg(a[2]), a[3]
        replace = absttl = False
        i = 4
        while i < len(a):
            opt = a[i].upper()
            if opt == b"REPLACE":
                replace = True
            elif opt == b"ABSTTL":
                absttl = True
            elif opt in (b"IDLETIME", b"FREQ") and i + 1 < len(a):
                int_arg(a[i + 1])
                i += 1
            else:
                raise ArgError("syntax error")
            i += 1
        if ttl < 0:
            raise ArgError("Invalid TTL value, must be >= 0")
        if key in self._db.keys and not replace:
            raise ArgError("BUSYKEY Target key name already exists.")
        value = self._from_payload(payload)
        if value is None:
            raise ArgError("Bad data format")
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
            return from_decoded(decode_value(body, type_id, 1))
        except FormatError:
            pass
        self._approx("RESTORE payload the model could not decode")
        name = TYPE_NAMES.get(type_id, "unknown")
        if name == "string":
            return -1
        elements = None
        try:
            if type_id == ValueType.MODULE_2:
                return Opaque(module_type_name(read_length(body, 1)[0]), None, module=True)
            skipper = SKIPPERS.get(type_id)
            if skipper is not None:
                elements = skipper(body, memoryview(body), 1, False)[1]
        except (FormatError, IndexError):
            pass
        return Opaque(name, elements)

    def c_sort(self, a: Args) -> None:
        dst: bytes | None = None
        start, count, gets = 0, -1, 0
        i = 2
        while i < len(a):
            o = a[i].upper()
            if o == b"STORE":
                dst, i = a[i + 1], i + 2
            elif o == b"LIMIT":
                start, count, i = int_arg(a[i + 1]), int_arg(a[i + 2]), i + 3
            elif o in (b"BY", b"GET"):
                gets += o == b"GET"
                i += 2
            elif o in (b"ASC", b"DESC", b"ALPHA"):
                i += 1
            else:
                raise ArgError("syntax error")
        if dst is None:
            return
        src = self._db.keys.get(a[1])
        if src is None:
            self._delete(dst)
            return
        if type(src) not in (deque, set, ZSetVal):
            if isinstance(src, Opaque) and src.type in ("list", "set", "zset"):
                self._approx("SORT ... STORE of a value the model cannot read")
                raise Skip
            raise ArgError("WRONGTYPE Operation against a key holding the wrong kind of value")
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

    # -- functions -------------------------------------------------------------------------

    def c_function(self, a: Args) -> None:
        sub = a[1].upper()
        if sub == b"LOAD":
            replace = len(a) == 4 and a[2].upper() == b"REPLACE"
            if len(a) != 3 and not replace:
                raise ArgError("syntax error")
            name = library_name(a[-1])
            if name == "?":
                raise ArgError("Missing library metadata")
            if name in self.functions and not replace:
                raise ArgError(f"Library '{name}' already exists")
            self.functions[name] = None
        elif sub == b"DELETE":
            name = a[2].decode("utf-8", "replace")
            if name not in self.functions:
                raise ArgError("Library not found")
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
                    raise ArgError("Library already exists")
            elif policy != b"REPLACE":
                raise ArgError("Wrong restore policy given")
            for n in names:
                self.functions[n] = None
        elif sub not in (b"LIST", b"DUMP", b"STATS", b"KILL", b"HELP"):
            raise ArgError("unknown subcommand")


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
