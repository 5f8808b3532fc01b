"""Valkey's VKCS envelope around a compressed RDB (``rdbcompression lz4``, Valkey 9.2): an
8-byte header, then one LZ4 frame whose content is the RDB.

The layout is valkey ``src/compression_stream.h`` lines 12-29 (commit 21ee8c457c8e): "VKCS",
version 1, codec id (1: LZ4), flags (bit 0: the codec's checksum is on; the other bits must be
0), stream kind (0: an RDB). The checks are those of ``readVkcsEnvelope`` and
``streamReadEnvelopeInfo`` in ``src/compression_stream.c`` (commit 0f432b06438f). With its
flag on, the LZ4 frame's content checksum (xxHash32 of the RDB) is verified here as the frame is
read, and stands for the RDB's own CRC-64.
"""

from __future__ import annotations

from dataclasses import dataclass

from parsers.errors import CorruptError, TruncatedError, UnsupportedError
from parsers.rdb.strings import Buffer

MAGIC = b"VKCS"
ENVELOPE_SIZE = 8
VERSION = 1
CODECS = {1: "lz4"}
FLAG_CODEC_CHECKSUM = 0x01
STREAM_KIND_RDB = 0x00
_LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"  # 0x184D2204, little-endian
_LZ4_CONTENT_CHECKSUM = 0x04  # FLG bit 2


@dataclass(frozen=True)
class Envelope:
    """What the envelope says, and what reading its frame found."""

    codec: str  # "lz4"
    frame_checksum: bool  # the frame carries a content checksum, and it matched
    compressed_size: int  # the LZ4 frame's bytes
    size: int  # the RDB's bytes, decompressed


def is_enveloped(buf: Buffer) -> bool:
    """Whether ``buf`` starts like a VKCS envelope (its first four bytes)."""
    return bytes(buf[:4]) == MAGIC


def unwrap(buf: Buffer) -> tuple[Envelope, bytes]:
    """The envelope and the RDB inside it; a FormatError (at an offset of ``buf``) for an
    envelope Valkey refuses, a damaged frame, or bytes after the frame."""
    head = bytes(buf[:ENVELOPE_SIZE])
    if len(head) < ENVELOPE_SIZE:
        raise TruncatedError(f"input ends after {len(head)} bytes, inside the VKCS envelope", 0)
    if head[4] != VERSION:
        raise UnsupportedError(
            f"VKCS envelope version {head[4]} (Valkey 9.2 writes and reads {VERSION})",
            4,
            code="unsupported_version",
        )
    codec = CODECS.get(head[5])
    if codec is None:
        raise UnsupportedError(f"VKCS codec id {head[5]} (known: 1, lz4)", 5)
    if head[6] & ~FLAG_CODEC_CHECKSUM:
        raise CorruptError(
            f"VKCS flags {head[6]:#04x} set reserved bits (Valkey refuses the envelope)",
            6,
            code="bad_envelope",
        )
    if head[7] != STREAM_KIND_RDB:
        raise CorruptError(f"VKCS stream kind {head[7]} is not an RDB (0)", 7, code="bad_envelope")
    frame = bytes(buf[ENVELOPE_SIZE:])
    if not frame.startswith(_LZ4_FRAME_MAGIC):
        if len(frame) < 4 and _LZ4_FRAME_MAGIC.startswith(frame):
            raise TruncatedError("input ends inside the LZ4 frame's magic", len(buf))
        raise CorruptError(
            f"no LZ4 frame after the VKCS envelope (magic {frame[:4].hex()})",
            ENVELOPE_SIZE,
            code="bad_envelope",
        )
    checked = len(frame) > 4 and bool(frame[4] & _LZ4_CONTENT_CHECKSUM)
    if bool(head[6] & FLAG_CODEC_CHECKSUM) != checked and len(frame) > 4:
        raise CorruptError(
            "the VKCS envelope and its LZ4 frame disagree on the content checksum "
            f"(envelope flag {head[6] & 1}, frame flag {int(checked)})",
            ENVELOPE_SIZE + 4,
            code="bad_envelope",
        )
    rdb, used = _decompress(frame)
    if used < len(frame):
        raise CorruptError(
            f"{len(frame) - used} bytes after the LZ4 frame (one frame per envelope)",
            ENVELOPE_SIZE + used,
            code="bad_envelope",
        )
    return Envelope(codec, checked, len(frame), len(rdb)), rdb


def _decompress(frame: bytes) -> tuple[bytes, int]:
    """The frame's content and how many of its bytes the frame took."""
    try:
        import lz4.frame  # the lz4 package: a dependency, imported where it is needed
    except ImportError:  # pragma: no cover - installed with rbkit
        raise UnsupportedError(
            "a VKCS envelope (Valkey rdbcompression lz4) needs the lz4 package", 0
        ) from None
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:
        out = decompressor.decompress(frame)
    except RuntimeError as e:  # lz4's word for a damaged frame or a checksum mismatch
        raise CorruptError(f"LZ4 frame: {e}", ENVELOPE_SIZE, code="bad_envelope") from None
    if not decompressor.eof:
        raise TruncatedError("input ends inside the LZ4 frame", ENVELOPE_SIZE + len(frame))
    return out, len(frame) - len(decompressor.unused_data or b"")
