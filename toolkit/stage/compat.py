"""Can this server load this backup? The refusals the drill and the restores share: RDB
version and magic against the server's release (parsers/rdb/versions.py), a multi-part AOF
before Redis 7, AOF commands newer than the server, module types and commands without their
module, and the ``databases`` setting a backup needs."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from parsers.aof.command_table import module_providing
from parsers.rdb.constants import DEFAULT_DATABASES
from parsers.rdb.versions import first_release, release_for, server_reads
from toolkit.check.result import CheckResult
from toolkit.errors import ServerError
from toolkit.server.process import ServerBinary, find_binaries

Version = tuple[int, ...]

# Module types some servers have built in (no --module needed), from that release on.
BUILTIN_TYPES: dict[str, Version] = {"vectorset": (8, 0)}
# Module type names -> the module that provides them, for the refusal sentence.
MODULE_OF_TYPE: dict[str, str] = {
    "graphdata": "FalkorDB or RedisGraph",
    "ReJSON-RL": "RedisJSON",
    "MBbloom--": "RedisBloom",
    "MBbloomCF": "RedisBloom",
    "TopK-TYPE": "RedisBloom",
    "CMSk-TYPE": "RedisBloom",
    "TDIS-TYPE": "RedisBloom",
    "TSDB-TYPE": "RedisTimeSeries",
    "ft_index0": "RediSearch",
}
# Module type names -> the file names of the module libraries that provide them: a server
# given other modules refuses such values ("no matching module type").
MODULE_LIBRARIES: dict[str, frozenset[str]] = {
    "graphdata": frozenset({"falkordb.so", "redisgraph.so"}),
    "ReJSON-RL": frozenset({"rejson.so", "librejson.so"}),
    "MBbloom--": frozenset({"redisbloom.so"}),
    "MBbloomCF": frozenset({"redisbloom.so"}),
    "TopK-TYPE": frozenset({"redisbloom.so"}),
    "CMSk-TYPE": frozenset({"redisbloom.so"}),
    "TDIS-TYPE": frozenset({"redisbloom.so"}),
    "TSDB-TYPE": frozenset({"redistimeseries.so"}),
    "ft_index0": frozenset({"redisearch.so"}),
    "vectorset": frozenset({"vset.so"}),
}
# Commands a server-written AOF may hold that older servers do not know (the first release).
COMMAND_SINCE: dict[str, Version] = {
    "FUNCTION": (7, 0),
    "HPEXPIREAT": (7, 4),
    "HPERSIST": (7, 4),
    "HSETEX": (8, 0),
    "HGETEX": (8, 0),
    "HGETDEL": (8, 0),
    "VADD": (8, 0),
    "VREM": (8, 0),
    "VSETATTR": (8, 0),
}


@functools.lru_cache(maxsize=16)
def is_valkey(path: Path) -> bool:
    """True when the binary at ``path`` is a valkey-server (its --version says so)."""
    try:
        out = subprocess.run([os.fspath(path), "--version"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return b"valkey" in out.stdout.lower()


def _text(v: Version) -> str:
    return ".".join(map(str, v))


def needed_databases(result: CheckResult) -> int:
    """The ``databases`` setting the backup needs: above its highest db, and at least 16."""
    dbs = set(result.inventory.databases) if result.inventory else set()
    if result.aof is not None:
        dbs.update(result.aof.commands_by_db)
    return max(DEFAULT_DATABASES, max(dbs, default=0) + 1)


def needed_modules(result: CheckResult, version: Version) -> tuple[list[str], list[str]]:
    """Module types, and module commands of an AOF, that a server of ``version`` has no
    built-in support for: (types, commands)."""
    types = [
        t
        for t in (result.inventory.modules if result.inventory else [])
        if not (t in BUILTIN_TYPES and version >= BUILTIN_TYPES[t])
    ]
    commands = []
    if result.aof is not None:
        commands = sorted(c for c in result.aof.unknown_commands if "." in c)
    return types, commands


def refusals(
    result: CheckResult,
    binary: ServerBinary,
    modules: Sequence[Path] = (),
    server_text: str | None = None,
) -> list[str]:
    """Why ``binary`` cannot load this backup (empty: it can), one sentence each; the
    sentences name the server as ``server_text`` (default "this redis-server is X")."""
    out: list[str] = []
    have = binary.version
    valkey = is_valkey(binary.path)
    name = "valkey" if valkey else "redis"
    server = server_text or f"this {name}-server is {binary.version_text}"
    part = ""
    if result.format == "aof" and result.rdb_version is not None:
        part = " (the AOF's RDB part)"
    v = result.rdb_version
    if result.magic == "VALKEY" and v is not None:
        if not valkey:
            out.append(
                f"a VALKEY {v} file{part} (written by {release_for('VALKEY', v)}) cannot be "
                f"loaded by Redis; {server}"
            )
        elif not server_reads("VALKEY", v, have, valkey=True):
            need = first_release("VALKEY", v)
            out.append(
                f"VALKEY RDB {v}{part} needs Valkey >= {_text(need) if need else '?'}; {server}"
            )
    elif v is not None:
        need = first_release("REDIS", v)
        shown = _text(need) if need else "?"
        if valkey and not server_reads("REDIS", v, have, valkey=True):
            out.append(f"RDB {v}{part} (Redis {shown}+) cannot be loaded by Valkey; {server}")
        elif not server_reads("REDIS", v, have, valkey=False):
            out.append(f"RDB {v}{part} needs Redis >= {shown}; {server}")
    if result.aof is not None:
        if result.aof.layout == "multi-part" and have < (7, 0):
            out.append(
                f"a multi-part AOF (appendonlydir with a manifest) needs Redis >= 7.0; {server}"
            )
        newer = sorted(
            (COMMAND_SINCE[c], c)
            for c in result.aof.commands
            if c in COMMAND_SINCE and have < COMMAND_SINCE[c]
        )
        for since, command in newer:
            out.append(f"the AOF uses {command}, which needs Redis >= {_text(since)}; {server}")
    out.extend(_module_refusals(result, binary, modules, valkey))
    return out


def _module_refusals(
    result: CheckResult, binary: ServerBinary, modules: Sequence[Path], valkey: bool
) -> list[str]:
    """Module types and commands that neither the server nor the modules given provide. A
    type or command rbkit knows no library of is let through when modules are given (one of
    them may provide it: the load will tell)."""
    types, commands = needed_modules(result, binary.version)
    name = f"{'valkey' if valkey else 'redis'}-server {binary.version_text}"
    given = sorted({Path(m).name for m in modules})
    out = []
    for t in types:
        libraries = MODULE_LIBRARIES.get(t)
        if modules and (libraries is None or libraries & set(given)):
            continue
        about = ""
        if t in MODULE_OF_TYPE:
            about = f" ({MODULE_OF_TYPE[t]})"
        elif t in BUILTIN_TYPES:
            about = f" (built into Redis >= {_text(BUILTIN_TYPES[t])})"
        if modules:
            out.append(
                f"the backup holds values of module type {t}{about}, which neither "
                f"{name} nor the modules given ({', '.join(given)}) provide"
            )
        else:
            out.append(
                f"the backup holds values of module type {t}{about}, which {name} does not "
                "have built in: pass --module PATH to load its module"
            )
    for c in commands:
        found = module_providing(c.encode())
        library = found[0].library if found is not None else None
        if modules and (library is None or library in given):
            continue
        if modules:
            out.append(
                f"the AOF calls {c}, a module command of {library}, which is not among the "
                f"modules given ({', '.join(given)})"
            )
        else:
            out.append(
                f"the AOF calls {c}, a module command {name} does not know: pass --module "
                "PATH to load its module"
            )
    return out


def choose_binary(result: CheckResult, modules: Sequence[Path] = ()) -> ServerBinary:
    """The redis-server to stage with: Debian's (the system one) if it can read the backup,
    else the oldest one here that can, else the newest of the backup's family (Valkey for a
    VALKEY file, Redis otherwise), whose refusal then says why."""
    binaries = find_binaries()
    if not binaries:
        raise ServerError("no redis-server found (install redis-server or pass --redis-server)")
    readable = [b for b in binaries if not refusals(result, b, modules)]
    for b in readable:
        if b.source == "system":
            return b
    if readable:
        return readable[0]
    family = [b for b in binaries if is_valkey(b.path) == (result.magic == "VALKEY")]
    return (family or binaries)[-1]
