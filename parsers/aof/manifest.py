"""The Redis 7 multi-part AOF manifest (``appendonly.aof.manifest``).

One line per file, written by ``aofInfoFormat`` in aof.c::

    file appendonly.aof.1.base.rdb seq 1 type b
    file appendonly.aof.1.incr.aof seq 1 type i

``parse_manifest`` checks it the way ``aofLoadManifestFromFile`` does (the server and
redis-check-aof share that function), and refuses any file name that is not a bare name in
the manifest's own directory. Things Redis accepts without a word but that look wrong are
collected as warnings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.errors import CorruptError, format_key
from parsers.sds import split_args

# aofLoadManifestFromFile reads lines with fgets() into MANIFEST_MAX_LINE + 1 bytes.
MANIFEST_MAX_LINE = 1024
TYPES = {"b": "base", "h": "history", "i": "incr"}
KEYS = (b"file", b"seq", b"type")
# Keys newer Redis writes (Redis 8: the replication offsets an incr file covers, from its first
# command to its end). The loader does not need them: rbkit reads them, checks that they are
# numbers, that a file ends at or after it starts and that each incr file starts where the one
# before it ended (warnings: a gap or an overlap means the files were not written one after
# the other by one server), and reports them.
KNOWN_EXTRA_KEYS = (b"startoffset", b"endoffset")

_DRIVE = re.compile(rb"[A-Za-z]:")
_PLAIN_NUMBER = re.compile(rb"-?[0-9]+")
_ATOLL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_LLONG_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file line: ``type`` is 'b' (base), 'h' (history) or 'i' (incr)."""

    name: str  # decoded with surrogateescape: os.fsencode(name) gives back the bytes
    seq: int
    type: str
    line: int
    offset: int
    start_offset: int | None = None  # the replication offset the file starts at (Redis 8)
    end_offset: int | None = None  # and the one it ends at


@dataclass(frozen=True, slots=True)
class Manifest:
    """The entries in file order, and warnings ("line N: ...") about what Redis lets pass."""

    entries: tuple[ManifestEntry, ...]
    warnings: tuple[str, ...] = ()

    @property
    def base(self) -> ManifestEntry | None:
        """The base file (an RDB or an AOF), if there is one."""
        return next((e for e in self.entries if e.type == "b"), None)

    @property
    def incrs(self) -> tuple[ManifestEntry, ...]:
        """The incr files, in the order Redis replays them."""
        return tuple(e for e in self.entries if e.type == "i")

    @property
    def history(self) -> tuple[ManifestEntry, ...]:
        """Files a rewrite made obsolete, which Redis deletes and never loads."""
        return tuple(e for e in self.entries if e.type == "h")


