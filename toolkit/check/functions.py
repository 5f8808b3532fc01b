"""Function libraries (FUNCTION2 records, Redis 7+) judged as the server loads them.

Redis loads each library of an RDB in file order (rdbFunctionLoad, then
functionsCreateWithLibraryCtx in functions.c) and refuses the whole file ("Failed loading
library, ...") when one fails: the shebang line must read ``#!<engine> name=<name>`` (split as
sdssplitargs splits it), the name must be letters, digits and underscores and not taken by an
earlier library, the engine must be Lua (in any case); then the code is compiled and run
(function_lua.c) and must register at least one function, none of whose names (compared in any
case) an earlier library registered. The code runs in a child process (toolkit/check/lua_sandbox.py:
real Lua 5.1, the load-time environment, limits on instructions and memory) that is killed
after ``TIMEOUT`` seconds: Redis sets no time limit when it loads a file, so code that does not
finish would hang the server, and is an error here too.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parsers.aof.manifest import split_args as sdssplitargs
from parsers.printable import printable
from parsers.rdb.records import Function
from toolkit.check.lua_sandbox import INSTRUCTIONS, write_request
from toolkit.check.problems import ERROR, WARNING, Problem

TIMEOUT = 30.0  # seconds for the child to run all of a file's libraries
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_CACHE: dict[tuple[bytes, str, str, str | None], dict[str, Any]] = {}
_CACHE_SIZE = 256


class SandboxError(Exception):
    """The child process could not judge the code (it failed to start, or died)."""


@dataclass(frozen=True, slots=True)
class Library:
    """A library's metadata as Redis reads it, or why it cannot (``error``)."""

    name: bytes
    engine: bytes
    code: bytes  # from the shebang's newline on, as the engine gets it
    error: str | None = None


def library_problems(
    functions: Sequence[Function], *, valkey: bool, aux: dict[str, str]
) -> list[Problem]:
    """One error per library the server would fail to load (``bad_function``); a warning when
    the code could not be judged at all. ``valkey``: judged as Valkey loads it (its ``server``
    table beside ``redis``); ``aux``: the file's aux fields (the versions the code may read)."""
    if not functions:
        return []
    libraries = [metadata(payload_of(f)) for f in functions]
    runnable = [lib.code for lib in libraries if lib.error is None]
    version = aux.get("redis-ver") or "7.0.0"
    valkey_version = aux.get("valkey-ver") if valkey else None
    try:
        results = iter(
            run_codes(runnable, valkey=valkey, version=version, valkey_version=valkey_version)
        )
    except SandboxError as e:
        return [
            Problem(
                WARNING,
                "functions_unchecked",
                functions[0].offset,
                f"{len(functions)} function libraries not judged: {e}",
            )
        ]
    out = []
    names: set[bytes] = set()  # of the libraries loaded so far
    registered: set[str] = set()  # their functions' names, lowercase
    for function, lib in zip(functions, libraries, strict=True):
        why = lib.error
        if why is None:
            result = next(results)
            if result is None:
                continue  # after one that did not finish: never run, the server stops before
            if lib.name in names:
                why = f"Library '{printable(lib.name)}' already exists"
            elif not result["ok"]:
                why = printable(str(result["error"]).encode("latin-1"))
            elif not result["functions"]:
                why = "No functions registered"
            else:
                taken = [f for f in result["functions"] if f.lower() in registered]
                if taken:
                    why = f"Function {taken[0]} already exists"
        if why is None:
            names.add(lib.name)
            registered.update(f.lower() for f in result["functions"])
            continue
        label = printable(lib.name) if lib.name else "?"
        out.append(
            Problem(
                ERROR,
                "bad_function",
                function.offset,
                f"function library '{label}': {why}: Redis refuses the file "
                '("Failed loading library")',
            )
        )
    return out


