"""The one way rbkit shows names from a backup to a person: keys, aux fields, function,
module and command names, in every text, table and Markdown output and in error messages.

A crafted name must not act on the terminal that shows it (clear the screen, move the
cursor, print a fake verdict), and two different names must not look alike. So, as
``redis-cli`` shows strings: a backslash is doubled; ``\\n \\r \\t \\a \\b`` are written so;
every other character that is not printable (C0 controls, ESC, DEL, C1 controls such as the
one-byte CSI ``\\x9b``, bidi and other format characters, line separators) is written as the
``\\xNN`` escapes of its UTF-8 bytes; a byte that is not part of valid UTF-8 is ``\\xNN`` too.
So the text ``lit\\xff`` shows as ``lit\\\\xff`` and the bytes ``lit`` + 0xFF as ``lit\\xff``.

The same function guards whole outputs (``composed=True``): text already made of escaped
names keeps its backslashes, and with ``lines=True`` its line breaks; anything else a
terminal could act on is escaped as above.
"""

from __future__ import annotations

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b"}


def printable(value: bytes | str, *, composed: bool = False, lines: bool = False) -> str:
    """``value`` (bytes, or text) with every character a terminal could act on escaped.

    ``composed``: ``value`` is composed text, whose backslashes are kept as they are;
    ``lines``: its line breaks ("\\n") are kept too.
    """
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    if text.isprintable() and (composed or "\\" not in text):
        return text
    out = []
    for ch in text:
        named = _NAMED.get(ch)
        if named is not None:
            keep = (ch == "\\" and composed) or (ch == "\n" and lines)
            out.append(ch if keep else named)
        elif ch.isprintable():
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # a byte that is not valid UTF-8
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogatepass")))
    return "".join(out)
