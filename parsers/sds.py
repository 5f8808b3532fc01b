"""Words of a line as Redis splits them (sdssplitargs, src/sds.c): config files and AOF
manifests both use it, and so do the two readers here (toolkit's redis.conf reader, the AOF
manifest parser)."""

from __future__ import annotations

_SPACE = b" \t\n\v\f\r"  # C isspace()
_TOKEN_END = b" \t\n\r"  # what ends an unquoted word in sdssplitargs
_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09, ord("b"): 0x08, ord("a"): 0x07}


def split_args(line: bytes) -> list[bytes] | None:
    """Split a line into words as Redis's sdssplitargs does; None for bad quoting.

    Words are separated by blanks; "double quotes" take \\xHH and \\n \\r \\t \\b \\a escapes,
    'single quotes' only \\'; a closing quote must be followed by a blank or the end.
    """
    n = len(line)

    def at(i: int) -> int:
        return line[i] if i < n else 0

    words: list[bytes] = []
    i = 0
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return words
        word = bytearray()
        in_double = in_single = done = False
        while not done:
            c = at(i)
            if in_double:
                if c == 0x5C and at(i + 1) == 0x78 and at(i + 2) in _HEX and at(i + 3) in _HEX:
                    word.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and at(i + 1):
                    i += 1
                    word.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x22:
                    if at(i + 1) and at(i + 1) not in _SPACE:
                        return None
                    done = True
                elif c == 0:
                    return None
                else:
                    word.append(c)
            elif in_single:
                if c == 0x5C and at(i + 1) == 0x27:
                    i += 1
                    word.append(0x27)
                elif c == 0x27:
                    if at(i + 1) and at(i + 1) not in _SPACE:
                        return None
                    done = True
                elif c == 0:
                    return None
                else:
                    word.append(c)
            elif c == 0 or c in _TOKEN_END:
                done = True
            elif c == 0x22:
                in_double = True
            elif c == 0x27:
                in_single = True
            else:
                word.append(c)
            if at(i):
                i += 1
        words.append(bytes(word))
