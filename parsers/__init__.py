"""Backup formats, bytes in and records out: no files, sockets or printing here.

The public API: the errors every parser raises, and the RDB walker with its records. They
are loaded when first used, so that importing one small parser module does not load all.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "CorruptError": "parsers.errors",
    "FormatError": "parsers.errors",
    "TruncatedError": "parsers.errors",
    "UnsupportedError": "parsers.errors",
    "TYPE_NAMES": "parsers.rdb.constants",
    "Opcode": "parsers.rdb.constants",
    "ValueType": "parsers.rdb.constants",
    "Aux": "parsers.rdb.records",
    "Checksum": "parsers.rdb.records",
    "Function": "parsers.rdb.records",
    "KeyEntry": "parsers.rdb.records",
    "ModuleAux": "parsers.rdb.records",
    "PartialTally": "parsers.rdb.records",
    "Tally": "parsers.rdb.records",
    "release_for": "parsers.rdb.versions",
    "RdbWalker": "parsers.rdb.walker",
    "read_header": "parsers.rdb.walker",
}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'parsers' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
