"""The compact store: the AOF check's keyspace for the keys only common commands write.

An AOF rewrite (and most workloads) writes each key with a few canonical commands: SET k v,
RPUSH/LPUSH, SADD, HSET/HMSET, ZADD without flags, PEXPIREAT, DEL. The C extension
``_compact`` applies those in C, keeping per key its type, element count (a string's length),
expiry and, for sets, hashes and sorted sets, 64-bit hashes of the members: the counts are
exact up to a 64-bit hash collision between two members of one key.

The check shares the keyspace between it and the Python model
(:class:`~toolkit.check.keyspace.Keyspace`), a key living in one of them only:

* before any command runs, :meth:`CompactStore.mark` reads every command part and makes the
  Python model's every argument of a command the store does not apply, and of every command
  inside MULTI...EXEC (64-bit hashes: an over-approximation, which only costs speed);
* when the first file starts with an RDB part (a preamble, or a multi-part AOF's RDB base), the
  marking runs before it is read and also notes the keys of the store's commands; then each
  key of the RDB part that no command names, of a type the store holds, is taken by the store
  undecoded (type, the walker's element count, expiry: :meth:`CompactStore.load_rows` takes
  runs of such keys from the C walk's batches in C, :meth:`CompactStore.load_rdb_key` one); a
  key some command names, a stream, a module value, a hash with field expiries, are decoded
  for the Python model. A key of an RDB part in a later file is the Python model's (the store
  is then not used at all);
* the store applies a command only when its key is not the Python model's, and counts a
  WRONGTYPE as the model would; everything else the Python model applies;
* FLUSHALL, FLUSHDB and SWAPDB, which the model applies, reach the store through
  ``Keyspace.compact``; the model's inventory, entries, value and expire_of read both.

A file holding a script (EVAL*, FCALL*), whose keys its arguments do not tell, is checked by
the Python model alone, as is everything when the extension is not built or the environment
sets ``RBKIT_AOF_COMPACT=0``.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator

from parsers.rdb.columns import KeyColumns
from parsers.rdb.constants import ValueType as T
from parsers.rdb.strings import string_length
from toolkit.mapped import release_behind

try:  # the optional C extension (setup.py builds it where a compiler is at hand)
    from toolkit.check.keyspace import _compact
except ImportError:  # pragma: no cover - depends on the build
    _compact = None

ENV = "RBKIT_AOF_COMPACT"
# Items mark() reads per call (the pages behind are released between calls).
_MARK_BATCH = 1 << 16
_ENTRIES_BATCH = 4096
# The store's type codes of the RDB value types it takes undecoded (the walker's element
# count is then the model's: every element of these loads; streams, module values and hashes
# with field expiries are decoded for the Python model).
_RDB_TYPES = {
    T.STRING: 1,
    **dict.fromkeys((T.LIST, T.LIST_ZIPLIST, T.LIST_QUICKLIST, T.LIST_QUICKLIST_2), 2),
    **dict.fromkeys((T.SET, T.SET_INTSET, T.SET_LISTPACK), 3),
    **dict.fromkeys((T.ZSET, T.ZSET_2, T.ZSET_ZIPLIST, T.ZSET_LISTPACK), 4),
    **dict.fromkeys((T.HASH, T.HASH_ZIPMAP, T.HASH_ZIPLIST, T.HASH_LISTPACK), 5),
}
_RDB_CODES = bytes(_RDB_TYPES.get(t, 0) for t in range(256))  # the same, for load_rows()


def available() -> bool:
    """Whether the check may use the store: the extension is built and not switched off."""
    return _compact is not None and os.environ.get(ENV, "1") != "0"


class CompactStore:
    """The C store, with the helpers the model and the check use (see the module)."""

    def __init__(self) -> None:
        assert _compact is not None
        self._store = _compact.Store()
        self.run = self._store.run
        self.add_python_key = self._store.add_python_key
        self.flushall = self._store.flushall
        self.flushdb = self._store.flushdb
        self.swapdb = self._store.swapdb
        self.summary = self._store.summary
        self.dbs = self._store.dbs
        self.collect_named = self._store.collect_named

    @property
    def scripts(self) -> bool:
        """Whether :meth:`mark` met a script: then the store must not be used."""
        return bool(self._store.scripts)

    def mark(self, mm: mmap.mmap, start: int) -> None:
        """Note the Python model's keys in one file's commands from ``start`` (up to the first
        item the reader would report as damage, where reading that file stops)."""
        store = self._store
        store.start_file()
        pos, released = start, 0
        while True:
            pos, done = store.mark(mm, pos, _MARK_BATCH)
            released = release_behind(mm, pos, released)
            if done:
                return

    def load_rdb_key(
        self, db: int, key: bytes, t: int, buf: object, value_at: int, n: int, expire: int | None
    ) -> int:
        """Take a key of an RDB part (type id ``t``, ``n`` elements as the walker counts them,
        the value at ``value_at`` in ``buf``) undecoded when it may: 0 taken (or skipped,
        empty), 1 taken and it replaced a key (a duplicate), 2 the Python model's, 3 the Python
        model's and it replaced a key dropped here (a duplicate), 4 a type the store does not
        take: the caller decodes it, and calls :meth:`give_rdb_key` unless it is empty."""
        code = _RDB_TYPES.get(t)
        if code is None:
            return 4
        if code == 1:
            n = string_length(buf, value_at)  # type: ignore[arg-type]
        return self._store.load(db, key, code, n, expire)

    def load_rows(self, buf: object, batch: KeyColumns, start: int) -> tuple[int, int, int]:
        """:meth:`load_rdb_key` in C for a batch of the C walk's records (``buf`` the file),
        from row ``start`` up to the first row the Python model must decode. Returns (that
        row, or ``batch.rows``; how many rows replaced a key; the first of them or -1)."""
        c = batch.column
        return self._store.load_rows(
            _RDB_CODES, buf, c("db"), c("type_id"), c("value_offset"), c("elements"),
            c("expire_ms"), c("name_offsets"), memoryview(batch.names)[: batch.used],
            batch.rows, start,
        )  # fmt: skip

    def give_rdb_key(self, db: int, key: bytes) -> int:
        """Make a key of an RDB part the Python model's (a non-empty value of a type the store
        does not take): 3 when the store held it in ``db`` (dropped: a duplicate), else 2."""
        return self._store.load(db, key, 0, 1, None)

    def entries(self, db: int) -> Iterator[tuple[int, bytes, str, int | None, int]]:
        """The keys of one db as the model's ``entries()`` gives them."""
        start = 0
        while start >= 0:
            rows, start = self._store.entries(db, start, _ENTRIES_BATCH)
            for key, t, expire, count in rows:
                yield db, key, t, expire, 1 if t == "string" else count

    def value(self, db: int, key: bytes) -> object:
        """A string's length, a collection's type name, or None (absent)."""
        row = self._store.get(db, key)
        if row is None:
            return None
        return row[3] if row[1] == "string" else row[1]

    def expire_of(self, db: int, key: bytes) -> int | None:
        row = self._store.get(db, key)
        return None if row is None else row[2]