def payload_of(function: Function) -> bytes:
    """The payload Redis hands functionsCreateWithLibraryCtx (pre-GA records are rewritten so)."""
    if function.pre_ga:
        return b"#!%s name=%s\n%s" % (function.engine or b"", function.name or b"", function.code)
    return function.code


def metadata(payload: bytes) -> Library:
    """functionExtractLibMetaData, then the name and engine checks of
    functionsCreateWithLibraryCtx."""
    if not payload.startswith(b"#!"):
        return Library(b"", b"", b"", "Missing library metadata")
    end = payload.find(b"\n")
    if end < 0:
        return Library(b"", b"", b"", "Invalid library metadata")
    parts = split_args(payload[:end])
    if not parts:
        return Library(b"", b"", b"", "Invalid library metadata")
    engine, name = parts[0][2:], None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                return Library(
                    b"",
                    engine,
                    b"",
                    "Invalid metadata value, name argument was given multiple times",
                )
            name = part[5:]
            continue
        return Library(b"", engine, b"", f"Invalid metadata value given: {printable(part)}")
    if name is None:
        return Library(b"", engine, b"", "Library name was not given")
    code = payload[end:]
    if not name or not set(name) <= _NAME_CHARS:
        why = (
            "Library names can only contain letters, numbers, or underscores(_) and must be "
            "at least one character long"
        )
        return Library(name, engine, code, why)
    if engine.lower() != b"lua":
        return Library(name, engine, code, f"Engine '{printable(engine)}' not found")
    return Library(name, engine, code)


def split_args(line: bytes) -> list[bytes] | None:
    """sdssplitargs as Redis splits the shebang line: a C string, so up to its first NUL."""
    return sdssplitargs(line.split(b"\0", 1)[0])


def run_codes(
    codes: Sequence[bytes], *, valkey: bool, version: str, valkey_version: str | None
) -> list[dict[str, Any] | None]:
    """Each code's result from the child (toolkit/check/lua_sandbox.py), in order, known ones from a
    cache (damaged copies of one file share their libraries). None for the codes after one that
    did not finish in time: they were not run (the server would not get to them either)."""
    server = "valkey" if valkey else "redis"
    keys = [(hashlib.sha256(c).digest(), server, version, valkey_version) for c in codes]
    todo = [c for c, k in zip(codes, keys, strict=True) if k not in _CACHE]
    if todo:
        header = {"server": server, "version": version, "valkey": valkey_version}
        for code, result in zip(todo, _run_child(header, todo), strict=False):
            key = (hashlib.sha256(code).digest(), server, version, valkey_version)
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = result
    return [_CACHE.get(k) for k in keys]


def _run_child(header: dict[str, Any], codes: list[bytes]) -> list[dict[str, Any]]:
    """The results of the codes the child finished; when it was killed, the one it was running
    gets a "did not finish" result and the rest none."""
    command = [sys.executable, "-m", "toolkit.check.lua_sandbox"]
    request = write_request(header, codes)
    try:
        done = subprocess.run(command, input=request, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        results = _results(e.stdout or b"")
        late = f"the code did not finish within {TIMEOUT:g} s"
        return [*results, {"ok": False, "error": late + _HANG}]
    except OSError as e:
        raise SandboxError(f"cannot start {sys.executable}: {e}") from None
    results = _results(done.stdout)
    if len(results) < len(codes):
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise SandboxError(f"the Lua sandbox failed: {printable(last[0])}")
    return results


def _results(out: bytes) -> list[dict[str, Any]]:
    """The whole lines of the child's output (a line cut by a kill is dropped)."""
    results = []
    for line in out.split(b"\n")[:-1]:
        result = json.loads(line)
        if not result["ok"] and str(result["error"]).endswith(_INSTRUCTIONS):
            result["error"] = str(result["error"]) + _HANG
        results.append(result)
    return results


_INSTRUCTIONS = f"did not finish within {INSTRUCTIONS} Lua instructions"
_HANG = " (Redis loads function libraries with no time limit: the server would hang)"
