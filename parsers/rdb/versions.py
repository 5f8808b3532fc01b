"""Which server release writes, and which reads, each RDB version: the one table.

Redis numbers its RDB versions 1-15 (magic ``REDIS``); Valkey 9 starts its own at 80 (magic
``VALKEY``), and Valkey before 9 writes and reads Redis's versions up to 11 (7.2's). A server
reads every version up to the one it writes, of its own family; Redis files up to 11 are
common ground. DUMP payloads carry the same version number in their footer.
"""

from __future__ import annotations

Version = tuple[int, ...]

# The first Redis release that writes (and so reads) each RDB version.
REDIS_RELEASE_FOR_VERSION: dict[int, str] = {
    1: "1.0",
    2: "2.2",
    3: "2.4",
    4: "2.6",
    5: "2.6",
    6: "2.8",
    7: "3.2",
    8: "4.0",
    9: "5.0",
    10: "7.0",
    11: "7.2",
    12: "7.4",
    13: "8.6",
    14: "8.8",  # stream NACK data (type 27), arrays (type 28)
    15: "8.10",  # hash templates (types 29-32, opcode 242); from secondary sources only
}
# The first Valkey release that writes each of its own RDB versions.
VALKEY_RELEASE_FOR_VERSION: dict[int, str] = {80: "9.0", 81: "9.2"}
VALKEY_FIRST_VERSION = 80  # Valkey's own versions start here (VALKEY080)
VALKEY_LEGACY_RDB = 11  # the newest Redis RDB version any Valkey reads (and Valkey < 9 writes)


def release_tuple(text: str) -> Version:
    """ "7.4" -> (7, 4)."""
    return tuple(int(x) for x in text.split("."))


def release_for(magic: str, version: int) -> str:
    """The first server release that writes this RDB version ("7.0", "Valkey 9.0")."""
    if magic == "VALKEY":
        return f"Valkey {VALKEY_RELEASE_FOR_VERSION.get(version, '?')}"
    return REDIS_RELEASE_FOR_VERSION.get(version, "?")


def first_release(magic: str, version: int) -> Version | None:
    """The first release of its own family that reads this version; None if unknown."""
    table = VALKEY_RELEASE_FOR_VERSION if magic == "VALKEY" else REDIS_RELEASE_FOR_VERSION
    text = table.get(version)
    return release_tuple(text) if text else None


def readable_rdb_version(server: Version, valkey: bool) -> int:
    """The newest RDB version a server of this release reads (and writes in its DUMP
    payloads): Redis 7.0 -> 10, 7.4 -> 12; Valkey 8 -> 11, 9.0 -> 80."""
    best = VALKEY_LEGACY_RDB if valkey else 0
    table = VALKEY_RELEASE_FOR_VERSION if valkey else REDIS_RELEASE_FOR_VERSION
    for rdb, release in table.items():
        if server[:2] >= release_tuple(release):
            best = max(best, rdb)
    return best


def server_reads(magic: str, version: int, server: Version, valkey: bool) -> bool:
    """Can a server of ``server`` release (Valkey if ``valkey``) load this magic and version?

    Only within one family: a ``VALKEY`` file's type ids differ from Redis's (22 is HASH_2),
    and Valkey refuses Redis's versions 12 on; Redis files up to 11 are common ground."""
    if magic == "VALKEY":
        return valkey and version <= readable_rdb_version(server, True)
    if valkey:
        return version <= VALKEY_LEGACY_RDB
    return version <= readable_rdb_version(server, False)
