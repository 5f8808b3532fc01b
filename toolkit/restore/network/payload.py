"""DUMP payloads: what RESTORE takes, built from a backup's raw value bytes.

Layout (redis ``src/cluster.c``, createDumpPayload / verifyDumpPayload)::

    type byte | serialized value (as in an RDB) | RDB version (2 bytes LE) | CRC64 (8 bytes LE)

The CRC-64 (the RDB file's own, Jones) covers everything before it, the version included.
RESTORE refuses a payload whose version is newer than the server's own RDB version ("DUMP
payload version or checksum are wrong"); an older one it reads, as it reads an older file.
Valkey 9 writes version 80 and refuses Redis's 12-79 ("foreign" versions) by default.
"""

from __future__ import annotations

import struct

from parsers.rdb.constants import REDIS_RELEASE_FOR_VERSION, VALKEY_RELEASE_FOR_VERSION
from parsers.rdb.crc64 import crc64

FOOTER = 10  # 2 bytes of version, 8 of CRC
_VERSION = struct.Struct("<H")
_CRC = struct.Struct("<Q")
# Valkey before 9.0 reads Redis RDB files up to 11 (7.2's) and writes 11.
VALKEY_LEGACY_RDB = 11

Version = tuple[int, ...]


class PayloadError(ValueError):
    """A DUMP payload that is too short or whose checksum does not match."""


_TYPE_BYTES = [bytes([t]) for t in range(256)]


def dump_payload(type_id: int, value: bytes | memoryview, rdb_version: int) -> bytes:
    """The DUMP payload of a value of ``type_id`` serialized as ``value`` (the bytes after the
    key in an RDB), marked with ``rdb_version`` (the file's: the encoding is that version's)."""
    body = b"".join((_TYPE_BYTES[type_id], value, _VERSION.pack(rdb_version)))
    return body + _CRC.pack(crc64(body))


def split_payload(payload: bytes) -> tuple[int, int]:
    """Check a DUMP payload (as DUMP returns it); return (type byte, RDB version). The value
    runs from offset 1 to ``len(payload) - FOOTER``. Raises PayloadError."""
    if len(payload) < 1 + FOOTER:
        raise PayloadError(f"a DUMP payload of {len(payload)} bytes is too short")
    body = memoryview(payload)[:-8]
    stored = _CRC.unpack_from(payload, len(payload) - 8)[0]
    computed = crc64(body)
    if stored != computed:
        raise PayloadError(f"DUMP payload checksum {stored:016x}, computed {computed:016x}")
    return payload[0], _VERSION.unpack_from(payload, len(payload) - FOOTER)[0]


def readable_rdb_version(version: Version, valkey: bool) -> int:
    """The newest RDB version a server of this release reads (and the payload version its
    DUMP writes): Redis 7.0 -> 10, 7.4 -> 12; Valkey 8 -> 11, 9.0 -> 80."""
    if valkey:
        best = VALKEY_LEGACY_RDB
        for rdb, release in VALKEY_RELEASE_FOR_VERSION.items():
            if version[:2] >= _parse(release):
                best = max(best, rdb)
        return best
    best = 0
    for rdb, release in REDIS_RELEASE_FOR_VERSION.items():
        if version[:2] >= _parse(release):
            best = max(best, rdb)
    return best


def payload_readable(magic: str, rdb_version: int, target: Version, valkey: bool) -> bool:
    """Can a server of ``target`` RESTORE payloads of a ``magic`` file of ``rdb_version``?

    Only within one family: a ``VALKEY`` file's type ids differ from Redis's (22 is HASH_2), and
    Valkey refuses Redis's versions 12 on; Redis files up to 11 are common ground.
    """
    if magic == "VALKEY":
        return valkey and rdb_version <= readable_rdb_version(target, True)
    if valkey:
        return rdb_version <= VALKEY_LEGACY_RDB
    return rdb_version <= readable_rdb_version(target, False)


def _parse(text: str) -> Version:
    return tuple(int(x) for x in text.split("."))
