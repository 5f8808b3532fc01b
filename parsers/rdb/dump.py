"""DUMP payloads: what Redis's ``DUMP key`` returns and ``RESTORE`` takes.

Layout (redis ``src/cluster.c``, createDumpPayload / verifyDumpPayload)::

    [type byte][value, as in an RDB file][RDB version: 2 bytes LE][CRC-64: 8 bytes LE]

The CRC-64 (the RDB file's, :mod:`parsers.rdb.crc64`) covers everything before it. The value
is decoded with :mod:`parsers.rdb.decode`; a footer version of 80 or more is a Valkey payload
(Valkey numbers its RDB versions from 80, and its type 22 means something else).
Offsets in errors are offsets into the payload.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from parsers.errors import CorruptError, FormatError, TruncatedError
from parsers.rdb.constants import TYPE_NAMES
from parsers.rdb.crc64 import crc64
from parsers.rdb.decode import ModuleValue, Value, read_value
from parsers.rdb.versions import VALKEY_FIRST_VERSION

FOOTER = 10  # 2-byte RDB version + 8-byte CRC-64
_U16LE = struct.Struct("<H").unpack_from
_U64LE = struct.Struct("<Q").unpack_from


@dataclass(frozen=True, slots=True)
class DumpPayload:
    """One decoded DUMP payload: the RDB type byte, the footer's RDB version, the value, and
    the value's serialized bytes (what a module value's content is, at the encoding level)."""

    type_id: int
    rdb_version: int
    magic: str  # "REDIS", or "VALKEY" for a footer version >= 80
    value: Value
    raw: bytes  # the value's bytes, between the type byte and the footer

    @property
    def type_name(self) -> str:
        """What TYPE says of the key: string, list, ..., or the module's type name."""
        if isinstance(self.value, ModuleValue):
            return self.value.module
        return TYPE_NAMES.get(self.type_id, "?")


_TYPE_BYTES = [bytes([t]) for t in range(256)]
_U16LE_PACK = struct.Struct("<H").pack
_U64LE_PACK = struct.Struct("<Q").pack


def dump_payload(type_id: int, value: bytes | memoryview, rdb_version: int) -> bytes:
    """The DUMP payload of a value of ``type_id`` serialized as ``value`` (the bytes after
    the key in an RDB), marked with ``rdb_version`` (the file's: the encoding is that
    version's). RESTORE reads it on a server whose own version is at least that."""
    body = b"".join((_TYPE_BYTES[type_id], value, _U16LE_PACK(rdb_version)))
    return body + _U64LE_PACK(crc64(body))


def split_dump(payload: bytes) -> tuple[int, int, bytes]:
    """Check a payload's footer and CRC; returns (type byte, RDB version, value bytes).

    Raises TruncatedError when it is too short, CorruptError when the CRC does not match.
    """
    n = len(payload)
    if n < FOOTER + 1:
        raise TruncatedError(
            f"DUMP payload of {n} bytes: expected a type byte and the {FOOTER}-byte footer", 0
        )
    body = n - 8
    stored = _U64LE(payload, body)[0]
    computed = crc64(memoryview(payload)[:body])
    if stored != computed:
        raise CorruptError(
            f"DUMP payload checksum mismatch: stored {stored:016x}, computed {computed:016x}",
            body,
            code="checksum_mismatch",
        )
    version = _U16LE(payload, n - FOOTER)[0]
    return payload[0], version, bytes(payload[1 : n - FOOTER])


def decode_dump(payload: bytes) -> DumpPayload:
    """Verify and decode one DUMP payload. Raises a FormatError subclass with the offset."""
    type_id, version, raw = split_dump(payload)
    magic = "VALKEY" if version >= VALKEY_FIRST_VERSION else "REDIS"
    try:
        value, end = read_value(raw, type_id, 0, magic=magic)
    except FormatError as e:
        raise e.located(offset=e.offset + 1) from None  # raw starts at payload byte 1
    if end != len(raw):
        raise CorruptError(
            f"DUMP value decodes to {end} bytes, the payload holds {len(raw)} before its footer",
            1 + end,
        )
    return DumpPayload(type_id, version, magic, value, raw)
