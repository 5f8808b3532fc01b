"""RDB format facts as data: opcodes, value types, versions per magic.

Sources: redis ``src/rdb.h`` (the Redis version that introduced each id is noted), valkey
``src/rdb.h`` for the ``VALKEY`` magic (RDB 81: commit 01756301ec98, lines 61, 141, 156).
Ids 22 and up mean different things under the two magics: every table of types and opcodes
beyond Redis 7.2's is chosen by (magic, version), never by version alone.
"""

from __future__ import annotations

from enum import IntEnum


class Opcode(IntEnum):
    UPDATE = 242  # Valkey 9.2 (81): an inline command during forkless replication
    KEY_META = 243  # Redis 8.6, RDB 13 (Valkey 9 uses 243 for SLOT_IMPORT)
    SLOT_INFO = 244  # Redis 7.4, RDB 12
    FUNCTION2 = 245  # Redis 7.0, RDB 10
    FUNCTION_PRE_GA = 246  # Redis 7.0-rc1/rc2 only
    MODULE_AUX = 247  # Redis 4.0, RDB 8
    IDLE = 248  # Redis 4.0, RDB 8
    FREQ = 249  # Redis 4.0, RDB 8
    AUX = 250  # Redis 3.2, RDB 7
    RESIZEDB = 251  # Redis 3.2, RDB 7
    EXPIRETIME_MS = 252  # RDB 3
    EXPIRETIME = 253
    SELECTDB = 254
    EOF = 255


class ValueType(IntEnum):
    STRING = 0
    LIST = 1
    SET = 2
    ZSET = 3
    HASH = 4
    ZSET_2 = 5  # RDB 8: binary double scores
    MODULE_PRE_GA = 6  # Redis 4.0 release candidates; unreadable without the module
    MODULE_2 = 7  # RDB 8: module value with opcode annotations
    HASH_ZIPMAP = 9
    LIST_ZIPLIST = 10
    SET_INTSET = 11
    ZSET_ZIPLIST = 12
    HASH_ZIPLIST = 13
    LIST_QUICKLIST = 14  # RDB 7
    STREAM_LISTPACKS = 15  # RDB 9
    HASH_LISTPACK = 16  # RDB 10
    ZSET_LISTPACK = 17  # RDB 10
    LIST_QUICKLIST_2 = 18  # RDB 10
    STREAM_LISTPACKS_2 = 19  # RDB 10
    SET_LISTPACK = 20  # RDB 11
    STREAM_LISTPACKS_3 = 21  # RDB 11
    HASH_METADATA_PRE_GA = 22  # Redis 7.4-rc; Valkey 9: HASH_2
    HASH_LISTPACK_EX_PRE_GA = 23  # Redis 7.4-rc
    HASH_METADATA = 24  # RDB 12
    HASH_LISTPACK_EX = 25  # RDB 12
    STREAM_LISTPACKS_4 = 26  # RDB 13


# Value types and opcodes whose ids are public but whose layout no source rbkit follows has
# published (Redis's own src/rdb.c for RDB 14 and 15 was not at hand; Valkey's rdb.c of RDB 81
# neither): per magic, id -> (the name its source gives, the first RDB version with it). A
# record of one stops the walk as "unsupported", named, so that no count is ever guessed.
NOT_READ_TYPES: dict[str, dict[int, tuple[str, int]]] = {
    "REDIS": {
        27: ("RDB_TYPE_STREAM_LISTPACKS_5 (stream with NACK data)", 14),
        28: ("RDB_TYPE_ARRAY (array)", 14),
        29: ("RDB_TYPE_HASH_TMPL_LP (hash template, listpack)", 15),
        30: ("RDB_TYPE_HASH_TMPL_LP_REF (hash template reference, listpack)", 15),
        31: ("RDB_TYPE_HASH_TMPL_ARRAY (hash template, array)", 15),
        32: ("RDB_TYPE_HASH_TMPL_ARRAY_REF (hash template reference, array)", 15),
    },
    "VALKEY": {23: ("RDB_TYPE_PATH_HASH (path hash)", 81)},
}
NOT_READ_OPCODES: dict[str, dict[int, tuple[str, int]]] = {
    "REDIS": {242: ("RDB_OPCODE_HASH_TEMPLATE (hash template registry)", 15)},
    "VALKEY": {242: ("RDB_OPCODE_UPDATE (inline command of a forkless save)", 81)},
}


# Valkey files (magic VALKEY) give 22 and 243 other meanings than Redis.
VALKEY_HASH_2 = 22
VALKEY_SLOT_IMPORT = 243

# The names Redis's TYPE command gives built-in types, in the order reports show them.
REDIS_TYPES = ("string", "list", "set", "zset", "hash", "stream")

