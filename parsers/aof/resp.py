"""The AOF command stream: RESP arrays of bulk strings, and '#' annotation lines between them.

``read_commands(buf)`` yields one :class:`Command` or :class:`Annotation` per item, each with
its byte range. The grammar is Redis's (``loadSingleAppendOnlyFile`` in aof.c, checked the way
``processRESP`` in redis-check-aof.c checks it)::

    command    = "*" count CRLF 1*( "$" length CRLF data CRLF )   ; count >= 1 arguments
    annotation = "#" line, up to and including LF, at most 1023 bytes (an fgets line)

MULTI/EXEC, SELECT and the RDB preamble are the caller's business: this reads commands only.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

from parsers.errors import CorruptError, TruncatedError, format_key

CRLF = b"\r\n"
# A count or length of more digits than this is corrupt (10**19 > 2**63); Redis reads them
# with strtol, which saturates.
MAX_DIGITS = 19
# The loader reads the argument count with atoi() into an int.
MAX_ARGC = 2**31 - 1
# redis-check-aof: a bulk length above LONG_MAX - 2 "is not in the suitable range".
MAX_BULK = 2**63 - 3
# Redis reads annotations with fgets() into AOF_ANNOTATION_LINE_MAX_LEN (1024) bytes: a longer
# line is read in pieces of 1023 bytes, and the next piece is taken as the next item.
ANNOTATION_MAX = 1023

_STAR, _DOLLAR, _HASH, _CR, _LF = 0x2A, 0x24, 0x23, 0x0D, 0x0A
_WINDOW = MAX_DIGITS + 3  # '*' or '$', the digits and CRLF: where find() looks
# Commands the accelerator returns per call.
_SCAN_LIMIT = 4096

try:  # the optional C accelerator of read_commands (setup.py builds it where a compiler is at hand)
    from parsers.aof import _speedups
except ImportError:  # pragma: no cover - depends on the build
    _speedups = None
# Tests set this to False to read in pure Python and compare.
USE_SPEEDUPS = True


# Both give an int on index and bytes on slice, and have find(sub, start, end).
Buffer = bytes | mmap.mmap


@dataclass(frozen=True, slots=True)
class Command:
    """One command: its arguments, where it starts and where the next item starts."""

    args: tuple[bytes, ...]
    offset: int
    end: int

    @property
    def name(self) -> bytes:
        """The first argument, as written (Redis compares command names case-insensitively)."""
        return self.args[0]


@dataclass(frozen=True, slots=True)
class Annotation:
    """A '#' line between commands, without its line ending (``b"#TS:1700000000"``)."""

    text: bytes
    offset: int
    end: int

    @property
    def timestamp(self) -> int | None:
        """The Unix time of a ``#TS:`` line (aof-timestamp-enabled), else None."""
        if not self.text.startswith(b"#TS:"):
            return None
        digits = self.text[4:]
        unsigned = digits[1:] if digits.startswith(b"-") else digits
        if not unsigned.isdigit() or len(unsigned) > MAX_DIGITS:
            return None
        return int(digits)


class TruncatedCommand(TruncatedError):
    """The input ends inside a command or an annotation line.

    ``start`` is where that item began, ``name`` the command name if it was read,
    ``missing_hint`` the number of bytes from ``start`` to the end of the input (what
    ``aof-load-truncated yes`` would cut off), ``annotation`` whether the item was a '#' line
    (Redis itself skips a cut annotation at the end without complaint). ``offset`` is the end
    of the input.
    """

    def __init__(
        self,
        what: str,
        offset: int,
        *,
        start: int,
        name: bytes | None = None,
        missing_hint: int = 0,
        annotation: bool = False,
    ) -> None:
        super().__init__(what, offset, code="truncated")
        self.start = start
        self.name = name
        self.missing_hint = missing_hint
        self.annotation = annotation


