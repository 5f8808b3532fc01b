"""rbkit's AOF verdict against real servers: seeded copies of the AOF fixtures, each with one
damaged command (its name, its arguments, or its framing), checked by rbkit and loaded by
redis-server with ``appendonly yes`` (default ``aof-load-truncated yes``).

rbkit must never be more optimistic than a server (VALID where a server refuses the file).
Where it is stricter (INVALID where the server starts), the reason must be one rbkit states on
purpose: a command with arguments past its fixed arity (Redis ignores them) or with fewer than
its arity that happened not to crash the server (it ran on missing arguments); or two bytes
other than CRLF after an argument, which the loader reads without looking at them
(``fread(buf,2,1,fp)`` in aof.c) and redis-check-aof, like rbkit, calls a bad frame.
Run as a script to print the agreement figures:
``.venv/bin/python tests/test_aof_differential.py``.

The Valkey 9.1 fixtures are damaged and loaded the same way, by valkey-server 9.1.2. Where these
tests compare with ``valkey-check-aof`` 9.1.2, note a known upstream bug: it rejects the intact
multi-part AOF with an RDB preamble that its own server writes and loads (valkey-9.1-rdb-base);
the server's load, not that tool, is the judge there.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # run as a script
    sys.path.insert(0, str(TESTS))
    sys.path.insert(0, str(TESTS.parent))

from aof_support import resp, server_load  # noqa: E402
from conftest import binary, falkordb, valkey  # noqa: E402

from parsers.aof.resp import Command, read_commands  # noqa: E402
from toolkit.check.backup import check_backup  # noqa: E402
from toolkit.server.process import valkey_tool  # noqa: E402

AOF = TESTS.parent / "fixtures" / "aof"
SEED = 20261202
PER_KIND = 16  # cases per kind of damage: 48 in all


@dataclass(frozen=True)
class Source:
    """An AOF fixture, the file in it to damage, and the servers that can load it."""

    path: str  # relative to fixtures/aof: a single file or an appendonlydir
    files: tuple[str, ...]  # the files whose commands may be damaged
    servers: tuple[str, ...]
    modules: tuple[str, ...] = ()  # what the servers load (and rbkit is told)


SOURCES = (
    Source("redis-6.2-plain.aof", ("",), ("6.2", "7.0")),
    Source(
        "redis-7.0-aof-base/appendonlydir",
        ("appendonly.aof.3.base.aof", "appendonly.aof.3.incr.aof"),
        ("7.0",),
    ),
    Source(
        "redis-7.0-rdb-base/appendonlydir",
        ("appendonly.aof.2.incr.aof", "appendonly.aof.3.incr.aof"),
        ("7.0",),
    ),
    Source(
        "redis-8.2-rdb-base/appendonlydir",
        ("appendonly.aof.2.incr.aof", "appendonly.aof.3.incr.aof"),
        ("8.2",),
        ("graph",),
    ),
    Source(
        "valkey-9.1-rdb-base/appendonlydir",
        ("appendonly.aof.2.incr.aof", "appendonly.aof.3.incr.aof"),
        ("9.1",),
    ),
    Source(
        "valkey-9.1-aof-base/appendonlydir",
        ("appendonly.aof.3.base.aof", "appendonly.aof.3.incr.aof"),
        ("9.1",),
    ),
)


# -- the damage -------------------------------------------------------------------------------

Mutation = Callable[[random.Random, bytes, Command], tuple[str, bytes]]


def _name(rng: random.Random, data: bytes, cmd: Command) -> tuple[str, bytes]:
    name = bytearray(cmd.args[0])
    how = rng.choice(("letter", "control", "lower", "append"))
    if how == "letter":
        name[rng.randrange(len(name))] = rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    elif how == "control":
        name[0] = rng.randrange(1, 32)
    elif how == "lower":
        name = bytearray(bytes(name).lower())
    else:
        name.append(rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    return f"name:{how}", resp(bytes(name), *cmd.args[1:])


def _arity(rng: random.Random, data: bytes, cmd: Command) -> tuple[str, bytes]:
    how = rng.choice(("drop-last", "extra", "name-only"))
    if how == "drop-last" and len(cmd.args) > 1:
        return how, resp(*cmd.args[:-1])
    if how == "name-only" and len(cmd.args) > 1:
        return how, resp(cmd.args[0])
    return "extra", resp(*cmd.args, b"extra")


def _framing(rng: random.Random, data: bytes, cmd: Command) -> tuple[str, bytes]:
    raw = data[cmd.offset : cmd.end]
    how = rng.choice(("argc+1", "length+1", "crlf", "garbage"))
    if how == "argc+1":
        return how, b"*%d" % (len(cmd.args) + 1) + raw[raw.index(b"\r\n") :]
    if how == "length+1":
        i = rng.randrange(len(cmd.args))
        at = raw.index(b"$%d\r\n" % len(cmd.args[i]), _arg_start(raw, i))
        head = b"$%d\r\n" % len(cmd.args[i])
        return how, raw[:at] + b"$%d\r\n" % (len(cmd.args[i]) + 1) + raw[at + len(head) :]
    if how == "crlf":
        i = rng.randrange(len(cmd.args))
        at = _arg_start(raw, i)
        at = raw.index(b"\r\n", at) + 2 + len(cmd.args[i])
        return how, raw[:at] + rng.choice((b"\n\n", b"\r\x00", b"  ")) + raw[at + 2 :]
    return how, rng.choice((b"X", b"\x00", b"$", b"\r\n")) + raw


def _arg_start(raw: bytes, i: int) -> int:
    """Where the ``$`` of argument ``i`` is in one well-formed command."""
    at = raw.index(b"\r\n") + 2
    for _ in range(i):
        length = int(raw[at + 1 : raw.index(b"\r\n", at)])
        at = raw.index(b"\r\n", at) + 2 + length + 2
    return at


KINDS: dict[str, Mutation] = {"name": _name, "arity": _arity, "framing": _framing}


@dataclass(frozen=True)
class Case:
    ident: str
    source: Source
    file: str
    offset: int
    how: str
    data: bytes  # the damaged file


def make_cases() -> list[Case]:
    rng = random.Random(SEED)
    cases = []
    for kind, mutate in KINDS.items():
        for n in range(PER_KIND):
            source = SOURCES[n % len(SOURCES)]
            name = rng.choice(source.files)
            path = AOF / source.path / name if name else AOF / source.path
            data = path.read_bytes()
            commands = [c for c in read_commands(data) if isinstance(c, Command)]
            cmd = rng.choice(commands)
            how, damaged = mutate(rng, data, cmd)
            cases.append(
                Case(
                    f"{kind}-{n:02d}-{how}",
                    source,
                    name,
                    cmd.offset,
                    how,
                    data[: cmd.offset] + damaged + data[cmd.end :],
                )
            )
    return cases


CASES = make_cases()


# -- one case -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    rbkit_valid: bool
    codes: tuple[str, ...]
    servers: dict[str, bool]  # version -> the server started and loaded the file


def run_case(case: Case) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="rbkit-aofdiff-") as d:
        source = AOF / case.source.path
        if case.file:
            target = Path(d, "appendonlydir")
            shutil.copytree(source, target)
            (target / case.file).write_bytes(case.data)
        else:
            target = Path(d, "appendonly.aof")
            target.write_bytes(case.data)
        result = check_backup(target, modules=case.source.modules)
        codes = tuple(sorted({p.code for p in result.problems if p.severity == "error"}))
        servers = {}
        for version in case.source.servers:
            config = {}
            if case.source.modules:
                config["loadmodule"] = str(falkordb())
            servers[version] = server_load(binary(version), target, **config).loads
    return Outcome(result.valid, codes, servers)


# rbkit may be stricter than the server only for these error codes (see the docstring), and
# bad_frame only where the damage is the CRLF after an argument.
STRICTER_ON_PURPOSE = {"wrong_arity"}
STRICTER_ON_CRLF = {"bad_frame"}


@pytest.mark.parametrize("case", CASES, ids=[c.ident for c in CASES])
def test_rbkit_is_never_more_optimistic_than_the_server(case: Case) -> None:
    outcome = run_case(case)
    for version, loads in outcome.servers.items():
        if outcome.rbkit_valid:
            assert loads, f"rbkit VALID, Redis {version} refuses ({case.how} at {case.offset})"
        elif loads:
            allowed = STRICTER_ON_PURPOSE | (STRICTER_ON_CRLF if case.how == "crlf" else set())
            assert set(outcome.codes) <= allowed, (version, case.how, outcome.codes)


@pytest.mark.parametrize(
    ("fixture", "tool_accepts"),
    [("valkey-9.1-aof-base", True), ("valkey-9.1-rdb-base", False)],
)
def test_valkey_check_aof_on_the_intact_valkey_fixtures(
    fixture: str, tool_accepts: bool, tmp_path: Path
) -> None:
    """valkey-check-aof 9.1.2 (valkey-server under that name) accepts the intact AOF-base
    fixture but rejects the intact RDB-preamble one: the known upstream bug. valkey-server 9.1.2
    loads both, every key, and rbkit calls both valid."""
    valkey()
    target = AOF / fixture / "appendonlydir"
    tool = valkey_tool("valkey-check-aof", tmp_path)
    assert tool is not None
    manifest = target / "appendonly.aof.manifest"
    done = subprocess.run([os.fspath(tool), os.fspath(manifest)], capture_output=True, timeout=60)
    assert (done.returncode == 0) == tool_accepts, done.stdout[-300:]
    if not tool_accepts:
        assert b"is not valid" in done.stdout
    load = server_load(valkey(), target)
    assert load.loads, load.log
    now_ms = time.time() * 1000  # the fixture's 2-second keys are long gone
    rows = [r for rows in load_expected_aof(fixture)["keys"].values() for r in rows]
    assert load.keys == sum(1 for r in rows if r["expire_ms"] is None or r["expire_ms"] > now_ms)
    assert check_backup(target).valid


def load_expected_aof(fixture: str) -> dict[str, Any]:
    """The expected JSON of an AOF fixture."""
    return json.loads((AOF / f"{fixture}.expected.json").read_text(encoding="utf-8"))


def test_the_cases_cover_every_kind_each_once() -> None:
    kinds = Counter(c.ident.split("-")[0] for c in CASES)
    assert kinds == {"name": PER_KIND, "arity": PER_KIND, "framing": PER_KIND}
    assert len({c.data for c in CASES}) == len(CASES)


def summary() -> str:
    """Agreement figures over every case and server (what the script prints)."""
    tally: Counter[str] = Counter()
    lines = []
    for case in CASES:
        outcome = run_case(case)
        for version, loads in outcome.servers.items():
            agree = outcome.rbkit_valid == loads
            kind = case.ident.split("-")[0]
            tally[f"{kind} {'agree' if agree else 'differ'}"] += 1
            tally["agree" if agree else "differ"] += 1
            if not agree:
                lines.append(
                    f"  {case.ident} on {version}: rbkit "
                    f"{'VALID' if outcome.rbkit_valid else 'INVALID ' + ','.join(outcome.codes)}"
                    f", server {'loads' if loads else 'refuses'}"
                )
    total = tally["agree"] + tally["differ"]
    head = [f"{len(CASES)} damaged AOFs, {total} server loads: {tally['agree']} agree"]
    for kind in KINDS:
        head.append(f"  {kind}: {tally[kind + ' agree']} agree, {tally[kind + ' differ']} differ")
    return "\n".join(head + lines)


if __name__ == "__main__":
    print(summary())
