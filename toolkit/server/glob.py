"""Key names matched against a glob as Redis matches them (SCAN MATCH, KEYS): util.c
``stringmatchlen``, byte for byte.

:func:`stringmatch` is that function ported line by line (the reference); :func:`glob_matcher`
compiles a pattern into an equivalent regular expression, which is what callers use on many
keys. The rules, as the server applies them:

- ``*`` any run of bytes, ``?`` one byte, ``\\x`` the byte x, anything else itself;
- ``[...]`` one byte of a set, ``[^...]`` one byte not in it; inside, ``\\x`` is x, ``a-z`` a
  range (its ends in either order, and even ``a-]`` is a range: the ``]`` does not close it),
  and a pattern that ends inside a class ends the class;
- range ends are compared as C ``char``, which is signed on x86-64 builds: ``[a-\\xff]`` holds
  the bytes from 0xff (-1) up to ``a``, that is 0x00-0x61 and 0xff;
- an empty name matches only the empty pattern; SCAN with the pattern ``*`` does not match at
  all, so it returns empty names too;
- matching gives up (no match) past 1000 nested ``*`` (Redis 7.2.6, 7.4.1 and later).
"""

from __future__ import annotations

import re
from collections.abc import Callable

MAX_NESTING = 1000  # stringmatchlen_impl: "Protection against abusive patterns"
# Up to this many * a regular expression matches (backtracking grows as the name's length to
# the power of the stars); past it, the port, which gives up early as Redis does.
REGEX_STARS = 4


def _signed(b: int) -> int:
    return b - 256 if b >= 128 else b


def _class_end(pat: bytes, i: int, byte: int) -> tuple[int, bool]:
    """A ``[...]`` class starting after its ``[`` (and ``^``), tried on ``byte``: (index of
    its closing ``]``, or of its last byte when the pattern ends inside it; matched)."""
    n = len(pat)
    matched = False
    c = _signed(byte)
    while True:
        if i < n and pat[i] == 0x5C and n - i >= 2:
            i += 1
            matched = matched or pat[i] == byte
        elif i < n and pat[i] == 0x5D:
            return i, matched
        elif i >= n:
            return i - 1, matched
        elif n - i >= 3 and pat[i + 1] == 0x2D:
            lo, hi = sorted((_signed(pat[i]), _signed(pat[i + 2])))
            i += 2
            matched = matched or lo <= c <= hi
        else:
            matched = matched or pat[i] == byte
        i += 1


def stringmatch(pattern: bytes, name: bytes) -> bool:
    """Does ``name`` match ``pattern``? util.c ``stringmatchlen`` (nocase off), ported; its
    recursion at each ``*`` is a stack here. A child call that fails lets its ``*`` try one
    byte further; once a ``*`` has tried every position the whole match fails (Redis's
    ``skipLongerMatches``)."""
    stack: list[list[int]] = []  # per * being tried: [pattern index after it, name index]
    p = i = 0
    while True:
        outcome = _run(pattern, p, name, i) if len(stack) <= MAX_NESTING else False
        if outcome is True:
            return True
        if isinstance(outcome, tuple):
            stack.append(list(outcome))
            p, i = outcome
            continue
        if not stack:
            return False
        frame = stack[-1]
        frame[1] += 1
        if frame[1] >= len(name):
            return False
        p, i = frame


def _run(pat: bytes, p: int, s: bytes, i: int) -> bool | tuple[int, int]:
    """One call of stringmatchlen_impl up to its first ``*``: the result, or (where the
    rest of the pattern starts, where in the name) for the ``*`` to try."""
    pn, sn = len(pat), len(s)
    while p < pn and i < sn:
        c = pat[p]
        if c == 0x2A:  # *
            while p + 1 < pn and pat[p + 1] == 0x2A:
                p += 1
            if pn - p == 1:
                return True
            return p + 1, i
        if c == 0x3F:  # ?
            i += 1
        elif c == 0x5B:  # [
            p += 1
            negate = p < pn and pat[p] == 0x5E
            if negate:
                p += 1
            p, matched = _class_end(pat, p, s[i])
            if matched == negate:
                return False
            i += 1
        else:
            if c == 0x5C and pn - p >= 2:  # \x
                p += 1
            if pat[p] != s[i]:
                return False
            i += 1
        p += 1
        if i == sn:
            while p < pn and pat[p] == 0x2A:
                p += 1
            break
    return p >= pn and i == sn


def glob_matcher(pattern: str | bytes) -> Callable[[bytes], bool]:
    """A matcher of key names for ``pattern`` that agrees with :func:`stringmatch` (and with
    SCAN, for which ``*`` matches every name): a compiled regular expression, or the port
    itself for a pattern of more than :data:`REGEX_STARS` stars."""
    pat = pattern.encode() if isinstance(pattern, str) else pattern
    if pat == b"*":  # SCAN skips matching altogether for "*"
        return lambda key: True
    if pat.count(b"*") > REGEX_STARS:
        return lambda key: stringmatch(pat, key)
    full = re.compile(glob_regex(pat), re.DOTALL).fullmatch

    def match(key: bytes) -> bool:
        # stringmatchlen compares nothing for an empty name: only an empty pattern matches.
        return full(key) is not None if key else not pat

    return match


def glob_regex(pat: bytes) -> bytes:
    """The regular expression (bytes) of a Redis glob pattern."""
    out = bytearray()
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == 0x2A:
            out += b".*"
        elif c == 0x3F:
            out += b"."
        elif c == 0x5C and i + 1 < n:
            i += 1
            out += re.escape(pat[i : i + 1])
        elif c == 0x5B:
            i += 1
            negate = i < n and pat[i] == 0x5E
            if negate:
                i += 1
            start = i
            end, _ = _class_end(pat, start, 0)
            members = bytes(b for b in range(256) if _class_end(pat, start, b)[1])
            out += _byte_class(members, negate)
            i = end
        else:
            out += re.escape(pat[i : i + 1])
        i += 1
    return bytes(out)


def _byte_class(members: bytes, negate: bool) -> bytes:
    """A regex class of exactly ``members`` (or every other byte)."""
    if not members:
        return b"." if negate else b"(?!)"
    if len(members) == 256:
        return b"(?!)" if negate else b"."
    return (b"[^" if negate else b"[") + b"".join(b"\\x%02x" % b for b in members) + b"]"
