"""Backup formats, bytes in and records out: no files, sockets or printing here.

The public API: the errors every parser raises, and the RDB walker with its records.
"""

from parsers.errors import CorruptError, FormatError, TruncatedError, UnsupportedError
from parsers.rdb.constants import TYPE_NAMES, Opcode, ValueType
from parsers.rdb.records import Aux, Checksum, Function, KeyEntry, ModuleAux, PartialTally, Tally
from parsers.rdb.versions import release_for
from parsers.rdb.walker import RdbWalker, read_header

__all__ = [
    "TYPE_NAMES",
    "Aux",
    "Checksum",
    "CorruptError",
    "FormatError",
    "Function",
    "KeyEntry",
    "ModuleAux",
    "Opcode",
    "PartialTally",
    "RdbWalker",
    "Tally",
    "TruncatedError",
    "UnsupportedError",
    "ValueType",
    "read_header",
    "release_for",
]
