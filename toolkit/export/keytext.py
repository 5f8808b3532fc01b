"""Key names as text, for the CSV and JSON Lines exports: exact, and inert in a terminal.

Printable ASCII stays as it is, except the backslash, written ``\\\\``; every other byte is
written ``\\xHH`` (two lowercase hex digits). So the text is plain ASCII, and
:func:`unescape_key` (Python's ``codecs.escape_decode``) gives back the exact bytes.
"""

from __future__ import annotations

import codecs
import re

_PLAIN = re.compile(rb"[\x20-\x5b\x5d-\x7e]*")
_BYTE = [chr(b) if 0x20 <= b <= 0x7E and b != 0x5C else f"\\x{b:02x}" for b in range(256)]
_BYTE[0x5C] = "\\\\"


def escape_key(key: bytes) -> str:
    """``key`` as ASCII text (see the module docstring)."""
    if _PLAIN.fullmatch(key):
        return key.decode("ascii")
    return "".join([_BYTE[b] for b in key])


def unescape_key(text: str) -> bytes:
    """The key bytes :func:`escape_key` wrote as ``text``."""
    return codecs.escape_decode(text.encode("ascii"))[0]
