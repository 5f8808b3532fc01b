"""What Redis checks when it loads a value with ``sanitize-dump-payload yes``, per value type.

``VALIDATORS[type_id](buf, mv, pos, deep)`` reads the value at ``pos`` like the skippers of
:mod:`parsers.rdb.values` (same signature, ``deep`` ignored, same ``(new offset, elements)``
result) and raises a :class:`FormatError` wherever rdbLoadObject (redis ``src/rdb.c``, the same
in 6.2 to 8.x for each type a release knows) refuses the value:

- strings: an LZF string that does not inflate to its declared length;
- listpacks, ziplists, intsets, zipmaps: every entry (listpack.c lpValidateIntegrity, ziplist.c
  ziplistValidateIntegrity, intset.c intsetValidateIntegrity, zipmap.c zipmapValidateIntegrity);
- duplicate set members, sorted set members and hash fields, in every encoding; a field/value
  listpack or ziplist with an odd number of entries;
- sorted set scores that are NaN, or text that ``sscanf("%lg")`` does not read;
- quicklist node containers other than 1 and 2, and nodes stored as empty strings;
- hash field expiries: above 2^48-1, and in a listpack not integers or out of order;
- streams: each listpack as t_stream.c streamValidateListpackIntegrity walks it, 16-byte and
  distinct master ids, a length with no listpack, duplicate groups, consumers and pending
  entries, a consumer's pending entry missing from its group's or held by two consumers
  (Debian's 7.0.15 refuses that, upstream 8.2 does not), a group's without a consumer;
- module values: the opcode framing (without the module, nothing else can be read).

Errors carry the file offset of the damaged part (for a blob stored raw, of the damaged byte
in it) and a code from :mod:`parsers.errors`. What Redis accepts is accepted here, however odd
(a zipmap ending at an early end marker, a stream listpack whose header count is wrong). The C
accelerator (``_speedups.c``) implements the same rules; tests compare the two.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable
from types import ModuleType

from parsers.errors import (
    BAD_FIELD_TTL,
    BAD_INTSET,
    BAD_LISTPACK,
    BAD_QUICKLIST,
    BAD_SCORE,
    BAD_STREAM,
    BAD_ZIPLIST,
    BAD_ZIPMAP,
    DUPLICATE,
    CorruptError,
    TruncatedError,
)
from parsers.rdb import intset, listpack, ziplist, zipmap
from parsers.rdb.constants import ValueType as T
from parsers.rdb.module import skip_module_value
from parsers.rdb.stream import skip_v4_extras
from parsers.rdb.strings import (
    Buffer,
    read_length,
    read_string,
    skip_string_checked,
    string_span,
)
from parsers.rdb.values import (
    QUICKLIST_NODE_PACKED,
    QUICKLIST_NODE_PLAIN,
    Skipper,
    skip_module_pre_ga,
)

Blob = bytes | memoryview

_F64LE = struct.Struct("<d").unpack_from
_U64LE = struct.Struct("<Q").unpack_from
# Hash field expiries (redis ebuckets.h): EB_EXPIRE_TIME_MAX, and one more meaning "none".
EXPIRE_TIME_MAX = (1 << 48) - 1
EXPIRE_TIME_INVALID = EXPIRE_TIME_MAX + 1
_U64 = (1 << 64) - 1
_I64_MIN = -(1 << 63)
# A stream entry with this flag has the master entry's fields (t_stream.c).
STREAM_ITEM_FLAG_SAMEFIELDS = 2
# lpGetIntegerIfValid reads a listpack's end marker as this integer (listpack.c lpGet).
_LP_EOF_AS_INTEGER = 12345678900000000 + 0xFF
_SPACE = b" \t\n\v\f\r"
_DECIMAL = re.compile(rb"\d|\.\d")
_DECIMAL_HEAD = re.compile(rb"\d*\.?\d*(?:[eE][+-]?\d+)?")
_HEX_AFTER_0X = frozenset(b"0123456789abcdefABCDEF.")

# -- helpers ----------------------------------------------------------------------------------


def _blob(buf: Buffer, mv: memoryview, pos: int) -> tuple[Blob, int, int]:
    """The blob stored at ``pos``: (bytes, end, base) with base the file offset of its byte 0
    when it is stored raw, -1 when it was inflated from LZF or spelled from an integer."""
    span = string_span(buf, pos)
    if span is None:
        data, end = read_string(buf, pos)
        return data, end, -1
    return mv[span[0] : span[1]], span[2], span[0]


def _rebased(e: CorruptError, what: str, code: str, pos: int, base: int) -> CorruptError:
    """An error found at byte ``e.offset`` of a blob, placed in the file."""
    if base >= 0:
        return CorruptError(f"{e.what} (in the {what})", base + e.offset, code=code)
    return CorruptError(f"{e.what} (byte {e.offset} of the inflated {what})", pos, code=code)


def _at(base: int, offset: int, pos: int) -> int:
    """The file offset of byte ``offset`` of a blob stored at ``pos`` (see :func:`_blob`)."""
    return base + offset if base >= 0 else pos


def _count(buf: Buffer, pos: int, what: str, min_size: int = 1) -> tuple[int, int]:
    """A length prefix counting items of at least ``min_size`` bytes, checked to fit."""
    n, p = read_length(buf, pos)
    if n * min_size > len(buf) - p:
        raise TruncatedError(f"{n} {what} cannot fit in the {len(buf) - p} bytes left", pos)
    return n, p


def _need(buf: Buffer, pos: int, size: int, what: str) -> None:
    if pos + size > len(buf):
        raise TruncatedError(f"truncated: input ends inside {what}", min(pos, len(buf)))


def _text(v: bytes | int) -> bytes:
    """A packed entry as Redis compares it: integers as their decimal digits."""
    return v if isinstance(v, bytes) else str(v).encode()


def _duplicate(what: str, name: bytes, at: int) -> CorruptError:
    return CorruptError(f"duplicate {what} {name[:40]!r}", at, code=DUPLICATE)


def _unique(names: Iterable[tuple[int, bytes]], what: str) -> None:
    """Raise at the first name seen twice; ``names`` are (file offset, name)."""
    seen: set[bytes] = set()
    for at, name in names:
        if name in seen:
            raise _duplicate(what, name, at)
        seen.add(name)


def string2ll(text: bytes) -> int | None:
    """The integer util.c string2ll reads from ``text`` (all of it), or None."""
    if not text or len(text) >= 21:
        return None
    if text == b"0":
        return 0
    digits = text[1:] if text[:1] == b"-" else text
    if not digits or not digits.isdigit() or not digits.isascii() or digits[:1] == b"0":
        return None
    value = -int(digits) if text[:1] == b"-" else int(digits)
    return value if _I64_MIN <= value <= -_I64_MIN - 1 else None


def text_score(text: bytes) -> float | None:
    """The double ``sscanf(text, "%lg")`` reads as glibc does, or None when it reads nothing.

    rdbLoadDoubleValue hands sscanf a C string (it ends at the first NUL). glibc skips
    blanks, takes a sign, then "nan", "inf" or "infinity" (a started "infinity" must be
    finished), "0x" and at least one more hex digit or point, or decimal digits with at most
    one point before the exponent; it succeeds when strtod uses at least one character of
    that. Only NaN-ness and success matter to the loader, so finite values come back rounded.
    """
    s = text.split(b"\0", 1)[0].lstrip(_SPACE)
    sign = -1.0 if s[:1] == b"-" else 1.0
    rest = s[1:] if s[:1] in (b"+", b"-") else s
    low = rest[:8].lower()
    if low[:1] == b"n":
        return math.nan if low[:3] == b"nan" else None
    if low[:1] == b"i":
        if low[:3] != b"inf" or (low[3:4] == b"i" and low != b"infinity"):
            return None
        return sign * math.inf
    if low[:2] == b"0x":
        return 0.0 if rest[2:3] and rest[2] in _HEX_AFTER_0X else None
    if not _DECIMAL.match(rest):
        return None
    head = _DECIMAL_HEAD.match(rest)
    assert head is not None
    return sign * float(head.group())


# -- strings, lists, sets, sorted sets, hashes --------------------------------------------------


def _string(buf: Buffer, pos: int) -> tuple[bytes, int]:
    s, end = read_string(buf, pos)
    return bytes(s), end


def validate_string(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
    return skip_string_checked(buf, pos), 1


def validate_list(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
    n, pos = _count(buf, pos, "list elements")
    for _ in range(n):
        pos = skip_string_checked(buf, pos)
    return pos, n


def validate_set(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
    n, pos = _count(buf, pos, "set members")
    seen: set[bytes] = set()
    for _ in range(n):
        at = pos
        member, pos = _string(buf, pos)
        if member in seen:
            raise _duplicate("set member", member, at)
        seen.add(member)
    return pos, n


def _zset(binary: bool) -> Skipper:
    """ZSET (type 3, scores as text) and ZSET_2 (type 5, little-endian binary doubles)."""

    def validate(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
        n, pos = _count(buf, pos, "sorted set members", 9 if binary else 2)
        seen: set[bytes] = set()
        for _ in range(n):
            at = pos
            member, pos = _string(buf, pos)
            score_at = pos
            if binary:
                _need(buf, pos, 8, "a sorted set score")
                score, pos = _F64LE(buf, pos)[0], pos + 8
            else:
                score, pos = _read_text_score(buf, pos)
            if math.isnan(score):  # rdbLoadObject: "Zset with NAN score detected"
                raise CorruptError(
                    f"sorted set member {member[:40]!r} has a NaN score", score_at, code=BAD_SCORE
                )
            if member in seen:
                raise _duplicate("sorted set member", member, at)
            seen.add(member)
        return pos, n

    return validate


def _read_text_score(buf: Buffer, pos: int) -> tuple[float, int]:
    """A type-3 score: a length byte (253 nan, 254 +inf, 255 -inf), then that much text."""
    n = buf[pos]
    if n == 253:
        return math.nan, pos + 1
    if n >= 254:
        return (math.inf if n == 254 else -math.inf), pos + 1
    _need(buf, pos + 1, n, "a sorted set score")
    text = bytes(buf[pos + 1 : pos + 1 + n])
    score = text_score(text)
    if score is None:
        raise CorruptError(f"sorted set score {text[:40]!r} is not a number", pos, code=BAD_SCORE)
    return score, pos + 1 + n


def _field_and_value(buf: Buffer, pos: int, seen: set[bytes]) -> int:
    """A hash field, which must not be in ``seen`` (then is), and its value; the offset after."""
    at = pos
    field, pos = _string(buf, pos)
    pos = skip_string_checked(buf, pos)
    if field in seen:
        raise _duplicate("hash field", field, at)
    seen.add(field)
    return pos


def validate_hash(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
    n, pos = _count(buf, pos, "hash fields", 2)
    seen: set[bytes] = set()
    for _ in range(n):
        pos = _field_and_value(buf, pos, seen)
    return pos, n


# -- blobs: listpacks, ziplists, intsets, zipmaps -----------------------------------------------


def _packed_entries(
    encoding: ModuleType, code: str, what: str, buf: Buffer, mv: memoryview, pos: int
) -> tuple[list[tuple[int, bytes | int]], int, int]:
    """Every (offset, value) of the listpack or ziplist stored at ``pos``, checked; the end and
    the blob's base (see :func:`_blob`)."""
    blob, end, base = _blob(buf, mv, pos)
    try:
        return list(encoding.located_entries(blob)), end, base
    except CorruptError as e:
        raise _rebased(e, what, code, pos, base) from None


