"""Stream commands: XADD (with trimming), XTRIM, XDEL, XSETID, XGROUP."""

from __future__ import annotations

from itertools import islice

from toolkit.check.keyspace.args import ArgError, Args, int_arg, parse_id
from toolkit.check.keyspace.model import KeyspaceModel
from toolkit.check.keyspace.values import SEQ_BITS, StreamVal


class StreamCommands(KeyspaceModel):
    """The stream commands (a stream value is a ``StreamVal`` of entry ids)."""

    def _stream(self, key: bytes) -> StreamVal | None:
        return self._lookup(key, StreamVal)  # type: ignore[return-value]

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
                    raise ArgError("syntax error, MAXLEN and MINID options at the same time")
                approx = False
                if more >= 2 and a[i + 1] in (b"~", b"="):
                    approx = a[i + 1] == b"~"
                    i += 1
                if o == b"MAXLEN":
                    n = int_arg(a[i + 1])
                    if n < 0:
                        raise ArgError("The MAXLEN argument must be >= 0.")
                    trim = (o, n, approx)
                else:
                    trim = (o, parse_id(a[i + 1]), approx)
                i += 2
            elif o == b"LIMIT" and more:
                if int_arg(a[i + 1]) < 0:
                    raise ArgError("The LIMIT argument must be >= 0.")
                i += 2
            elif xadd and o == b"NOMKSTREAM":
                nomk = True
                i += 1
            elif xadd:
                break
            else:
                raise ArgError("syntax error")
        return i, trim, nomk

    def _trim(self, s: StreamVal, trim: tuple) -> None:
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
            raise ArgError("wrong number of arguments")
        s = self._stream(key)
        last = s.last_id if s is not None else 0
        if idarg == b"*":
            self._approx("XADD with an auto-generated id")
            ms = max(self._at or 0, last >> SEQ_BITS)
            new = ms << SEQ_BITS if ms > last >> SEQ_BITS else last + 1
        elif idarg.endswith(b"-*"):
            ms = parse_id(idarg[:-2]) >> SEQ_BITS
            if ms < last >> SEQ_BITS:
                raise ArgError("The ID specified in XADD is equal or smaller than the top item")
            new = last + 1 if ms == last >> SEQ_BITS else ms << SEQ_BITS
        else:
            new = parse_id(idarg)
        if new == 0:
            raise ArgError("The ID specified in XADD must be greater than 0-0")
        if new <= last:
            raise ArgError("The ID specified in XADD is equal or smaller than the target stream")
        if s is None:
            if nomk:
                return
            s = StreamVal()
            self._db.keys[key] = s
        s.ids[new] = None
        s.last_id = new
        if trim is not None:
            self._trim(s, trim)

    def c_xtrim(self, a: Args) -> None:
        i, trim, _ = self._trim_args(a, 2, False)
        if trim is None or i != len(a):
            raise ArgError("syntax error, XTRIM must be called with a trimming strategy")
        s = self._stream(a[1])
        if s is not None:
            self._trim(s, trim)

    def c_xdel(self, a: Args) -> None:
        if len(a) < 3:
            raise ArgError("wrong number of arguments")
        ids = [parse_id(x) for x in a[2:]]
        s = self._stream(a[1])
        if s is not None:
            for i in ids:
                s.ids.pop(i, None)

    def c_xsetid(self, a: Args) -> None:
        new = parse_id(a[2])
        s = self._stream(a[1])
        if s is None:
            raise ArgError("no such key")
        if s.ids and new < next(reversed(s.ids)):
            raise ArgError("The ID specified in XSETID is smaller than the target stream top item")
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
                    raise ArgError("The XGROUP subcommand requires the key to exist")
                s = StreamVal()
                self._db.keys[key] = s
            if s.groups is None:
                s.groups = set()
            if group in s.groups:
                raise ArgError("BUSYGROUP Consumer Group name already exists")
            s.groups.add(group)
            return
        if s is None:
            raise ArgError("The XGROUP subcommand requires the key to exist")
        if sub == b"DESTROY":
            if s.groups:
                s.groups.discard(a[3])
        elif sub not in (b"SETID", b"CREATECONSUMER", b"DELCONSUMER"):
            raise ArgError("unknown subcommand")
