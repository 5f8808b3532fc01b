"""Compressed backups: which compression a stream uses (by its magic bytes, never its name),
and each one decompressed in bounded pieces by the well-kept bindings (stdlib zlib, bz2 and
lzma; ``zstandard``; ``lz4``)."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

# Output of one decompression call, at most: memory stays bounded whatever the ratio.
PIECE = 8 << 20
# zstd's decompressobj has no output bound: it is fed small inputs instead. A zstd block
# makes at most 128 KiB and takes at least 4 bytes (a ratio of 32768 at most), so 256 bytes
# in are at most 8 MiB out (and one block the decompressor may still hold).
ZSTD_INPUT = 256

GZIP, ZSTD, LZ4, BZIP2, XZ = "gzip", "zstd", "lz4", "bzip2", "xz"
MAGICS: dict[str, bytes] = {
    GZIP: b"\x1f\x8b",
    ZSTD: b"\x28\xb5\x2f\xfd",
    LZ4: b"\x04\x22\x4d\x18",
    BZIP2: b"BZh",
    XZ: b"\xfd7zXZ\x00",
}
# Name endings the decompressed copy drops (it keeps ``.aof``/``.rdb``, which locate reads).
SUFFIXES = (".gz", ".gzip", ".zst", ".zstd", ".lz4", ".bz2", ".xz")
HEAD = 6  # bytes needed to tell them apart


def detect(head: bytes) -> str | None:
    """The compression whose magic ``head`` starts with, or None (not compressed)."""
    for name, magic in MAGICS.items():
        if head.startswith(magic):
            return name
    return None


class StreamError(Exception):
    """Compressed data a decompressor refuses (the library's own words)."""


@dataclass
class Decoder:
    """One compressed stream decompressed piece by piece, across concatenated members."""

    name: str
    _d: Any = None

    def __post_init__(self) -> None:
        self._d = _new(self.name)
        self.consumed = 0  # compressed bytes of finished members

    @property
    def finished(self) -> bool:
        """The last member reached its end-of-stream marker (and nothing follows it)."""
        return bool(self._d.eof)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decompressed pieces of ``data``; raises StreamError for corrupt input."""
        while data:
            try:
                data = yield from _pieces(self.name, self._d, data)
            except Exception as e:  # zlib.error, OSError, EOFError, LZMAError, ZstdError...
                raise StreamError(str(e) or type(e).__name__) from None
            if data:  # another member follows (pigz, concatenated files)
                if not data.startswith(MAGICS[self.name][:2]):
                    raise StreamError(f"{len(data)} bytes after the end of the {self.name} data")
                self._d = _new(self.name)


def _new(name: str) -> Any:
    if name == GZIP:
        return zlib.decompressobj(wbits=31)
    if name == BZIP2:
        return bz2.BZ2Decompressor()
    if name == XZ:
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    if name == ZSTD:
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj(write_size=1 << 20)
    if name == LZ4:
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor()
    raise ValueError(name)


def _pieces(name: str, d: Any, data: bytes) -> Generator[bytes, None, bytes]:
    """Everything ``d`` makes of ``data``, in pieces of at most PIECE bytes (zstd: see
    ZSTD_INPUT); returns the bytes after the end of its member (b"" when none)."""
    if name == GZIP:
        yield d.decompress(data, PIECE)
        while d.unconsumed_tail and not d.eof:
            yield d.decompress(d.unconsumed_tail, PIECE)
    elif name == ZSTD:
        view = memoryview(data)
        for at in range(0, len(data), ZSTD_INPUT):
            yield d.decompress(view[at : at + ZSTD_INPUT])
            if d.eof:
                return bytes(d.unused_data or b"") + data[at + ZSTD_INPUT :]
        return b""
    else:  # bz2, lzma, lz4: max_length, then needs_input
        yield d.decompress(data, max_length=PIECE)
        while not d.eof and not d.needs_input:
            yield d.decompress(b"", max_length=PIECE)
    return bytes(d.unused_data or b"") if d.eof else b""


def known_size(name: str | None, head: bytes, tail: bytes) -> int | None:
    """The decompressed size when the stream says it (at least this much), else None.
    ``head``: the first bytes (zstd and lz4 frame headers); ``tail``: the last 4 (gzip's
    ISIZE, the size modulo 2**32 of the last member: a lower bound)."""
    try:
        if name == ZSTD:
            import zstandard

            size = zstandard.frame_content_size(head)
            return size if size >= 0 else None
        if name == LZ4:
            import lz4.frame

            size = lz4.frame.get_frame_info(head).get("content_size") or 0
            return size or None
        if name == GZIP and len(tail) == 4:
            return int.from_bytes(tail, "little") or None
    except Exception:  # a header too damaged to say: the decompression will tell
        return None
    return None