def _tuples(
    items: list[tuple[int, bytes | int]],
    per: int,
    what: str,
    code: str,
    pos: int,
    base: int,
) -> int:
    """Redis's entry callback for packed sets, sorted sets and hashes (rdb.c
    _lpEntryValidation, _ziplistPairsEntryConvertAndValidate): the first entry of each group
    of ``per`` is unique; with ``per`` 3 the third is a field expiry (an integer entry, 0 for
    none, at most 2^48-1, those set first and in increasing order). Returns the groups."""
    seen: set[bytes] = set()
    last_expiry = -1
    for i, (offset, value) in enumerate(items):
        r = i % per
        if r == 0:
            name = _text(value)
            if name in seen:
                raise _duplicate(what, name, _at(base, offset, pos))
            seen.add(name)
        elif r == 2:
            at = _at(base, offset, pos)
            if not isinstance(value, int):
                raise CorruptError(
                    f"hash field expiry {value[:40]!r} is not an integer", at, code=BAD_FIELD_TTL
                )
            if value < 0 or value > EXPIRE_TIME_MAX:
                raise CorruptError(
                    f"hash field expiry {value} is out of range", at, code=BAD_FIELD_TTL
                )
            if value != 0 and (last_expiry == 0 or value < last_expiry):
                raise CorruptError(
                    f"hash field expiry {value} is out of order (after {last_expiry})",
                    at,
                    code=BAD_FIELD_TTL,
                )
            last_expiry = value
    if len(items) % per:
        raise CorruptError(f"{len(items)} entries, not a multiple of {per}", pos, code=code)
    return len(items) // per


