"""String commands: SET and its variants, INCR*, APPEND, SETRANGE, bit fields, HyperLogLogs.

A string is modelled as its length only (``-1`` once the length is unknown).
"""

from __future__ import annotations

from toolkit.check.keyspace.args import ArgError, Args, float_arg, int_arg
from toolkit.check.keyspace.model import KeyspaceModel


class StringCommands(KeyspaceModel):
    """The string commands (a string value is its length)."""

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
                    raise ArgError("syntax error")
                expire = self._expire_option(opt, a[i + 1])
                i += 1
            else:
                raise ArgError("syntax error")
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

    def c_setex(self, a: Args, unit: bytes = b"EX") -> None:
        if len(a) != 4:
            raise ArgError("wrong number of arguments")
        expire = self._expire_option(unit, a[2])
        self._set_key(a[1], len(a[3]))
        self._db.expires[a[1]] = expire

    def c_psetex(self, a: Args) -> None:
        self.c_setex(a, b"PX")

    def c_setnx(self, a: Args) -> None:
        if len(a) != 3:
            raise ArgError("wrong number of arguments")
        if a[1] not in self._db.keys:
            self._set_key(a[1], len(a[2]))

    def c_mset(self, a: Args, nx: bool = False) -> None:
        if len(a) < 3 or len(a) % 2 == 0:
            raise ArgError("wrong number of arguments")
        pairs = list(zip(a[1::2], a[2::2], strict=True))
        if nx and any(k in self._db.keys for k, _ in pairs):
            return
        for k, v in pairs:
            self._set_key(k, len(v))

    def c_msetnx(self, a: Args) -> None:
        self.c_mset(a, nx=True)

    def c_getset(self, a: Args) -> None:
        if len(a) != 3:
            raise ArgError("wrong number of arguments")
        self._string(a[1])
        self._set_key(a[1], len(a[2]))

    def c_getdel(self, a: Args) -> None:
        if len(a) != 2:
            raise ArgError("wrong number of arguments")
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
                    raise ArgError("syntax error")
                expire = self._expire_option(opt, a[i + 1])
                i += 1
            else:
                raise ArgError("syntax error")
            i += 1
        if self._string(key) is None:
            return
        if persist:
            self._db.expires.pop(key, None)
        elif expire is not None:
            self._db.expires[key] = expire

    def c_append(self, a: Args) -> None:
        if len(a) != 3:
            raise ArgError("wrong number of arguments")
        cur = self._string(a[1])
        if cur is None:
            self._set_key(a[1], len(a[2]))
        elif cur >= 0:
            self._db.keys[a[1]] = cur + len(a[2])

    def c_setrange(self, a: Args) -> None:
        if len(a) != 4:
            raise ArgError("wrong number of arguments")
        offset = int_arg(a[2])
        if offset < 0:
            raise ArgError("offset is out of range")
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
            raise ArgError("wrong number of arguments")
        self._incr(a[1], 1 if a[0].upper() == b"INCR" else -1)

    def c_incrby(self, a: Args) -> None:
        if len(a) != 3:
            raise ArgError("wrong number of arguments")
        delta = int_arg(a[2])
        self._incr(a[1], delta if a[0].upper() == b"INCRBY" else -delta)

    def c_incrbyfloat(self, a: Args) -> None:
        if len(a) != 3:
            raise ArgError("wrong number of arguments")
        float_arg(a[2])
        self._incr(a[1], None)

    def c_setbit(self, a: Args) -> None:
        if len(a) != 4:
            raise ArgError("wrong number of arguments")
        offset = int_arg(a[2])
        if not 0 <= offset < 1 << 32 or a[3] not in (b"0", b"1"):
            raise ArgError("bit offset is not an integer or out of range")
        self._grow(a[1], offset // 8 + 1)

    def c_bitfield(self, a: Args) -> None:
        need = 0
        i = 2
        while i < len(a):
            op = a[i].upper()
            if op == b"OVERFLOW":
                if a[i + 1].upper() not in (b"WRAP", b"SAT", b"FAIL"):
                    raise ArgError("Invalid OVERFLOW type specified")
                i += 2
                continue
            if op not in (b"GET", b"SET", b"INCRBY"):
                raise ArgError("syntax error")
            t, off = a[i + 1], a[i + 2]
            sign = t[:1].lower()
            bits = int_arg(t[1:]) if sign in (b"i", b"u") and t[1:].isdigit() else 0
            if not (1 <= bits <= 64 and not (sign == b"u" and bits == 64)):
                raise ArgError("Invalid bitfield type")
            bitoff = int_arg(off[1:]) * bits if off.startswith(b"#") else int_arg(off)
            if bitoff < 0:
                raise ArgError("bit offset is not an integer or out of range")
            if op == b"GET":
                i += 3
                continue
            int_arg(a[i + 3])
            need = max(need, (bitoff + bits - 1) // 8 + 1)
            i += 4
        if need:
            self._grow(a[1], need)
        else:
            self._string(a[1])

    def c_bitop(self, a: Args) -> None:
        op = a[1].upper()
        if op not in (b"AND", b"OR", b"XOR", b"NOT", b"DIFF", b"DIFF1", b"ANDOR", b"ONE"):
            raise ArgError("syntax error")
        dst, srcs = a[2], a[3:]
        if not srcs or (op == b"NOT" and len(srcs) != 1):
            raise ArgError("wrong number of arguments")
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
