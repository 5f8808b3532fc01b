"""The commands a server accepts while it loads an AOF, per server version and per module.

The tables are data (``command_tables/*.json``), written by ``fixtures/generate_commands.py``
from live servers' ``COMMAND`` output: per command its arity, flags, key positions, its
subcommands and, for a command a built-in module provides (Redis 8's vector sets), the module.
``modules.json`` holds the commands of modules loaded into a live server, and for modules no
server here could load, the command prefixes their documentation gives.

How a loading server judges a command (``loadSingleAppendOnlyFile`` in Redis's aof.c, the same
in Valkey): it looks the command up, and stops at the first one it does not find ("Unknown
command '...' reading the append only file"). Redis 6.2 looks up the name alone
(``lookupCommand(argv[0])``); 7.0+ and Valkey look up the name and, for a container command
(XGROUP, FUNCTION, CONFIG...), the subcommand (``lookupCommand(argv, argc)``): an unknown
subcommand is an unknown command, and a container named alone has no function to run (the
server crashes). The loader checks no arity: a command with fewer arguments than its arity
runs on arguments that are not there (a crash, or a corrupt keyspace), one with more than a
fixed arity ignores them. :meth:`Table.judge` says which of these applies to a command.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

TABLES = Path(__file__).with_name("command_tables")

# Judgements (Table.judge): the command is accepted, or why the loading server refuses it.
OK = "ok"
UNKNOWN = "unknown"  # no such command (or subcommand): the server refuses to start
NO_SUBCOMMAND = "no_subcommand"  # a container command alone: the server crashes
TOO_FEW = "too_few"  # fewer arguments than the arity: the command reads past them
TOO_MANY = "too_many"  # more arguments than a fixed arity: Redis ignores the extra ones


@dataclass(frozen=True, slots=True)
class Spec:
    """One command (or subcommand) as ``COMMAND`` describes it."""

    name: str  # lower case, "xgroup|create" for a subcommand
    arity: int  # N: exactly N arguments (the name included); -N: at least N
    flags: frozenset[str]
    keys: tuple[int, int, int]  # first key, last key (-1: the last argument), step
    module: str | None = None  # the module that provides it, if one does
    subcommands: Mapping[bytes, Spec] = field(default_factory=dict)

    def arity_of(self, argc: int) -> str:
        """OK, TOO_FEW or TOO_MANY for a command of ``argc`` arguments."""
        a = self.arity
        if (a > 0 and argc < a) or (a < 0 and argc < -a):
            return TOO_FEW
        if a > 0 and argc > a:
            return TOO_MANY
        return OK

    @property
    def needs(self) -> str:
        """The arity in words: "3 arguments", "at least 2 arguments"."""
        n = abs(self.arity)
        return f"{'' if self.arity > 0 else 'at least '}{n} argument{'s' if n != 1 else ''}"


@dataclass(frozen=True)
class Table:
    """The command table of one server version."""

    server: str  # "redis" or "valkey"
    version: tuple[int, int, int]
    source: str
    commands: Mapping[bytes, Spec]  # by upper-case name

    @property
    def label(self) -> str:
        return f"{'Valkey' if self.server == 'valkey' else 'Redis'} {self.version_text}"

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def subcommand_lookup(self) -> bool:
        """Whether the loader looks subcommands up (7.0+, Valkey): 6.2 has no subcommands."""
        return any(spec.subcommands for spec in self.commands.values())

    def judge(self, name: bytes, sub: bytes | None, argc: int) -> tuple[str, Spec | None]:
        """How this server's loader takes a command: ``(judgement, spec)``.

        ``name`` and ``sub`` are upper case; ``sub`` is the second argument (None if none).
        The spec is the (sub)command's, None when UNKNOWN.
        """
        spec = self.commands.get(name)
        if spec is None:
            return UNKNOWN, None
        if spec.subcommands:
            if sub is None:
                return NO_SUBCOMMAND, spec
            spec = spec.subcommands.get(sub)
            if spec is None:
                return UNKNOWN, None
        return spec.arity_of(argc), spec


@dataclass(frozen=True)
class Module:
    """The commands of one module, by the name ``MODULE LIST`` gives it."""

    name: str
    library: str | None  # its file name (rejson.so), None for one built into a server
    commands: Mapping[bytes, Spec]  # by upper-case name; empty when only prefixes are known
    prefixes: tuple[bytes, ...] = ()  # upper-case name prefixes, when no live table exists
    source: str = ""

    def provides(self, name: bytes) -> Spec | bool | None:
        """Its spec of ``name`` (upper case); True when only a prefix says it is this
        module's; None when it is not this module's."""
        spec = self.commands.get(name)
        if spec is not None:
            return spec
        return True if any(name.startswith(p) for p in self.prefixes) else None


def _spec(name: str, entry: dict, module: str | None = None) -> Spec:
    subs = {
        sub.upper().encode(): _spec(f"{name}|{sub}", e, module)
        for sub, e in entry.get("subcommands", {}).items()
    }
    return Spec(
        name,
        int(entry["arity"]),
        frozenset(entry["flags"]),
        tuple(entry["keys"]),  # type: ignore[arg-type]
        entry.get("module", module),
        subs,
    )


def _commands(entries: dict[str, dict], module: str | None = None) -> dict[bytes, Spec]:
    return {name.upper().encode(): _spec(name, e, module) for name, e in entries.items()}


@functools.cache
def tables() -> tuple[Table, ...]:
    """Every server table, oldest first within each server (redis, then valkey)."""
    out = []
    for path in sorted(TABLES.glob("*.json")):
        if path.name == "modules.json":
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        version = tuple(int(x) for x in data["version"].split("."))
        out.append(Table(data["server"], version, data["source"], _commands(data["commands"])))  # type: ignore[arg-type]
    return tuple(sorted(out, key=lambda t: (t.server != "redis", t.version)))


@functools.cache
def modules() -> tuple[Module, ...]:
    """Every module rbkit knows the commands of: from modules.json, and the modules built
    into a server (whose commands its table marks with the module's name)."""
    data = json.loads((TABLES / "modules.json").read_text(encoding="utf-8"))
    out = [
        Module(name, m["library"], _commands(m["commands"], name), source=m["source"])
        for name, m in data["modules"].items()
    ]
    for name, prefixes in data["prefix_only"].items():
        upper = tuple(p.upper().encode() for p in prefixes)
        out.append(Module(name, None, {}, upper, "the module's documentation (prefixes)"))
    builtin: dict[str, dict[bytes, Spec]] = {}
    for table in tables():
        for cname, spec in table.commands.items():
            if spec.module is not None and spec.module not in data["modules"]:
                builtin.setdefault(spec.module, {})[cname] = spec
    for name, commands in builtin.items():
        out.append(Module(name, None, commands, source="built into the server"))
    return tuple(out)


def module_providing(name: bytes) -> tuple[Module, Spec | None] | None:
    """The known module that provides the command ``name`` (upper case), with its spec
    (None when only a prefix matched), or None."""
    for module in modules():
        found = module.provides(name)
        if found is not None:
            return module, (found if isinstance(found, Spec) else None)
    return None


def find_module(given: str) -> Module | None:
    """The known module a ``--module`` value names: its name (any case), or a path whose
    file name is a known module library."""
    wanted = given.lower()
    file_name = Path(given).name
    for module in modules():
        if module.name.lower() == wanted or (module.library and module.library == file_name):
            return module
    return None


@functools.cache
def container_names() -> frozenset[bytes]:
    """Upper-case names that some table gives subcommands (their second argument matters)."""
    return frozenset(n for t in tables() for n, s in t.commands.items() if s.subcommands)


def newest(server: str = "redis") -> Table:
    """The newest table of ``server``."""
    return [t for t in tables() if t.server == server][-1]


def table_for(server: str, version: tuple[int, ...]) -> tuple[Table, str]:
    """The table to judge a file written by ``server`` ``version`` by, and why it is that one.

    Same major.minor: that table. Else the nearest older table of the same server; Valkey
    8.0+ continues Redis 7.2 (it forked from 7.2.4), so a Valkey older than every Valkey table
    falls back to the Redis tables. Older than every table: the oldest Redis table.
    """
    wanted = tuple(version[:2])
    name = f"{'Valkey' if server == 'valkey' else 'Redis'} {'.'.join(map(str, version))}"
    lineage: Iterable[Table] = [t for t in tables() if t.server == server]
    if server == "valkey" and wanted < (8, 0):
        lineage = []  # Valkey 7.2 is Redis 7.2
    candidates = [t for t in lineage if t.version[:2] <= wanted]
    if not candidates:
        capped = min(wanted, (7, 2)) if server == "valkey" else wanted
        candidates = [t for t in tables() if t.server == "redis" and t.version[:2] <= capped]
    if not candidates:
        oldest = tables()[0]
        return oldest, f"written by {name}, older than every table: the oldest ({oldest.label})"
    table = candidates[-1]
    if table.version[:2] == wanted and table.server == server:
        return table, f"written by {name}"
    return table, f"written by {name}, which no table matches: the nearest older ({table.label})"
