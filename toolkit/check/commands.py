"""The AOF's commands judged as the loading server judges them (see parsers/aof/command_table).

While the files are read, :class:`CommandLedger` records each distinct command shape (name,
subcommand of a container command, argument count) with where it first appears. At the end
:func:`judge` picks the table of the server that wrote the file and turns every shape that
server refuses into an error with the file and the offset:

- ``unknown_command``: no such command or subcommand (Redis: "Unknown command '...' reading
  the append only file", and it does not start);
- ``module_command``: a command only a module provides, and the check was not told that the
  module is loaded (``--module NAME|PATH``); told, its keys make the inventory approximate;
- ``wrong_arity``: fewer arguments than the command's arity (the loader checks none: the
  command reads past its arguments, a crash or a corrupt keyspace), a container command
  without its subcommand (no function to run: a crash), or more than a fixed arity (ignored
  by the server, but no server writes them: the file was altered).

Which table: the writer's version from the ``valkey-ver``/``redis-ver`` aux field of the RDB
preamble or base; without one, the newest Redis table — unless the file uses commands it
lacks that a Valkey (or other) table has, then the newest table that knows them all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from parsers.aof import command_table as ct
from parsers.printable import printable
from toolkit.check.problems import ERROR, Problem

# Errors listed one by one; the rest are counted in one more line.
_LISTED = 10
# The second argument of a container command is kept up to this many bytes (and command
# names are counted by their first this many bytes, as the keyspace model counts them).
SUB_MAX = 64

Shape = tuple[bytes, bytes | None, int]  # upper-case name, upper-case subcommand, argc


@dataclass
class CommandLedger:
    """Each distinct command shape of an AOF: how often, and where first (file, offset).

    A shape is (``args[0].upper()``, ``args[1][:SUB_MAX].upper()`` when the name is a
    container command in some table and there is a second argument, else None, ``len(args)``).
    The AOF check fills ``shapes`` inline, per command, after ``start_file``.
    """

    files: list[str] = field(default_factory=list)
    shapes: dict[Shape, list[int]] = field(default_factory=dict)  # [count, file, offset]
    containers: frozenset[bytes] = field(default_factory=ct.container_names)

    def start_file(self, name: str) -> None:
        self.files.append(name)

    def names(self) -> Counter[str]:
        """Commands per name (upper case, as latin-1 text)."""
        out: Counter[str] = Counter()
        for (name, _sub, _argc), (count, _file, _offset) in self.shapes.items():
            out[name.decode("latin-1")] += count
        return out


@dataclass
class Judgement:
    """What :func:`judge` found: the table used and why, the errors, and which command
    names they concern (so that the keyspace model's notes on them are not repeated)."""

    table: ct.Table
    why: str
    problems: list[Problem] = field(default_factory=list)
    # Names as the keyspace model counts them (latin-1 text): refused outright (unknown, or
    # a module's), with an arity error, and assumed to be a declared module's.
    refused: set[str] = field(default_factory=set)
    arity: set[str] = field(default_factory=set)
    assumed: dict[str, str] = field(default_factory=dict)


def writer_of(aux: dict[str, str]) -> tuple[str, tuple[int, ...]] | None:
    """The server and version that wrote an RDB part, from its aux fields."""
    for field_name, server in (("valkey-ver", "valkey"), ("redis-ver", "redis")):
        text = aux.get(field_name, "")
        parts = text.split(".")
        if len(parts) >= 2 and all(p.isdigit() for p in parts):
            return server, tuple(int(p) for p in parts)
    return None


def choose_table(
    writer: tuple[str, tuple[int, ...]] | None, names: set[bytes]
) -> tuple[ct.Table, str]:
    """The table to judge by, and why (see the module docstring)."""
    if writer is not None:
        return ct.table_for(*writer)
    newest = ct.newest("redis")
    lacking = {n for n in names if n not in newest.commands and ct.module_providing(n) is None}
    if lacking:
        for table in sorted(ct.tables(), key=lambda t: t.version, reverse=True):
            if table is not newest and lacking <= table.commands.keys():
                uses = ", ".join(sorted(printable(n) for n in lacking)[:3])
                return table, (
                    f"no server version in the file; it uses {uses}, which {newest.label} "
                    f"lacks and {table.label} has: that table"
                )
    return newest, "no server version in the file: the newest Redis table"


def judge(
    ledger: CommandLedger,
    writer: tuple[str, tuple[int, ...]] | None,
    declared: list[str],
) -> Judgement:
    """Judge every command shape of ``ledger`` by the writer's table (see the docstring).

    ``declared`` are the ``--module`` values: known module names or library paths, or
    others (a module rbkit has no table of: commands no table knows are assumed its own).
    """
    table, why = choose_table(writer, {name for name, _, _ in ledger.shapes})
    out = Judgement(table, why)
    loaded = {m.name for m in (ct.find_module(d) for d in declared) if m is not None}
    strangers = [d for d in declared if ct.find_module(d) is None]
    # (code, name) -> [count, file, offset, message-maker args]
    found: dict[tuple[str, str], list] = {}
    for (name, sub, argc), (count, file_index, offset) in ledger.shapes.items():
        verdict, spec = table.judge(name, sub, argc)
        if verdict == ct.OK:
            continue
        label = name[:SUB_MAX].decode("latin-1")  # as the keyspace model counts names
        if verdict == ct.UNKNOWN and (sub is None or name not in table.commands):
            provider = ct.module_providing(name)
            if provider is not None and provider[0].name in loaded:
                continue
            if provider is None and strangers:
                out.assumed[label] = strangers[0]
                continue
            out.refused.add(label)
            if provider is not None:
                detail: tuple = ("module_command", name, provider[0])
            else:
                detail = ("unknown_command", name, None)
        elif verdict == ct.UNKNOWN:
            out.refused.add(label)
            detail = ("unknown_command", name + b" " + (sub or b""), None)
        else:
            out.arity.add(name.decode("latin-1"))
            detail = ("wrong_arity", name, (verdict, spec, argc))
        key = detail[:2]
        seen = found.get(key)
        position = (file_index, offset)
        if seen is None:
            found[key] = [count, position, detail]
        else:
            seen[0] += count
            if position < seen[1]:
                seen[1], seen[2] = position, detail
    ordered = sorted(found.values(), key=lambda v: v[1])
    for count, (file_index, offset), detail in ordered[:_LISTED]:
        code, text, extra = detail
        message = _message(table, code, text, extra, count)
        out.problems.append(Problem(ERROR, code, offset, f"{ledger.files[file_index]}: {message}"))
    if len(ordered) > _LISTED:
        rest = ordered[_LISTED:]
        out.problems.append(
            Problem(
                ERROR,
                rest[0][2][0],
                rest[0][1][1],
                f"{ledger.files[rest[0][1][0]]}: and {sum(v[0] for v in rest)} more command(s) "
                f"of {len(rest)} other kinds that {table.label} refuses or runs on missing "
                "arguments",
            )
        )
    return out


def _message(table: ct.Table, code: str, name: bytes, extra: object, count: int) -> str:
    times = f" ({count} times)" if count > 1 else ""
    label = table.label
    if code == "unknown_command":
        first = name.split(b" ")[0]
        return (
            f"unknown command '{printable(name)}'{times}: {label} refuses to start "
            f"(\"Unknown command '{printable(first)}' reading the append only file\")"
        )
    if code == "module_command":
        module: ct.Module = extra  # type: ignore[assignment]
        library = f" ({module.library})" if module.library else ""
        return (
            f"'{printable(name)}'{times} is a command of the module {module.name}{library}: "
            f'{label} without it refuses to start ("Unknown command"); pass --module '
            f"{module.name} if the server that loads this file has it"
        )
    verdict, spec, argc = extra  # type: ignore[misc]
    if verdict == ct.NO_SUBCOMMAND:
        return (
            f"'{printable(name)}' without a subcommand{times}: {label} has no function to run "
            "for it while loading and crashes"
        )
    what = f"'{printable(spec.name.replace('|', ' ').upper())}' with {argc} argument(s){times}"
    if verdict == ct.TOO_FEW:
        return (
            f"{what}, {label} needs {spec.needs}: the loader checks no arity, and runs the "
            "command on arguments that are not there (a crash or a corrupt keyspace)"
        )
    return (
        f"{what}, {label} takes exactly {spec.needs}: the loader ignores the extra ones, "
        "but no server writes them: the command was altered"
    )
