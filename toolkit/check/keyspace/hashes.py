"""Hash commands, with field expiries: HSET, HDEL, HINCRBY*, HEXPIRE*, HPERSIST, HSETEX,
HGETDEL, HGETEX.
"""

from __future__ import annotations

from toolkit.check.keyspace.args import ArgError, Args, float_arg, int_arg
from toolkit.check.keyspace.model import KeyspaceModel
from toolkit.check.keyspace.values import HashVal


class HashCommands(KeyspaceModel):
    """The hash commands (a hash value is a ``HashVal``: field -> expiry ms or None)."""

    def _hash(self, key: bytes) -> HashVal | None:
        return self._lookup(key, HashVal)  # type: ignore[return-value]

    def _hash_or_new(self, key: bytes) -> HashVal:
        h = self._hash(key)
        if h is None:
            h = self._db.keys[key] = HashVal()
        return h

    def c_hset(self, a: Args) -> None:
        if len(a) < 4 or len(a) % 2:
            raise ArgError("wrong number of arguments")
        h = self._hash_or_new(a[1])
        for f in a[2::2]:
            h[f] = None

    def c_hsetnx(self, a: Args) -> None:
        if len(a) != 4:
            raise ArgError("wrong number of arguments")
        h = self._hash_or_new(a[1])
        h.setdefault(a[2], None)

    def c_hdel(self, a: Args) -> None:
        if len(a) < 3:
            raise ArgError("wrong number of arguments")
        h = self._hash(a[1])
        if h is not None:
            for f in a[2:]:
                h.pop(f, None)
            self._drop_if_empty(a[1], h)

    def c_hincrby(self, a: Args) -> None:
        if len(a) != 4:
            raise ArgError("wrong number of arguments")
        if a[0].upper() == b"HINCRBY":
            int_arg(a[3])
        else:
            float_arg(a[3])
        self._hash_or_new(a[1]).setdefault(a[2], None)

    @staticmethod
    def _fields(a: Args, at: int) -> Args:
        """The fields after ``FIELDS numfields`` at ``a[at]``."""
        if a[at].upper() != b"FIELDS":
            raise ArgError("Mandatory argument FIELDS is missing or not at the right position")
        n = int_arg(a[at + 1])
        fields = a[at + 2 :]
        if n < 1 or n != len(fields):
            raise ArgError("The `numfields` parameter must match the number of arguments")
        return fields

    def _hexpire(self, a: Args, unit: int, relative: bool) -> None:
        key, amount = a[1], int_arg(a[2])
        if amount < 0:
            raise ArgError("invalid expire time, must be >= 0")
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
                raise ArgError("syntax error")
            i += 1
        n = int_arg(a[i + 1])
        pairs = a[i + 2 :]
        if n < 1 or len(pairs) != 2 * n:
            raise ArgError("invalid number of fields")
        fields = pairs[::2]
        h = self._hash(key)
        if (fnx and h is not None and any(f in h for f in fields)) or (
            fxx and (h is None or not all(f in h for f in fields))
        ):
            return
        if h is None:
            h = self._db.keys[key] = HashVal()
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