def parse_manifest(text: bytes) -> Manifest:
    """Parse and check a manifest; raises CorruptError (code ``bad_manifest``) at a bad line."""
    if not text:
        raise _bad(1, 0, "the manifest is empty", "Found an empty AOF manifest")
    entries: list[ManifestEntry] = []
    warnings: list[str] = []
    seen: dict[bytes, int] = {}
    base_line = 0
    max_seq = 0
    n = len(text)
    pos = 0
    lineno = 1
    continued = False  # this piece is the rest of an over-long comment line
    while pos < n:
        nl = text.find(b"\n", pos, pos + MANIFEST_MAX_LINE)
        end = nl + 1 if nl >= 0 else min(n, pos + MANIFEST_MAX_LINE)
        piece = text[pos:end]
        line, offset = lineno, pos
        note = (
            f" (this is the rest of a comment longer than {MANIFEST_MAX_LINE} bytes, which "
            "Redis reads as a line of its own)"
            if continued
            else ""
        )
        pos = end
        if nl >= 0:
            lineno += 1
        if continued:
            warnings.append(
                f"line {line}: a comment longer than {MANIFEST_MAX_LINE} bytes: Redis reads "
                f"the rest of it, from byte {offset}, as a line of its own"
            )
        if piece.startswith(b"#"):
            continued = nl < 0 and end < n
            continue
        continued = False

        too_long = "The AOF manifest file contains too long line"
        if b"\0" in piece:
            raise _bad(line, offset, f"a NUL byte{note}", too_long)
        if nl < 0:
            if end == n and end - offset < MANIFEST_MAX_LINE:
                raise _bad(line, offset, "the last line has no newline", too_long)
            raise _bad(
                line, offset, f"longer than {MANIFEST_MAX_LINE} bytes with its newline", too_long
            )
        invalid = "Invalid AOF manifest file format"
        stripped = piece.strip(b" \t\r\n")
        if not stripped:
            raise _bad(line, offset, f"a blank line{note}", invalid)
        words = split_args(stripped)
        if words is None:
            raise _bad(
                line,
                offset,
                f"unbalanced quotes, or a closing quote not followed by a space{note}",
                invalid,
            )
        if len(words) < 6 or len(words) % 2:
            raise _bad(
                line,
                offset,
                "expected 'file NAME seq N type T' (key/value pairs), found "
                f"{len(words)} word{'' if len(words) == 1 else 's'}{note}",
                invalid,
            )

        name: bytes | None = None
        seq = 0
        type_byte = b""
        given: set[bytes] = set()
        offsets: dict[bytes, int] = {}
        for key, value in zip(words[::2], words[1::2], strict=True):
            k = key.split(b"\0", 1)[0].lower()  # strcasecmp stops at a NUL
            if k in KNOWN_EXTRA_KEYS:
                offsets[k] = _atoll(value)
                if not _PLAIN_NUMBER.fullmatch(value):
                    warnings.append(f"line {line}: {k.decode()} {format_key(value)} is no number")
                continue
            if k not in KEYS:
                warnings.append(f"line {line}: unknown key {format_key(key)} ignored")
                continue
            if k in given:
                warnings.append(f"line {line}: key {k.decode()} given twice, the last counts")
            given.add(k)
            if k == b"file":
                problem = name_problem(value)
                if problem is not None:
                    redis_says = (
                        "File can't be a path, just a filename"
                        if b"/" in value or b"\\" in value
                        else None
                    )
                    raise _bad(line, offset, problem, redis_says)
                name = value
            elif k == b"seq":
                seq = _atoll(value)
                if not _PLAIN_NUMBER.fullmatch(value):
                    warnings.append(f"line {line}: seq {format_key(value)} read as {seq}")
                elif seq < 0:
                    warnings.append(f"line {line}: seq {seq} is negative")
            else:
                type_byte = value[:1].split(b"\0", 1)[0]
                if len(value) > 1:
                    warnings.append(
                        f"line {line}: type {format_key(value)} read as {format_key(type_byte)}"
                    )

        missing = []
        if name is None:
            missing.append("file")
        if seq == 0:
            missing.append("a non-zero seq" if b"seq" in given else "seq")
        if not type_byte:
            missing.append("type")
        if name is None or missing:
            raise _bad(line, offset, f"missing {' and '.join(missing)}{note}", invalid)
        kind = type_byte.decode("latin-1")
        if kind == "b":
            if base_line:
                raise _bad(
                    line,
                    offset,
                    f"a second base file (the first is on line {base_line})",
                    "Found duplicate base file information",
                )
            base_line = line
        elif kind == "i":
            if seq <= max_seq:
                raise _bad(
                    line,
                    offset,
                    f"incr seq {seq} is not above {max_seq}, the seq of the incr before it"
                    if max_seq
                    else f"incr seq {seq} is not positive",
                    "Found a non-monotonic sequence number",
                )
            max_seq = seq
        elif kind != "h":
            raise _bad(
                line,
                offset,
                f"unknown file type {format_key(type_byte)} (expected one of {', '.join(TYPES)})",
                "Unknown AOF file type",
            )
        if name in seen:
            warnings.append(
                f"line {line}: file {format_key(name)} is also listed on line {seen[name]}"
            )
        seen.setdefault(name, line)
        start, end = offsets.get(b"startoffset"), offsets.get(b"endoffset")
        if start is not None and end is not None and end < start:
            warnings.append(f"line {line}: endoffset {end} is below startoffset {start}")
        previous = next((e for e in reversed(entries) if e.type == "i"), None)
        before = previous.end_offset if kind == "i" and previous is not None else None
        if before is not None and start is not None and start != before:
            gap = "a gap" if start > before else "an overlap"
            warnings.append(
                f"line {line}: startoffset {start} is not the endoffset {before} of the incr "
                f"file before it ({gap} in the replication offsets)"
            )
        entries.append(
            ManifestEntry(
                name.decode("utf-8", "surrogateescape"), seq, kind, line, offset, start, end
            )
        )
    if not entries:
        warnings.append("the manifest lists no files: Redis starts with an empty dataset")
    return Manifest(tuple(entries), tuple(warnings))


def name_problem(name: bytes) -> str | None:
    """Why ``name`` may not be opened inside the manifest's directory, or None if it may."""
    shown = format_key(name)
    if b"/" in name or b"\\" in name:
        return f"file name {shown} is a path, not a bare file name"
    if b"\0" in name:
        return f"file name {shown} holds a NUL byte (Redis would open the part before it)"
    if not name:
        return "the file name is empty"
    if name.startswith(b".."):
        return f"file name {shown} starts with '..'"
    if name == b".":
        return "file name '.' is the directory itself"
    if _DRIVE.match(name):
        return f"file name {shown} starts with a drive letter"
    return None


def _atoll(value: bytes) -> int:
    """C atoll(): leading blanks, a sign, digits up to the first other byte; saturates."""
    m = _ATOLL.match(value)
    if m is None:
        return 0
    digits = m.group(2).lstrip(b"0")
    if len(digits) > 19:  # far beyond the range: no need to convert it
        return -_LLONG_MAX - 1 if m.group(1) == b"-" else _LLONG_MAX
    number = int(digits or b"0") * (-1 if m.group(1) == b"-" else 1)
    return max(-_LLONG_MAX - 1, min(_LLONG_MAX, number))


def _bad(line: int, offset: int, what: str, redis_says: str | None) -> CorruptError:
    """The error for a bad line, quoting what Redis logs for it (None: Redis lets it pass)."""
    said = (
        f"Redis: {redis_says!r}"
        if redis_says
        else "Redis accepts this, but rbkit opens no file outside the manifest's directory"
    )
    return CorruptError(f"line {line}: {what} ({said})", offset, code="bad_manifest")
