"""The core of the keyspace model: its state, dispatch, public API and shared helpers.

:class:`KeyspaceModel` holds the databases, the MULTI queue and the counters, runs each
command through the table in :mod:`toolkit.check.keyspace.commands`, and has the helpers every
command family uses (look a key up by type, store, delete, resolve relative expiries).
The families subclass it; :class:`toolkit.check.keyspace.Keyspace` combines them.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from toolkit.check.inventory import BigKey, DbStats, Inventory
from toolkit.check.keyspace.args import ArgError, Args, format_id, int_arg
from toolkit.check.keyspace.commands import HANDLERS, NO_OPS, STREAM_NO_OPS
from toolkit.check.keyspace.values import (
    TYPE_OF,
    UNKNOWN_TIME,
    DbValues,
    Opaque,
    StreamVal,
    elements_of,
    from_decoded,
    type_name,
)


class Skip(Exception):
    """The command touches a value the model cannot see into: already noted as approximate."""


class KeyspaceModel:
    """The state and machinery of :class:`toolkit.check.keyspace.Keyspace`, without the commands.

    Instantiate ``Keyspace``: the handler table needs every family's ``c_*`` methods.
    """

    def __init__(self) -> None:
        self._dbs: dict[int, DbValues] = {0: DbValues()}
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
        # The AOF check's compact store (toolkit/check/keyspace/compact.py), holding the keys
        # the Python model never sees; None: every key is here.
        self.compact: Any = None
        self._handlers: dict[bytes, Callable[[Args], None]] = {
            name: getattr(self, method) for name, method in HANDLERS.items()
        }

    # -- public API ------------------------------------------------------------------------

    @property
    def approximate(self) -> bool:
        """True when the model may differ from what Redis would have loaded.

        Commands the model rejects (``errors``) do not count: Redis rejects them too while
        loading and goes on, so they change nothing either way; the check reports them.
        """
        return self._approximate or bool(self.unknown or self.approximations)

    def approximate_without(self, names: set[str]) -> bool:
        """``approximate``, not counting the commands ``names`` (ones a check reports as
        errors: the server refuses them, so they are no reason to doubt the inventory)."""
        unknown = any(n not in names for n in self.unknown)
        return self._approximate or unknown or bool(self.approximations)

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

    def load_key(self, db: int, key: bytes, value: object, expire_ms: int | None) -> bool:
        """Seed a key from an RDB base or preamble (a value from :mod:`parsers.rdb.decode`).

        Empty collections are skipped, as Redis skips them when it loads an RDB; expired keys
        are kept, as Redis keeps them when the RDB is an AOF's base. False when the db already
        held the key (Redis refuses such an RDB: "duplicated key"); the new value replaces it.
        """
        v = from_decoded(value)
        if v is None:
            return True
        d = self._get_db(db)
        fresh = key not in d.keys
        d.keys[key] = v
        if expire_ms is not None:
            d.expires[key] = expire_ms
        else:
            d.expires.pop(key, None)
        return fresh

    def load_function(self, name: str) -> None:
        """Seed a function library by name (from an RDB base or preamble)."""
        self.functions[name] = None

    def inventory(self, now_ms: int, top: int = 10) -> Inventory:
        """Per-db counts, functions, modules and the ``top`` biggest keys by elements.

        An AOF carries no encodings, so ``bytes`` is not computed (``bytes_known`` False, 0
        everywhere) and ``biggest_by_bytes`` and ``type_ids`` are empty; ``empty`` is 0 (empty
        collections do not exist here).
        Elements: 1 for a string, the cardinality otherwise (streams: live entries).
        """
        inv = Inventory(bytes_known=False)
        modules: set[str] = set()
        big: list[tuple[int, int, bytes, str]] = []

        def rank(n: int, dbnum: int, key: bytes, t: str) -> None:
            if len(big) < top:
                heapq.heappush(big, (n, dbnum, key, t))
            elif top and (n, dbnum, key) > big[0][:3]:
                heapq.heapreplace(big, (n, dbnum, key, t))

        compact_dbs, compact_big = (
            ({}, []) if self.compact is None else self.compact.summary(now_ms, top)
        )
        for dbnum in sorted(set(self._dbs) | set(compact_dbs)):
            d = self._dbs.get(dbnum) or DbValues()
            held = compact_dbs.get(dbnum, (0, 0, 0, {}))
            if not d.keys and not held[0]:
                continue
            by_type: Counter[str] = Counter(held[3])
            for key, v in d.keys.items():
                t = type_name(v)
                by_type[t] += 1
                if isinstance(v, Opaque) and v.module:
                    modules.add(t)
                rank(elements_of(v), dbnum, key, t)
            expired = sum(1 for t in d.expires.values() if t <= now_ms)
            inv.databases[dbnum] = DbStats(
                keys=len(d.keys) + held[0],
                expires=len(d.expires) + held[1],
                expired_at_check=expired + held[2],
                by_type=dict(sorted(by_type.items())),
            )
        for row in compact_big:
            rank(*row)
        inv.biggest_by_elements = [
            BigKey(db, key, t, n, 0) for n, db, key, t in sorted(big, reverse=True)
        ]
        inv.functions = sorted(self.functions)
        inv.modules = sorted(modules)
        return inv

    def entries(self) -> Iterator[tuple[int, bytes, str, int | None, int]]:
        """Every key as ``(db, key, type, expire_ms, elements)`` (per db, the compact store's
        keys after the model's)."""
        compact = self.compact
        held = set() if compact is None else set(compact.dbs())
        for dbnum in sorted(set(self._dbs) | held):
            d = self._dbs.get(dbnum)
            if d is not None:
                for key, v in d.keys.items():
                    yield dbnum, key, type_name(v), d.expires.get(key), elements_of(v)
            if dbnum in held:
                yield from compact.entries(dbnum)

    def value(self, db: int, key: bytes) -> object:
        """A plain copy of what the model holds for a key (None if absent), for inspection.

        string: its length; list: list of items; set: set; zset: dict member -> score;
        hash: dict field -> expiry ms or None; stream: list of ``ms-seq`` ids; else the type.
        A key of the compact store (the AOF check's, see ``compact``): a string's length, else
        the type (the store keeps no members).
        """
        d = self._dbs.get(db)
        v = None if d is None else d.keys.get(key)
        if v is None and self.compact is not None:
            return self.compact.value(db, key)
        if v is None or type(v) is int:
            return v
        if isinstance(v, deque):
            return list(v)
        if isinstance(v, StreamVal):
            return [format_id(i) for i in v.ids]
        if isinstance(v, Opaque):
            return v.type
        return v.copy()  # type: ignore[attr-defined]

    def expire_of(self, db: int, key: bytes) -> int | None:
        """The absolute expiry (ms) of a key, or None."""
        d = self._dbs.get(db)
        if (d is None or key not in d.keys) and self.compact is not None:
            return self.compact.expire_of(db, key)
        return None if d is None else d.expires.get(key)

    # -- machinery -------------------------------------------------------------------------

    def _run(self, name: bytes, args: Args, at_ms: int | None) -> None:
        self.commands += 1
        handler = self._handlers.get(name)
        if handler is None:
            if name in NO_OPS:
                if name in STREAM_NO_OPS and len(args) > 1:
                    self._check_stream_op(name, args)
                return
            self.unknown[name[:64].decode("latin-1")] += 1
            return
        self._at = at_ms
        try:
            handler(args)
        except ArgError as e:
            self.errors[f"{name.decode('latin-1')}: {e}"] += 1
        except IndexError:
            self.errors[f"{name.decode('latin-1')}: wrong number of arguments"] += 1
        except Skip:
            pass

    def _check_stream_op(self, name: bytes, args: Args) -> None:
        v = self._db.keys.get(args[1])
        if v is not None and not isinstance(v, StreamVal) and type_name(v) != "stream":
            self.errors[f"{name.decode('latin-1')}: WRONGTYPE"] += 1

    def _approx(self, reason: str) -> None:
        self.approximations[reason] += 1

    def _get_db(self, n: int) -> DbValues:
        d = self._dbs.get(n)
        if d is None:
            d = self._dbs[n] = DbValues()
        return d

    def _lookup(self, key: bytes, cls: type, d: DbValues | None = None) -> object:
        """The value at key if it is of ``cls`` (None if absent); WRONGTYPE otherwise."""
        v = (d or self._db).keys.get(key)
        if v is None or type(v) is cls:
            return v
        if isinstance(v, Opaque) and v.type == TYPE_OF[cls]:
            self._approx(f"{v.type} command on a value the model cannot read")
            raise Skip
        raise ArgError("WRONGTYPE Operation against a key holding the wrong kind of value")

    def _set_key(self, key: bytes, value: object, d: DbValues | None = None) -> None:
        """Store a new value, dropping any TTL (Redis's setKey)."""
        d = d or self._db
        d.keys[key] = value
        d.expires.pop(key, None)

    def _delete(self, key: bytes, d: DbValues | None = None) -> bool:
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

    # -- helpers shared by several command families ----------------------------------------

    def _expire_option(self, opt: bytes, arg: bytes) -> int:
        """EX/PX/EXAT/PXAT <arg> as an absolute ms time (must be > 0)."""
        v = int_arg(arg)
        if v <= 0:
            raise ArgError("invalid expire time")
        if opt == b"EX":
            return self._relative(v * 1000)
        if opt == b"PX":
            return self._relative(v)
        return v * 1000 if opt == b"EXAT" else v

    def _first_nonempty(self, keys: Args, cls: type) -> tuple[bytes, object] | None:
        """The first key that holds a ``cls`` value (wrong types before it are errors)."""
        for k in keys:
            v = self._lookup(k, cls)
            if v is not None:
                return k, v
        return None

    def _mpop_args(self, a: Args, start: int, sides: tuple[bytes, bytes]) -> tuple:
        numkeys = int_arg(a[start])
        if numkeys <= 0:
            raise ArgError("numkeys should be greater than 0")
        keys = a[start + 1 : start + 1 + numkeys]
        if len(keys) != numkeys:
            raise ArgError("syntax error")
        rest = a[start + 1 + numkeys :]
        side = rest[0].upper()
        if side not in sides:
            raise ArgError("syntax error")
        count = 1
        if len(rest) == 3 and rest[1].upper() == b"COUNT":
            count = int_arg(rest[2])
            if count <= 0:
                raise ArgError("count should be greater than 0")
        elif len(rest) != 1:
            raise ArgError("syntax error")
        return keys, side == sides[0], count

    def _store(self, dst: bytes, value: Iterable[object] | dict, empty: bool) -> None:
        if empty:
            self._delete(dst)
        else:
            self._set_key(dst, value)
