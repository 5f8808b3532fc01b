"""Open a backup wherever it is and hand back a local path the mapped-file parser can read.

A plain local file (or directory, manifest, data dir) is used where it lies. Anything else is
streamed, in bounded memory, into a temporary file: a compressed file (gzip, zstd, lz4,
bzip2, xz, told by its magic bytes) is decompressed; stdin (``-``), a named pipe or bash's
``<(command)``, and object storage or HTTP
(``s3://``, ``gs://``, ``az://``, ``http(s)://``) are copied, and decompressed on the way when
they are compressed. The temporary file lives in a directory ``rbkit-src-*`` under ``--tmpdir``
(default: $TMPDIR, else /tmp), removed when the ``with`` block ends, on an error or Ctrl-C
too, and by rbkit's lifeline watcher if rbkit is killed.

A compressed stream that is cut short or corrupt is no I/O error: what decompressed before the
damage is checked, and the damage is recorded (:class:`Damage`) for the check to report as an
error, with its offset in the decompressed stream and its place in the compressed one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from toolkit import lifeline
from toolkit.errors import BackupIOError, UsageError
from toolkit.sources import codecs, remote
from toolkit.text import size as human_size

READ = 1 << 20  # compressed bytes read at a time
RDB_MAGICS = (b"REDIS", b"VALKEY")
STDIN = "-"


@dataclass(frozen=True)
class Damage:
    """Where a compressed stream broke: ``offset`` is in the decompressed stream."""

    code: str  # truncated or corrupt
    offset: int
    message: str


@dataclass
class Opened:
    """A backup made local. ``path`` is what to read; ``shown`` what to call it."""

    path: Path
    shown: str
    compression: str | None = None
    stored_size: int | None = None  # bytes as stored (compressed), when known
    temporary: bool = False  # ``path`` is a copy in a temporary directory, removed after
    damage: Damage | None = None

    def note(self) -> str | None:
        """One line for the report: what was read and where its copy went (None: as is)."""
        if not self.temporary:
            return None
        copied = human_size(self.path.stat().st_size if self.path.exists() else 0)
        where = f"in a temporary file in {self.path.parent.parent}"
        after = "(removed when rbkit ends; --tmpdir to choose)"
        if self.compression:
            stored = f" ({human_size(self.stored_size)})" if self.stored_size is not None else ""
            what = f"{self.compression}-compressed{stored}"
            return f"{what}: decompressed to {copied} {where} {after}"
        return f"copied ({copied}) {where} {after}"


_open: dict[str, Opened] = {}


def opened_for(path: Path) -> Opened | None:
    """The backup ``path`` was made from by an :func:`open_backup` still open, if any."""
    return _open.get(os.fspath(path.absolute()))


@contextlib.contextmanager
def open_backup(spec: str, tmpdir: Path | None = None) -> Iterator[Opened]:
    """``spec`` (a path, ``-``, or a URL) as a local :class:`Opened`, for the ``with`` block.
    Raises BackupIOError when it cannot be read, or when ``tmpdir`` lacks room for a
    decompressed size the stream states."""
    if spec == STDIN:
        if sys.stdin is None or sys.stdin.isatty():
            raise BackupIOError("-: stdin is a terminal; pipe a backup in (cat dump.rdb.gz | ...)")
        with _materialized(sys.stdin.buffer, STDIN, "stdin", None, None, tmpdir) as o:
            yield o
        return
    if remote.is_remote(spec):
        f, size = remote.open_remote(spec)
        with (
            contextlib.closing(f),
            _materialized(
                f, remote.shown(spec), remote.name_of(spec), size, None, tmpdir, url=spec
            ) as o,
        ):
            yield o
        return
    path = Path(spec)
    if path.exists() and not path.is_file() and not path.is_dir():
        # a named pipe, or bash's <(command) (/dev/fd/N): read as stdin is
        try:
            pipe = open(path, "rb")  # noqa: SIM115 (closed by the with below)
        except OSError as e:
            raise BackupIOError(f"{spec}: {e.strerror or e}") from None
        with pipe, _materialized(pipe, spec, path.name, None, None, tmpdir) as o:
            yield o
        return
    if not path.is_file():  # a directory, or nothing: locate says what it is
        yield Opened(path, spec)
        return
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below, around the caller's block)
    except OSError as e:
        raise BackupIOError(f"{spec}: {e.strerror or e}") from None
    with f:
        try:
            head = f.read(codecs.HEAD)
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - 4))
            tail = f.read(4)
            f.seek(0)
        except OSError as e:
            raise BackupIOError(f"{spec}: {e.strerror or e}") from None
        if codecs.detect(head) is not None:
            # (errors of the caller's block are its own: only reading ``f`` is wrapped)
            with _materialized(f, spec, path.name, size, tail, tmpdir) as o:
                yield o
            return
    yield Opened(path, spec)


@contextlib.contextmanager
def _materialized(
    f: IO[bytes],
    shown: str,
    name: str,
    size: int | None,
    tail: bytes | None,
    tmpdir: Path | None,
    url: str | None = None,
) -> Iterator[Opened]:
    """Stream ``f`` into a temporary file (decompressing it if it is compressed)."""
    base = tmpdir if tmpdir is not None else Path(tempfile.gettempdir())
    if not base.is_dir():
        raise BackupIOError(f"{base}: the temporary directory does not exist (--tmpdir)")
    first = _read(f, shown, url, least=codecs.HEAD)
    codec = codecs.detect(first)
    need = codecs.known_size(codec, first, tail or b"") if codec else size
    free = shutil.disk_usage(base).free
    if need is not None and need > free:
        raise BackupIOError(
            f"{shown}: the decompressed backup needs {need} bytes and {base} has {free} free; "
            "choose another temporary directory with --tmpdir DIR"
        )
    folder = lifeline.scratch_dir("rbkit-src-", base)
    try:
        target = folder / _local_name(name, codec)
        opened = Opened(target, shown, codec, size, temporary=True)
        try:
            with open(target, "wb") as out:
                opened.damage, stored = _copy(f, first, out, codec, shown, url)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise BackupIOError(
                    f"{shown}: {base} ran out of space for the decompressed backup; "
                    "choose another temporary directory with --tmpdir DIR"
                ) from None
            raise BackupIOError(f"{shown}: writing its copy in {base}: {e.strerror}") from None
        if opened.stored_size is None:
            opened.stored_size = stored
        target = opened.path = _named_by_content(target)
        _open[os.fspath(target.absolute())] = opened
        try:
            yield opened
        finally:
            _open.pop(os.fspath(target.absolute()), None)
    finally:
        lifeline.remove_dir(folder)


def _read(f: IO[bytes], shown: str, url: str | None, least: int = 1) -> bytes:
    """The next bytes of ``f`` (b"": its end): at least ``least`` unless it ends first, and
    what a pipe has at hand rather than waiting for a full READ."""
    read = getattr(f, "read1", f.read)
    try:
        data = read(READ) or b""
        while data and len(data) < least:
            more = read(READ)
            if not more:
                break
            data += more
        return data
    except Exception as e:
        raise BackupIOError(f"{shown}: {remote.clean(e, url) if url else e}") from None


def _copy(
    f: IO[bytes], first: bytes, out: IO[bytes], codec: str | None, shown: str, url: str | None
) -> tuple[Damage | None, int]:
    """Write ``first`` and the rest of ``f`` to ``out``, decompressed with ``codec``; the
    damage found in the compressed stream (or None) and the bytes read."""
    decoder = codecs.Decoder(codec) if codec else None
    read = written = 0
    chunk = first
    while chunk:
        if decoder is None:
            out.write(chunk)
        else:
            try:
                for piece in decoder.feed(chunk):
                    out.write(piece)
                    written += len(piece)
            except codecs.StreamError as e:
                return Damage(
                    "corrupt",
                    written,
                    f"corrupt {codec} data in compressed bytes {read}-{read + len(chunk)} "
                    f"({e}) after {written} decompressed bytes",
                ), read + len(chunk)
        read += len(chunk)
        chunk = _read(f, shown, url)
    if decoder is not None and not decoder.finished:
        return Damage(
            "truncated",
            written,
            f"the {codec} stream ends at compressed byte {read} before its end marker "
            f"(the compressed file is cut short) after {written} decompressed bytes",
        ), read
    return None, read


def _local_name(name: str, codec: str | None) -> str:
    """The copy's file name: ``name`` without its compression suffix (locate reads what is
    left: ``.aof`` says AOF)."""
    name = name.replace("/", "_") or "backup"
    if codec:
        for suffix in codecs.SUFFIXES:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)]
    return name


def _named_by_content(path: Path) -> Path:
    """A copy whose name says nothing (stdin, ``backup.gz``): an RDB that ends in a command
    line rather than a checksum is an AOF with an RDB preamble, and gets ``.aof`` so that
    locate reads it as one."""
    if ".aof" in path.name or ".rdb" in path.name:
        return path
    with open(path, "rb") as f:
        head = f.read(9)
        f.seek(max(0, path.stat().st_size - 2))
        end = f.read(2)
    if head.startswith(RDB_MAGICS) and end == b"\r\n":
        renamed = path.with_name(path.name + ".aof")
        path.rename(renamed)
        return renamed
    return path


def for_workers(specs: Sequence[str]) -> list[str]:
    """``specs`` as other processes (or machines) can open them: local paths made absolute.
    Raises UsageError for what only this process can read: stdin, and a pipe of its shell
    (``<(command)``, /dev/fd/N)."""
    sent = []
    for spec in specs:
        if spec == STDIN:
            raise UsageError("-: stdin can be one backup only, not one of several")
        if spec.startswith(("/dev/fd/", "/proc/self/fd/")):
            raise UsageError(
                f"{spec}: a pipe of this shell (<(...)) can be one backup only; use mkfifo "
                "for several"
            )
        sent.append(spec if remote.is_remote(spec) else os.path.abspath(spec))
    return sent
