"""``json.dumps(obj, indent=1)``, byte for byte, several times faster.

Python 3.11's C encoder cannot indent, so ``json.dumps`` with ``indent`` runs its pure-Python
generator, about 20 µs a small object: a diff report listing every differing key (tens of
thousands of little dicts) spent seconds there. This recursive writer makes the same text
(a :class:`Stream` that gives its items' text is written by that)
(``ensure_ascii``, ``", "``/``": "`` separators, ``NaN``/``Infinity`` as json writes them),
with the C string escaper. Anything else json would hand to ``default`` (or a cycle) falls
back to ``json.dumps`` itself, which then raises as it always did.

:func:`write_indented` hands the same text to a writer in pieces as it is made, and a
:class:`Stream` is an array whose items are made one at a time as they are written: a diff
listing every differing key is never one list of dicts nor one string in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii  # the C escaper
from typing import Any

from toolkit.text import Stream

__all__ = ["Stream", "dumps_indented", "plain", "write_indented"]

_INF = float("inf")
# A long list's pieces are joined into one string (or written) every this many (a diff of
# millions of keys would otherwise hold tens of millions of little strings until the end).
COMPACT = 65536
COMPACT_ITEMS = 8192  # the same for the items of a Stream that gives their text

Sink = Callable[[str], Any]


def plain(o: Any) -> Any:
    """``json.dumps``'s ``default`` for a :class:`Stream` (a list); anything else refused
    as json refuses it."""
    if isinstance(o, Stream):
        return list(o)
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


class _Unsupported(Exception):
    """A value only json.dumps knows what to do with (or to refuse)."""


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


def _key(k: Any) -> str:
    """A dict key as json writes it (keys are strings in JSON)."""
    if isinstance(k, str):
        return encode_basestring_ascii(k)
    if isinstance(k, float):
        return encode_basestring_ascii(_float(k))
    if k is True:
        return '"true"'
    if k is False:
        return '"false"'
    if k is None:
        return '"null"'
    if isinstance(k, int):
        return encode_basestring_ascii(int.__repr__(k))
    raise _Unsupported


# The exact scalar types, written without a call to _write (most of a report's values).
_SCALARS: dict[type, Any] = {
    str: encode_basestring_ascii,
    int: int.__repr__,
    float: _float,
    bool: lambda b: "true" if b else "false",
    type(None): lambda _: "null",
}


def _write(o: Any, out: list[str], nl: str, step: str, depth: int, sink: Sink) -> None:
    """``o``'s text appended to ``out``; a long array's pieces handed to ``sink`` (joined)
    as they come."""
    if isinstance(o, str):
        out.append(encode_basestring_ascii(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, Stream) and (o.text is not None or o.texts is not None):
        inner = nl + step
        sep = "," + inner
        text = o.text
        if o.texts is not None:
            texts = o.texts(inner, step)
        else:
            assert text is not None
            texts = (text(x, inner, step) for x in o.source)
        first = True
        for item_text in texts:
            if first:
                out.append("[" + inner)
                first = False
            else:
                out.append(sep)
                if len(out) > COMPACT_ITEMS:  # each a whole item's text
                    sink("".join(out))
                    out.clear()
            out.append(item_text)
        out.append("[]" if first else nl + "]")
    elif isinstance(o, (list, tuple, Stream)):
        if depth > 500:
            raise _Unsupported  # deep enough to be a cycle: json tells
        inner = nl + step
        sep = "," + inner
        first = True
        scalar = _SCALARS.get
        for item in o:
            if first:
                out.append("[" + inner)
                first = False
            else:
                out.append(sep)
                if len(out) > COMPACT:  # pieces joined as they come: fewer, bigger strings
                    sink("".join(out))
                    out.clear()
            f = scalar(type(item))
            if f is not None:
                out.append(f(item))
            else:
                _write(item, out, inner, step, depth + 1, sink)
        out.append("[]" if first else nl + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        if depth > 500:
            raise _Unsupported
        inner = nl + step
        sep = "," + inner
        out.append("{" + inner)
        first = True
        scalar = _SCALARS.get
        for k, v in o.items():
            if not first:
                out.append(sep)
            first = False
            f = scalar(type(v))
            if f is not None:
                out.append(_key(k) + ": " + f(v))
            else:
                out.append(_key(k) + ": ")
                _write(v, out, inner, step, depth + 1, sink)
        out.append(nl + "}")
    else:
        raise _Unsupported


def dumps_indented(obj: Any, indent: int = 1) -> str:
    """The text of ``json.dumps(obj, indent=indent)`` (a :class:`Stream` as a list)."""
    parts: list[str] = []
    out: list[str] = []
    try:
        _write(obj, out, "\n", " " * indent, 0, parts.append)
    except _Unsupported:
        return json.dumps(obj, indent=indent, default=plain)
    parts.append("".join(out))
    return "".join(parts)


def write_indented(obj: Any, write: Sink, indent: int = 1) -> None:
    """The text of ``json.dumps(obj, indent=indent)`` handed to ``write`` in pieces of
    about ``COMPACT`` values each, as it is made.

    A value json refuses raises json's error; if pieces were written by then, they stay
    written (the writers here only meet such values in a caller's bug).
    """
    wrote = False

    def sink(piece: str) -> None:
        nonlocal wrote
        wrote = True
        write(piece)

    out: list[str] = []
    try:
        _write(obj, out, "\n", " " * indent, 0, sink)
    except _Unsupported:
        text = json.dumps(obj, indent=indent, default=plain)  # raises what json raises
        if wrote:
            raise ValueError("nested too deep to be written in pieces") from None
        write(text)
        return
    write("".join(out))
