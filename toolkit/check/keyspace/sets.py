"""Set commands: SADD, SREM, SPOP, SMOVE and the S*STORE set operations."""

from __future__ import annotations

from toolkit.check.keyspace.args import ArgError, Args, int_arg
from toolkit.check.keyspace.model import KeyspaceModel


class SetCommands(KeyspaceModel):
    """The set commands (a set value is a ``set`` of members)."""

    def _set(self, key: bytes) -> set[bytes] | None:
        return self._lookup(key, set)  # type: ignore[return-value]

    def c_sadd(self, a: Args) -> None:
        if len(a) < 3:
            raise ArgError("wrong number of arguments")
        s = self._set(a[1])
        if s is None:
            self._db.keys[a[1]] = set(a[2:])
        else:
            s.update(a[2:])

    def c_srem(self, a: Args) -> None:
        if len(a) < 3:
            raise ArgError("wrong number of arguments")
        s = self._set(a[1])
        if s is not None:
            s.difference_update(a[2:])
            self._drop_if_empty(a[1], s)

    def c_spop(self, a: Args) -> None:
        if len(a) not in (2, 3):
            raise ArgError("wrong number of arguments")
        count = int_arg(a[2]) if len(a) == 3 else 1
        if count < 0:
            raise ArgError("value is out of range, must be positive")
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
            raise ArgError("wrong number of arguments")
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

    def c_setop_store(self, a: Args) -> None:
        if len(a) < 3:
            raise ArgError("wrong number of arguments")
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
