"""List commands: pushes, pops (blocking or not, LMPOP), LINSERT, LSET, LREM, LTRIM, LMOVE."""

from __future__ import annotations

from collections import deque

from toolkit.check.keyspace.args import ArgError, Args, float_arg, int_arg, rank_range
from toolkit.check.keyspace.model import KeyspaceModel


class ListCommands(KeyspaceModel):
    """The list commands (a list value is a ``deque`` of items)."""

    def _list(self, key: bytes) -> deque[bytes] | None:
        return self._lookup(key, deque)  # type: ignore[return-value]

    def c_push(self, a: Args) -> None:
        if len(a) < 3:
            raise ArgError("wrong number of arguments")
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
            raise ArgError("wrong number of arguments")
        where = a[2].upper()
        if where not in (b"BEFORE", b"AFTER"):
            raise ArgError("syntax error")
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
            raise ArgError("wrong number of arguments")
        i = int_arg(a[2])
        lst = self._list(a[1])
        if lst is None:
            raise ArgError("no such key")
        if not -len(lst) <= i < len(lst):
            raise ArgError("index out of range")
        lst[i] = a[3]

    def c_lrem(self, a: Args) -> None:
        if len(a) != 4:
            raise ArgError("wrong number of arguments")
        count, item = int_arg(a[2]), a[3]
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
            raise ArgError("wrong number of arguments")
        start, end = int_arg(a[2]), int_arg(a[3])
        lst = self._list(a[1])
        if lst is None:
            return
        keep = rank_range(start, end, len(lst))
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
            raise ArgError("wrong number of arguments")
        count = 1
        if len(a) == 3:
            count = int_arg(a[2])
            if count < 0:
                raise ArgError("value is out of range, must be positive")
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
            raise ArgError("syntax error")
        return side == b"LEFT"

    def c_rpoplpush(self, a: Args) -> None:
        if len(a) not in (3, 4):
            raise ArgError("wrong number of arguments")
        if len(a) == 4:
            float_arg(a[3])
        self._lmove(a[1], a[2], False, True)

    def c_lmove(self, a: Args) -> None:
        if len(a) not in (5, 6):
            raise ArgError("wrong number of arguments")
        if len(a) == 6:
            float_arg(a[5])
        self._lmove(a[1], a[2], self._side(a[3]), self._side(a[4]))

    def c_bpop(self, a: Args) -> None:
        if len(a) < 3:
            raise ArgError("wrong number of arguments")
        float_arg(a[-1])
        found = self._first_nonempty(a[1:-1], deque)
        if found is not None:
            key, lst = found
            self._pop_list(key, lst, a[0].upper() == b"BLPOP", 1)  # type: ignore[arg-type]

    def c_lmpop(self, a: Args) -> None:
        blocking = a[0].upper() == b"BLMPOP"
        if blocking:
            float_arg(a[1])
        keys, left, count = self._mpop_args(a, 2 if blocking else 1, (b"LEFT", b"RIGHT"))
        found = self._first_nonempty(keys, deque)
        if found is not None:
            self._pop_list(found[0], found[1], left, count)  # type: ignore[arg-type]
