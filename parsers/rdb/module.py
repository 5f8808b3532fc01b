"""Module values (RDB_TYPE_MODULE_2, MODULE_AUX) walked through their opcode annotations.

A module value starts with a 64-bit module id whose top 54 bits spell the module type name
(9 characters, 6 bits each) and whose low 10 bits are the encoding version; then a sequence of
(opcode, value) pairs ends with opcode EOF. This lets us skip a value without the module.
"""

from __future__ import annotations

from parsers.errors import BAD_MODULE_VALUE, CorruptError, TruncatedError
from parsers.rdb.constants import (
    MODULE_OPCODE_DOUBLE,
    MODULE_OPCODE_EOF,
    MODULE_OPCODE_FLOAT,
    MODULE_OPCODE_SINT,
    MODULE_OPCODE_STRING,
    MODULE_OPCODE_UINT,
)
from parsers.rdb.strings import Buffer, read_length, skip_string, skip_string_checked

# module.c: ModuleTypeNameCharSet
_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def module_type_name(module_id: int) -> str:
    """The 9-character type name encoded in a module id (e.g. 'ReJSON-RL')."""
    return "".join(_CHARSET[(module_id >> (10 + 6 * (8 - i))) & 63] for i in range(9))


def module_encoding_version(module_id: int) -> int:
    return module_id & 1023


def skip_opcodes(buf: Buffer, pos: int, *, check: bool = False) -> tuple[int, int]:
    """Skip annotated module values up to and including EOF. Returns (new offset, values).

    ``check`` also checks that LZF-compressed strings inflate to their length, as the module's
    own loading (RedisModule_LoadString) would.
    """
    values = 0
    end = len(buf)
    skip = skip_string_checked if check else skip_string
    while True:
        opcode, p = read_length(buf, pos)
        if opcode == MODULE_OPCODE_EOF:
            return p, values
        if opcode in (MODULE_OPCODE_SINT, MODULE_OPCODE_UINT):
            _, p = read_length(buf, p)
        elif opcode == MODULE_OPCODE_FLOAT:
            p += 4
        elif opcode == MODULE_OPCODE_DOUBLE:
            p += 8
        elif opcode == MODULE_OPCODE_STRING:
            p = skip(buf, p)
        else:
            raise CorruptError(
                f"unknown module value opcode {opcode} (expected 0-5)", pos, code=BAD_MODULE_VALUE
            )
        if p > end:
            raise TruncatedError("module value runs past the end of the input", pos)
        values += 1
        pos = p


def skip_module_value(buf: Buffer, pos: int, *, check: bool = False) -> tuple[int, int, str]:
    """Skip a MODULE_2 value. Returns (new offset, annotated values, module type name)."""
    module_id, p = read_length(buf, pos)
    p, values = skip_opcodes(buf, p, check=check)
    return p, values, module_type_name(module_id)