# The name Redis's TYPE command gives each value type.
TYPE_NAMES: dict[int, str] = {
    ValueType.STRING: "string",
    ValueType.LIST: "list",
    ValueType.SET: "set",
    ValueType.ZSET: "zset",
    ValueType.HASH: "hash",
    ValueType.ZSET_2: "zset",
    ValueType.MODULE_PRE_GA: "module",
    ValueType.MODULE_2: "module",
    ValueType.HASH_ZIPMAP: "hash",
    ValueType.LIST_ZIPLIST: "list",
    ValueType.SET_INTSET: "set",
    ValueType.ZSET_ZIPLIST: "zset",
    ValueType.HASH_ZIPLIST: "hash",
    ValueType.LIST_QUICKLIST: "list",
    ValueType.STREAM_LISTPACKS: "stream",
    ValueType.HASH_LISTPACK: "hash",
    ValueType.ZSET_LISTPACK: "zset",
    ValueType.LIST_QUICKLIST_2: "list",
    ValueType.STREAM_LISTPACKS_2: "stream",
    ValueType.SET_LISTPACK: "set",
    ValueType.STREAM_LISTPACKS_3: "stream",
    ValueType.HASH_METADATA_PRE_GA: "hash",
    ValueType.HASH_LISTPACK_EX_PRE_GA: "hash",
    ValueType.HASH_METADATA: "hash",
    ValueType.HASH_LISTPACK_EX: "hash",
    ValueType.STREAM_LISTPACKS_4: "stream",
}

# Types Redis deletes when they are empty (and skips when an RDB holds them empty); strings,
# streams and module values may be empty and stay.
COLLECTION_TYPES = frozenset(
    t for t, name in TYPE_NAMES.items() if name in ("list", "set", "zset", "hash")
)

# Encoding names as OBJECT ENCODING would report them after a load, for the report.
ENCODING_NAMES: dict[int, str] = {
    ValueType.STRING: "string",
    ValueType.LIST: "linkedlist",
    ValueType.SET: "hashtable",
    ValueType.ZSET: "skiplist",
    ValueType.HASH: "hashtable",
    ValueType.ZSET_2: "skiplist",
    ValueType.MODULE_PRE_GA: "module",
    ValueType.MODULE_2: "module",
    ValueType.HASH_ZIPMAP: "zipmap",
    ValueType.LIST_ZIPLIST: "ziplist",
    ValueType.SET_INTSET: "intset",
    ValueType.ZSET_ZIPLIST: "ziplist",
    ValueType.HASH_ZIPLIST: "ziplist",
    ValueType.LIST_QUICKLIST: "quicklist",
    ValueType.STREAM_LISTPACKS: "stream",
    ValueType.HASH_LISTPACK: "listpack",
    ValueType.ZSET_LISTPACK: "listpack",
    ValueType.LIST_QUICKLIST_2: "quicklist",
    ValueType.STREAM_LISTPACKS_2: "stream",
    ValueType.SET_LISTPACK: "listpack",
    ValueType.STREAM_LISTPACKS_3: "stream",
    ValueType.HASH_METADATA_PRE_GA: "hashtable",
    ValueType.HASH_LISTPACK_EX_PRE_GA: "listpackex",
    ValueType.HASH_METADATA: "hashtable",
    ValueType.HASH_LISTPACK_EX: "listpackex",
    ValueType.STREAM_LISTPACKS_4: "stream",
}

# Highest value type each RDB version may contain (Redis magic).
MAX_TYPE_FOR_VERSION: dict[int, int] = {
    1: 4,
    2: 13,
    3: 13,
    4: 13,
    5: 13,
    6: 13,
    7: 14,
    8: 14,
    9: 15,
    10: 19,
    11: 21,
    12: 25,
    13: 26,
    14: 28,
    15: 32,
}

# The first RDB version (Redis magic) in which each opcode may appear.
OPCODE_SINCE: dict[int, int] = {
    Opcode.EXPIRETIME_MS: 3,
    Opcode.AUX: 7,
    Opcode.RESIZEDB: 7,
    Opcode.MODULE_AUX: 8,
    Opcode.IDLE: 8,
    Opcode.FREQ: 8,
    Opcode.FUNCTION_PRE_GA: 10,
    Opcode.FUNCTION2: 10,
    Opcode.SLOT_INFO: 12,
    Opcode.KEY_META: 13,
}

# Accepted versions per magic, and the oldest server that reads each.
SUPPORTED_VERSIONS: dict[bytes, range] = {
    b"REDIS": range(1, 16),
    b"VALKEY": range(80, 82),
}
MAGICS = tuple(SUPPORTED_VERSIONS)  # an RDB (or an AOF's RDB preamble) starts with one


# Module value opcodes inside MODULE_2 values and MODULE_AUX (module.c).
MODULE_OPCODE_EOF = 0
MODULE_OPCODE_SINT = 1
MODULE_OPCODE_UINT = 2
MODULE_OPCODE_FLOAT = 3
MODULE_OPCODE_DOUBLE = 4
MODULE_OPCODE_STRING = 5

# Largest db number a default server (databases 16) accepts.
DEFAULT_DATABASES = 16