def read_commands(
    buf: Buffer, start: int = 0, batch: int = _SCAN_LIMIT
) -> Iterator[Command | Annotation]:
    """Yield the commands and annotations from ``start`` to the end of ``buf``.

    ``batch``: how many commands the accelerator parses ahead at a time (a caller that reads
    only a few items sets it low).

    Raises :class:`TruncatedCommand` if the input ends inside an item, and
    :class:`CorruptError` (code ``bad_frame``) at the first byte that breaks the grammar.
    """
    if start < 0:
        raise ValueError(f"start must be >= 0, not {start}")
    n = len(buf)
    find = buf.find
    crlf, window, dollar = CRLF, _WINDOW, _DOLLAR  # locals: this loop is the hot path
    # The accelerator parses runs of well-formed commands and stops before anything else,
    # which the Python code below then reads (and words the error of) as it always did.
    scan = _speedups.scan_commands if _speedups is not None and USE_SPEEDUPS else None
    pos = start
    after_long_annotation = False
    while pos < n:
        first = buf[pos]
        if first == _STAR:
            if scan is not None:
                items, new_pos = scan(buf, pos, batch)
                if items:
                    for args_, offset, end_ in items:
                        yield Command(args_, offset, end_)
                    pos = new_pos
                    after_long_annotation = False
                    continue
            e = find(crlf, pos + 1, pos + window)
            digits = buf[pos + 1 : e] if e > pos else b""
            if digits.isdigit():
                argc = int(digits)
                p = e + 2
            else:
                argc, p = _number(buf, pos, n, "the argument count")
                if p < 0:
                    raise _cut(pos, n, None, "the argument count and \\r\\n after '*'")
            if argc < 1:
                raise _bad(pos + 1, "argument count 0: a command has at least one argument")
            if argc > MAX_ARGC:
                raise _bad(pos + 1, f"argument count {argc} is out of range")
            args: list[bytes] = []
            for i in range(argc):
                if p >= n:
                    raise _cut(pos, n, args, f"'$' and the length of {_nth(i, argc)}")
                if buf[p] != dollar:
                    raise _bad(p, f"expected '$' before {_nth(i, argc)}, found {_hex(buf[p])}")
                e = find(crlf, p + 1, p + window)
                digits = buf[p + 1 : e] if e > p else b""
                if digits.isdigit():
                    length = int(digits)
                    q = e + 2
                else:
                    length, q = _number(buf, p, n, f"the length of {_nth(i, argc)}")
                    if q < 0:
                        raise _cut(pos, n, args, f"the length of {_nth(i, argc)} and \\r\\n")
                r = q + length
                if r + 2 > n:
                    _end_inside_argument(buf, pos, n, args, i, argc, p, q, length)
                if buf[r : r + 2] != crlf:
                    raise _bad_crlf(buf, r, f"the {length} bytes of {_nth(i, argc)}")
                args.append(buf[q:r])
                p = r + 2
            yield Command(tuple(args), pos, p)
            pos = p
            after_long_annotation = False
        elif first == _HASH:
            e = find(b"\n", pos + 1, pos + ANNOTATION_MAX)
            if e >= 0:
                end = e + 1
                text = buf[pos:e]
                if text.endswith(b"\r"):
                    text = text[:-1]
            elif n - pos >= ANNOTATION_MAX:
                end = pos + ANNOTATION_MAX
                text = buf[pos:end]
            else:
                raise TruncatedCommand(
                    f"input ends {n - pos} bytes into an annotation line: expected the rest "
                    "of the line and \\n",
                    n,
                    start=pos,
                    missing_hint=n - pos,
                    annotation=True,
                )
            yield Annotation(text, pos, end)
            after_long_annotation = e < 0
            pos = end
        else:
            note = (
                f" (an annotation line longer than {ANNOTATION_MAX} bytes ends here: Redis "
                "reads the rest as the next item)"
                if after_long_annotation
                else ""
            )
            raise _bad(pos, f"expected '*' at the start of a command, found {_hex(first)}{note}")


def _number(buf: Buffer, at: int, n: int, what: str) -> tuple[int, int]:
    """Diagnose the count or length after the prefix at ``at`` (the slow path).

    Returns ``(value, next offset)``, ``(0, -1)`` if the input ends inside it, or raises.
    """
    d = i = at + 1
    limit = min(n, d + MAX_DIGITS)
    while i < limit and 0x30 <= buf[i] <= 0x39:
        i += 1
    if i == n:
        return 0, -1
    byte = buf[i]
    if 0x30 <= byte <= 0x39:
        raise _bad(d, f"{what} has more than {MAX_DIGITS} digits")
    prefix = chr(buf[at])
    if i == d:
        raise _bad(i, f"expected a digit after '{prefix}' ({what}), found {_hex(byte)}")
    value = int(buf[d:i])
    if byte != _CR:
        raise _bad(i, f"expected \\r\\n after '{prefix}{value}' ({what}), found {_hex(byte)}")
    if i + 1 == n:
        return 0, -1
    if buf[i + 1] != _LF:  # unreachable when the fast path saw "\r\n" here
        raise _bad(i + 1, f"expected \\n after '{prefix}{value}\\r', found {_hex(buf[i + 1])}")
    return value, i + 2  # pragma: no cover - the fast path takes well-formed numbers


def _end_inside_argument(
    buf: Buffer,
    start: int,
    n: int,
    args: list[bytes],
    i: int,
    argc: int,
    p: int,
    q: int,
    length: int,
) -> NoReturn:
    """The argument whose data starts at ``q`` runs past the end: corrupt or cut off?"""
    nth = _nth(i, argc)
    if length > MAX_BULK:
        raise _bad(p + 1, f"length {length} of {nth} is out of range")
    r = q + length
    if r > n:
        raise _cut(start, n, args, f"{r - n} more bytes of {nth} ({length} bytes), then \\r\\n")
    if not CRLF.startswith(buf[r:n]):
        raise _bad_crlf(buf, r, f"the {length} bytes of {nth}")
    if i == 0:
        args.append(buf[q:r])
    raise _cut(start, n, args, f"\\r\\n after {nth}")


def _bad_crlf(buf: Buffer, at: int, after: str) -> CorruptError:
    """The CRLF expected at ``at`` is not there: point at the first wrong byte."""
    if buf[at] == _CR:
        return _bad(at + 1, f"expected \\n after \\r after {after}, found {_hex(buf[at + 1])}")
    return _bad(at, f"expected \\r\\n after {after}, found {_hex(buf[at])}")


def _bad(offset: int, what: str) -> CorruptError:
    return CorruptError(what, offset, code="bad_frame")


def _cut(start: int, n: int, args: list[bytes] | None, expected: str) -> TruncatedCommand:
    name = args[0] if args else None
    which = f"a {format_key(name)} command" if name is not None else "a command"
    return TruncatedCommand(
        f"input ends {n - start} bytes into {which}: expected {expected}",
        n,
        start=start,
        name=name,
        missing_hint=n - start,
    )


def _nth(i: int, argc: int) -> str:
    return f"argument {i + 1} of {argc}"


def _hex(byte: int) -> str:
    return f"0x{byte:02x}"
