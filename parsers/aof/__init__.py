"""Append-only files: the RESP command stream and the Redis 7 multi-part manifest."""

from parsers.aof.manifest import Manifest, ManifestEntry, parse_manifest
from parsers.aof.resp import Annotation, Command, TruncatedCommand, read_commands

__all__ = [
    "Annotation",
    "Command",
    "Manifest",
    "ManifestEntry",
    "TruncatedCommand",
    "parse_manifest",
    "read_commands",
]
