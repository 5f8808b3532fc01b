"""The command table: which method applies each command, and which commands change nothing.

:class:`~toolkit.check.keyspace.model.KeyspaceModel` looks every handler up by its method name
here, so a command family's class only has to define the ``c_*`` method named below.
"""

from __future__ import annotations

# Commands with no effect on the keyspace (reads, and writes to state the model does not keep).
NO_OPS = frozenset(
    b"""PING ECHO WATCH UNWATCH TIME GET MGET EXISTS TYPE TTL PTTL EXPIRETIME PEXPIRETIME STRLEN
    GETRANGE SUBSTR GETBIT BITCOUNT BITPOS BITFIELD_RO LCS LLEN LINDEX LRANGE LPOS SCARD
    SISMEMBER SMISMEMBER SMEMBERS SRANDMEMBER SINTER SUNION SDIFF SINTERCARD SSCAN ZCARD ZSCORE
    ZMSCORE ZRANK ZREVRANK ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX
    ZREVRANGEBYLEX ZCOUNT ZLEXCOUNT ZRANDMEMBER ZSCAN ZUNION ZINTER ZDIFF ZINTERCARD HGET HMGET
    HGETALL HKEYS HVALS HLEN HEXISTS HSTRLEN HRANDFIELD HSCAN HTTL HPTTL HEXPIRETIME
    HPEXPIRETIME XLEN XRANGE XREVRANGE XREAD XINFO XPENDING GEOPOS GEODIST GEOHASH
    GEORADIUS_RO GEORADIUSBYMEMBER_RO GEOSEARCH PFCOUNT PFDEBUG PFSELFTEST SCAN KEYS RANDOMKEY
    DBSIZE OBJECT DUMP TOUCH SORT_RO PUBLISH SPUBLISH SCRIPT INFO LASTSAVE WAIT WAITAOF
    XACK XCLAIM XAUTOCLAIM XREADGROUP""".split()
)
# Stream group commands: no keyspace effect, but the key must be a stream if it exists.
STREAM_NO_OPS = frozenset((b"XACK", b"XCLAIM", b"XAUTOCLAIM"))
# Commands whose effect is unknowable from their arguments (scripts run on the loading server).
_SCRIPTS = frozenset((b"EVAL", b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO", b"FCALL", b"FCALL_RO"))


HANDLERS: dict[bytes, str] = {
    b"SELECT": "c_select",
    b"MULTI": "c_multi",
    b"EXEC": "c_exec",
    b"DISCARD": "c_discard",
    b"SWAPDB": "c_swapdb",
    b"FLUSHDB": "c_flushdb",
    b"FLUSHALL": "c_flushall",
    b"DEL": "c_del",
    b"UNLINK": "c_del",
    b"RENAME": "c_rename",
    b"RENAMENX": "c_renamenx",
    b"MOVE": "c_move",
    b"COPY": "c_copy",
    b"EXPIRE": "c_expire",
    b"PEXPIRE": "c_pexpire",
    b"EXPIREAT": "c_expireat",
    b"PEXPIREAT": "c_pexpireat",
    b"PERSIST": "c_persist",
    b"RESTORE": "c_restore",
    b"RESTORE-ASKING": "c_restore",
    b"SORT": "c_sort",
    b"GEORADIUS": "c_georadius",
    b"GEORADIUSBYMEMBER": "c_georadius",
    b"GEOSEARCHSTORE": "c_geosearchstore",
    b"SET": "c_set",
    b"SETEX": "c_setex",
    b"PSETEX": "c_psetex",
    b"SETNX": "c_setnx",
    b"MSET": "c_mset",
    b"MSETNX": "c_msetnx",
    b"GETSET": "c_getset",
    b"GETDEL": "c_getdel",
    b"GETEX": "c_getex",
    b"APPEND": "c_append",
    b"SETRANGE": "c_setrange",
    b"INCR": "c_incr",
    b"DECR": "c_incr",
    b"INCRBY": "c_incrby",
    b"DECRBY": "c_incrby",
    b"INCRBYFLOAT": "c_incrbyfloat",
    b"SETBIT": "c_setbit",
    b"BITFIELD": "c_bitfield",
    b"BITOP": "c_bitop",
    b"PFADD": "c_pfadd",
    b"PFMERGE": "c_pfmerge",
    b"LPUSH": "c_push",
    b"RPUSH": "c_push",
    b"LPUSHX": "c_push",
    b"RPUSHX": "c_push",
    b"LINSERT": "c_linsert",
    b"LSET": "c_lset",
    b"LREM": "c_lrem",
    b"LTRIM": "c_ltrim",
    b"LPOP": "c_pop",
    b"RPOP": "c_pop",
    b"RPOPLPUSH": "c_rpoplpush",
    b"BRPOPLPUSH": "c_rpoplpush",
    b"LMOVE": "c_lmove",
    b"BLMOVE": "c_lmove",
    b"BLPOP": "c_bpop",
    b"BRPOP": "c_bpop",
    b"LMPOP": "c_lmpop",
    b"BLMPOP": "c_lmpop",
    b"SADD": "c_sadd",
    b"SREM": "c_srem",
    b"SPOP": "c_spop",
    b"SMOVE": "c_smove",
    b"SINTERSTORE": "c_setop_store",
    b"SUNIONSTORE": "c_setop_store",
    b"SDIFFSTORE": "c_setop_store",
    b"ZADD": "c_zadd",
    b"ZINCRBY": "c_zincrby",
    b"GEOADD": "c_geoadd",
    b"ZREM": "c_zrem",
    b"ZREMRANGEBYSCORE": "c_zremrangebyscore",
    b"ZREMRANGEBYRANK": "c_zremrangebyrank",
    b"ZREMRANGEBYLEX": "c_zremrangebylex",
    b"ZPOPMIN": "c_zpop",
    b"ZPOPMAX": "c_zpop",
    b"BZPOPMIN": "c_bzpop",
    b"BZPOPMAX": "c_bzpop",
    b"ZMPOP": "c_zmpop",
    b"BZMPOP": "c_zmpop",
    b"ZUNIONSTORE": "c_zsetop_store",
    b"ZINTERSTORE": "c_zsetop_store",
    b"ZDIFFSTORE": "c_zsetop_store",
    b"ZRANGESTORE": "c_zrangestore",
    b"HSET": "c_hset",
    b"HMSET": "c_hset",
    b"HSETNX": "c_hsetnx",
    b"HDEL": "c_hdel",
    b"HINCRBY": "c_hincrby",
    b"HINCRBYFLOAT": "c_hincrby",
    b"HEXPIRE": "c_hexpire",
    b"HPEXPIRE": "c_hpexpire",
    b"HEXPIREAT": "c_hexpireat",
    b"HPEXPIREAT": "c_hpexpireat",
    b"HPERSIST": "c_hpersist",
    b"HSETEX": "c_hsetex",
    b"HGETDEL": "c_hgetdel",
    b"HGETEX": "c_hgetex",
    b"XADD": "c_xadd",
    b"XTRIM": "c_xtrim",
    b"XDEL": "c_xdel",
    b"XSETID": "c_xsetid",
    b"XGROUP": "c_xgroup",
    b"FUNCTION": "c_function",
    **dict.fromkeys(_SCRIPTS, "c_script_like"),
}

# Every command the model applies or knows to have no keyspace effect.
KNOWN_COMMANDS: frozenset[bytes] = frozenset(HANDLERS) | NO_OPS