def _packed(encoding: ModuleType, what: str, per: int = 1, unique: str | None = None) -> Skipper:
    """A listpack or ziplist value; ``unique`` names what must not repeat (every ``per``-th)."""
    code = BAD_LISTPACK if encoding is listpack else BAD_ZIPLIST

    def validate(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
        items, end, base = _packed_entries(encoding, code, what, buf, mv, pos)
        if unique is None:
            return end, len(items)
        return end, _tuples(items, per, unique, code, pos, base)

    return validate


def _listpack_ex(with_min_expire: bool) -> Skipper:
    """HASH_LISTPACK_EX (25; 23 before GA): [min expiry], listpack of field, value, expiry."""

    def validate(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
        if with_min_expire:
            _need(buf, pos, 8, "a hash's minimum field expiry")
            pos += 8  # only a hint: Redis reads it and ignores it
        items, end, base = _packed_entries(listpack, BAD_LISTPACK, "hash listpack", buf, mv, pos)
        return end, _tuples(items, 3, "hash field", BAD_LISTPACK, pos, base)

    return validate


def validate_intset(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
    blob, end, base = _blob(buf, mv, pos)
    try:
        return end, intset.validate(blob)
    except CorruptError as e:
        raise _rebased(e, "intset", BAD_INTSET, pos, base) from None


def validate_zipmap(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
    """HASH_ZIPMAP (9): the zipmap walk, then the fields unique (rdb.c converts it to a
    listpack, refusing duplicates)."""
    blob, end, base = _blob(buf, mv, pos)
    try:
        values = list(zipmap.entries(blob))
    except CorruptError as e:
        raise _rebased(e, "zipmap", BAD_ZIPMAP, pos, base) from None
    _unique(((pos, f) for f in values[::2]), "hash field")
    return end, len(values) // 2


def _quicklist(version: int) -> Skipper:
    """LIST_QUICKLIST (14, ziplist nodes) and LIST_QUICKLIST_2 (18: a container length, 1 for a
    plain element or 2 for a listpack, then the node). Nodes stored as empty strings are
    refused; nodes holding no entries are skipped, as Redis does."""
    encoding = listpack if version == 2 else ziplist
    code = BAD_LISTPACK if version == 2 else BAD_ZIPLIST
    what = "quicklist listpack node" if version == 2 else "quicklist ziplist node"

    def validate(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
        nodes, pos = _count(buf, pos, "quicklist nodes")
        total = 0
        for _ in range(nodes):
            container = QUICKLIST_NODE_PACKED
            if version == 2:
                at = pos
                container, pos = read_length(buf, pos)
                if container not in (QUICKLIST_NODE_PACKED, QUICKLIST_NODE_PLAIN):
                    raise CorruptError(
                        f"quicklist node container {container}, expected 1 or 2",
                        at,
                        code=BAD_QUICKLIST,
                    )
            blob, end, base = _blob(buf, mv, pos)
            if not len(blob):
                raise CorruptError("quicklist node is an empty string", pos, code=BAD_QUICKLIST)
            if container == QUICKLIST_NODE_PLAIN:
                total += 1
            else:
                try:
                    total += encoding.validate(blob)
                except CorruptError as e:
                    raise _rebased(e, what, code, pos, base) from None
            pos = end
        return pos, total

    return validate


# -- hashes with field expiries ----------------------------------------------------------------


def _hash_metadata(with_min_expire: bool) -> Skipper:
    """HASH_METADATA (24): min expiry (8 bytes, at most 2^48), then per field a length-encoded
    ttl (0: none, else min expiry + ttl - 1), field, value; HASH_METADATA_PRE_GA (22): no min
    expiry, absolute ttls. An expiry above 2^48-1 is refused; so are repeated fields."""

    def validate(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
        min_expire = 0
        if with_min_expire:
            _need(buf, pos, 8, "a hash's minimum field expiry")
            min_expire = _U64LE(buf, pos)[0]
            if min_expire > EXPIRE_TIME_INVALID:
                raise CorruptError(
                    f"hash minimum field expiry {min_expire} is above 2^48", pos, code=BAD_FIELD_TTL
                )
            pos += 8
        n, pos = _count(buf, pos, "hash fields", 3)
        seen: set[bytes] = set()
        for _ in range(n):
            at = pos
            ttl, pos = read_length(buf, pos)
            expire_at = ttl
            if with_min_expire and ttl:
                expire_at = (ttl + min_expire - 1) & _U64
            if expire_at > EXPIRE_TIME_MAX:
                raise CorruptError(
                    f"hash field expiry {expire_at} is above 2^48-1", at, code=BAD_FIELD_TTL
                )
            pos = _field_and_value(buf, pos, seen)
        return pos, n

    return validate


def validate_valkey_hash2(
    buf: Buffer, mv: memoryview, pos: int, deep: bool = True
) -> tuple[int, int]:
    """Valkey 9 HASH_2 (type 22 under the VALKEY magic): field, value, 8-byte expiry; the
    fields unique, each expiry -1 (none) or more: Valkey's rdbLoadObject refuses one below
    (``itemexpiry < EXPIRY_NONE``, src/rdb.c), whatever sanitize-dump-payload says."""
    n, pos = _count(buf, pos, "hash fields", 10)
    seen: set[bytes] = set()
    for _ in range(n):
        pos = _field_and_value(buf, pos, seen)
        _need(buf, pos, 8, "a hash field expiry")
        (expiry,) = _INT64.unpack_from(buf, pos)
        if expiry < -1:
            raise CorruptError(
                f"hash field expiry {expiry} is below -1 (none)", pos, code=BAD_FIELD_TTL
            )
        pos += 8
    return pos, n


_INT64 = struct.Struct("<q")


# -- streams ----------------------------------------------------------------------------------


def stream_listpack_ok(items: list[bytes | int]) -> bool:
    """t_stream.c streamValidateListpackIntegrity over a stream listpack's entries (walked
    up to the first end marker), step by step: the master entry (count, deleted, fields,
    field names, 0), then count + deleted entries (flags, id deltas, [fields, names], values,
    lp-count), ending exactly at the end marker. Integers are read as lpGetIntegerIfValid
    does (a string entry must spell one); the end marker itself reads as a large integer."""
    n = len(items)
    if n == 0:
        return False
    state = [0, 1]  # p, next (None once next has passed the end marker)

    def advance() -> bool:
        nxt = state[1]
        if nxt is None:
            return False
        state[0] = nxt
        state[1] = None if nxt == n else nxt + 1
        return True

    def integer() -> int | None:
        p = state[0]
        if p == n:
            return _LP_EOF_AS_INTEGER
        v = items[p]
        return v if isinstance(v, int) else string2ll(v)

    def wrap(v: int) -> int:
        return (v + (1 << 63)) % (1 << 64) - (1 << 63)

    def skip(count: int) -> bool:
        return all(advance() for _ in range(max(count, 0)))

    entry_count = integer()
    if entry_count is None or not advance():
        return False
    deleted = integer()
    if deleted is None or not advance():
        return False
    master_fields = integer()
    if master_fields is None or not advance():
        return False
    if not skip(master_fields):
        return False
    zero = integer()
    if zero != 0 or not advance():
        return False
    remaining = wrap(entry_count + deleted)
    while remaining != 0:
        remaining = wrap(remaining - 1)
        fields, extra = master_fields, 3
        flags = integer()
        if flags is None or not advance():
            return False
        for _ in range(2):  # the id's ms and seq deltas
            if integer() is None or not advance():
                return False
        if not flags & STREAM_ITEM_FLAG_SAMEFIELDS:
            fields = integer()
            if fields is None or not advance() or not skip(fields):
                return False
            extra = wrap(extra + fields + 1)
        if not skip(fields):
            return False
        lp_count = integer()
        if lp_count is None or lp_count != wrap(fields + extra) or not advance():
            return False
    return state[1] is None


def _stream(type_id: int) -> Skipper:
    """Streams (15, 19, 21, 26), as rdbLoadObject reads them with deep sanitization."""

    def validate(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
        n_listpacks, pos = _count(buf, pos, "stream listpacks", 2)
        masters: set[bytes] = set()
        for _ in range(n_listpacks):
            at = pos
            master, pos = _string(buf, pos)
            if len(master) != 16:
                raise CorruptError(
                    f"stream master id is {len(master)} bytes, expected 16", at, code=BAD_STREAM
                )
            lp_at = pos
            blob, pos, base = _blob(buf, mv, pos)
            try:
                items = [v for _, v in listpack.located_entries(blob, loose_end=True)]
            except CorruptError as e:
                raise _rebased(e, "stream listpack", BAD_STREAM, lp_at, base) from None
            if not stream_listpack_ok(items):
                raise CorruptError(
                    "stream listpack integrity check failed (its entries do not follow the "
                    "master entry's layout)",
                    lp_at,
                    code=BAD_STREAM,
                )
            if master in masters:
                raise CorruptError("stream listpack master id repeated", at, code=BAD_STREAM)
            masters.add(master)
        at = pos
        length, pos = read_length(buf, pos)
        for _ in range(2 if type_id < T.STREAM_LISTPACKS_2 else 7):
            _, pos = read_length(buf, pos)  # last id; first id, max deleted id, entries added
        if length and not n_listpacks:
            raise CorruptError(
                f"stream length is {length} but it holds no listpack (Redis 7.0 and later "
                "refuse that)",
                at,
                code=BAD_STREAM,
            )
        n_groups, pos = _count(buf, pos, "consumer groups", 4)
        names: set[bytes] = set()
        for _ in range(n_groups):
            at = pos
            name, pos = _string(buf, pos)
            if name in names:
                raise CorruptError(f"duplicate consumer group {name[:40]!r}", at, code=BAD_STREAM)
            names.add(name)
            pos = _stream_group(buf, pos, type_id)
        if type_id >= T.STREAM_LISTPACKS_4:
            pos = skip_v4_extras(buf, pos)
        if pos > len(buf):
            raise TruncatedError("truncated: stream runs past the end of the input", len(buf))
        return pos, length

    return validate


def _stream_group(buf: Buffer, pos: int, type_id: int) -> int:
    """A consumer group after its name: last id, [entries read], PEL, consumers."""
    for _ in range(2 if type_id < T.STREAM_LISTPACKS_2 else 3):
        _, pos = read_length(buf, pos)
    n_pel, pos = _count(buf, pos, "pending entries", 25)
    pel: dict[bytes, int] = {}  # id -> where it is
    for _ in range(n_pel):
        at = pos
        raw = bytes(buf[pos : pos + 16])
        _, pos = read_length(buf, pos + 24)  # after the id and delivery time: delivery count
        if raw in pel:
            raise CorruptError("duplicate entry in a consumer group's PEL", at, code=BAD_STREAM)
        pel[raw] = at
    n_consumers, pos = _count(buf, pos, "consumers", 10)
    consumers: set[bytes] = set()
    owned: set[bytes] = set()
    times = 16 if type_id >= T.STREAM_LISTPACKS_3 else 8  # seen [and active] time
    for _ in range(n_consumers):
        at = pos
        name, pos = _string(buf, pos)
        if name in consumers:
            raise CorruptError(f"duplicate consumer {name[:40]!r}", at, code=BAD_STREAM)
        consumers.add(name)
        _need(buf, pos, times, "a consumer's times")
        n_cpel, pos = _count(buf, pos + times, "consumer pending entries", 16)
        for _ in range(n_cpel):
            raw = bytes(buf[pos : pos + 16])
            if raw not in pel:
                raise CorruptError(
                    "Consumer entry not found in group global PEL", pos, code=BAD_STREAM
                )
            if raw in owned:  # twice in a consumer's PEL, or in two consumers' PELs
                raise CorruptError(
                    "pending entry already has a consumer assigned (Debian's Redis 7.0.15 "
                    "refuses that)",
                    pos,
                    code=BAD_STREAM,
                )
            owned.add(raw)
            pos += 16
    orphans = [at for raw, at in pel.items() if raw not in owned]
    if orphans:
        raise CorruptError(
            f"{len(orphans)} pending entries of the group have no consumer (the first here)",
            orphans[0],
            code=BAD_STREAM,
        )
    return pos


# -- modules ----------------------------------------------------------------------------------


def validate_module(buf: Buffer, mv: memoryview, pos: int, deep: bool = True) -> tuple[int, int]:
    """MODULE_2 (7): the module id, then (opcode, value) pairs up to the EOF opcode."""
    return skip_module_value(buf, pos, check=True)[0], 1


VALIDATORS: dict[int, Skipper] = {
    T.STRING: validate_string,
    T.LIST: validate_list,
    T.SET: validate_set,
    T.ZSET: _zset(binary=False),
    T.HASH: validate_hash,
    T.ZSET_2: _zset(binary=True),
    T.MODULE_PRE_GA: skip_module_pre_ga,
    T.MODULE_2: validate_module,
    T.HASH_ZIPMAP: validate_zipmap,
    T.LIST_ZIPLIST: _packed(ziplist, "ziplist"),
    T.SET_INTSET: validate_intset,
    T.ZSET_ZIPLIST: _packed(ziplist, "sorted set ziplist", 2, "sorted set member"),
    T.HASH_ZIPLIST: _packed(ziplist, "hash ziplist", 2, "hash field"),
    T.LIST_QUICKLIST: _quicklist(1),
    T.STREAM_LISTPACKS: _stream(T.STREAM_LISTPACKS),
    T.HASH_LISTPACK: _packed(listpack, "hash listpack", 2, "hash field"),
    T.ZSET_LISTPACK: _packed(listpack, "sorted set listpack", 2, "sorted set member"),
    T.LIST_QUICKLIST_2: _quicklist(2),
    T.STREAM_LISTPACKS_2: _stream(T.STREAM_LISTPACKS_2),
    T.SET_LISTPACK: _packed(listpack, "set listpack", 1, "set member"),
    T.STREAM_LISTPACKS_3: _stream(T.STREAM_LISTPACKS_3),
    T.HASH_METADATA_PRE_GA: _hash_metadata(with_min_expire=False),
    T.HASH_LISTPACK_EX_PRE_GA: _listpack_ex(with_min_expire=False),
    T.HASH_METADATA: _hash_metadata(with_min_expire=True),
    T.HASH_LISTPACK_EX: _listpack_ex(with_min_expire=True),
    T.STREAM_LISTPACKS_4: _stream(T.STREAM_LISTPACKS_4),
}

# Valkey files share Redis's ids up to 21; 22 means HASH_2 there.
VALKEY_VALIDATORS: dict[int, Skipper] = {
    k: v for k, v in VALIDATORS.items() if k <= T.STREAM_LISTPACKS_3
} | {22: validate_valkey_hash2}
