"""A keyspace model that replays the write commands of an AOF into an :class:`Inventory`.

``Keyspace.execute(args)`` applies one command the way Redis applies it while loading an AOF:
command names are case-insensitive, a command Redis would reject (wrong type, bad syntax)
changes nothing, collections that become empty disappear, and no key expires while loading
(an expiry already past is kept and counted in ``expired_at_check`` by :meth:`inventory`).

What is tracked per key is what Redis's own semantics need to stay exact: the members of
sets, the fields (and field expiries) of hashes, member -> score of sorted sets, the items of
lists, the entry ids of streams, and for strings only the length (``-1`` once unknown, e.g.
after INCR on an existing value). Values are plain Python containers, not per-key objects:

=========  ==========================================================================
string     ``int`` (the length; -1: unknown but not zero)
list       ``collections.deque`` of bytes
set        ``set`` of bytes
zset       ``ZSetVal`` (a dict member -> float score)
hash       ``HashVal`` (a dict field -> absolute expiry ms, or None)
stream     ``StreamVal`` (entry ids as ``ms << 64 | seq``, last id, group names)
other      ``Opaque`` (a module value, or a RESTORE payload that could not be decoded)
=========  ==========================================================================

Whenever the result depends on something the model does not know (a command it does not
model, a random SPOP, a script, a relative expiry without a time, a lex range over mixed
scores...), ``approximate`` becomes True, with the command counted in ``unknown`` (effect
not applied) or the reason counted in ``approximations`` (applied as well as possible).
Commands Redis would have refused are counted in ``errors``: Redis refuses them too while
loading and goes on, so they change nothing and do not make the model approximate (the check
reports them).

The model is a package, one module per concern:

============  ===============================================================================
values        the value classes above, ``type_name``, ``UNKNOWN_TIME``, RDB values -> model
args          argument parsing as Redis does it (integers, floats, stream ids, range bounds)
commands      the command table: the ``c_*`` method for each command, and the no-op commands
model         ``KeyspaceModel``: state, dispatch, the public API and the shared helpers
generic       keys, databases, MULTI/EXEC, expiries, RESTORE, SORT/GEO ... STORE, FUNCTION
strings       SET and its variants, INCR*, APPEND, SETRANGE, bit fields, HyperLogLogs
lists         pushes, pops, LINSERT, LSET, LREM, LTRIM, LMOVE, LMPOP
sets          SADD, SREM, SPOP, SMOVE, S*STORE
zsets         ZADD, GEOADD, ZREM*, pops, Z*STORE, ZRANGESTORE
hashes        HSET, HDEL, HINCRBY*, field expiries (HEXPIRE*, HPERSIST, HSETEX, HGETEX...)
streams       XADD, XTRIM, XDEL, XSETID, XGROUP
compact       the AOF check's compact C store (``_compact.c``): the keys only the common
              canonical commands write, kept as counts and member hashes (``Keyspace.compact``)
============  ===============================================================================

Each command family (generic ... streams) is a subclass of ``KeyspaceModel`` holding that
family's ``c_*`` methods; :class:`Keyspace` combines them all.
"""

from __future__ import annotations

from toolkit.check.keyspace.args import Args, format_id
from toolkit.check.keyspace.commands import KNOWN_COMMANDS
from toolkit.check.keyspace.generic import GenericCommands
from toolkit.check.keyspace.hashes import HashCommands
from toolkit.check.keyspace.lists import ListCommands
from toolkit.check.keyspace.sets import SetCommands
from toolkit.check.keyspace.streams import StreamCommands
from toolkit.check.keyspace.strings import StringCommands
from toolkit.check.keyspace.values import UNKNOWN_TIME, type_name
from toolkit.check.keyspace.zsets import ZSetCommands

__all__ = ["KNOWN_COMMANDS", "UNKNOWN_TIME", "Args", "Keyspace", "format_id", "type_name"]


class Keyspace(
    GenericCommands,
    StringCommands,
    ListCommands,
    SetCommands,
    ZSetCommands,
    HashCommands,
    StreamCommands,
):
    """The keyspace an AOF builds, command by command (see the module docstring).

    ``unknown`` counts commands not applied (not modelled, or scripts), ``approximations``
    the reasons a result may be off, ``errors`` commands Redis would have refused;
    ``commands`` how many were executed (queued MULTI commands count at EXEC).
    """
