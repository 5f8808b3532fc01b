"""A diff report as text: the terminal table, the Markdown section and the JSON object.

Pure functions of a ``DiffReport`` (toolkit/diff/model.py); no IO. Counts that a side could
not give (a saved ``check --json`` report has no key names) are None: "-" in tables, null in
JSON. Key names in JSON go through ``display_key`` (UTF-8, else ``\\xNN`` escapes), with the
exact bytes in ``key_b64`` when they are not valid UTF-8; in tables and Markdown through
``printable`` (control characters, C1 codes and backslashes escaped, one key on one line).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from json.encoder import encode_basestring_ascii as _js  # json's C escaper
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from tabulate import tabulate

from parsers.printable import printable
from parsers.rdb.constants import REDIS_TYPES
from toolkit.check.keys import key_fields
from toolkit.diff.keylist import KeyList
from toolkit.diff.model import (
    ADDED,
    COUNTS,
    EXPIRED,
    KINDS,
    REMOVED,
    SIZE,
    TTL_CHANGED,
    TTL_GAINED,
    TTL_LOST,
    TYPE,
    VALUE,
    VALUES,
    Counts,
    DbDiff,
    DiffReport,
    KeyDiff,
    KeyState,
    Source,
)
from toolkit.diff.table import NO_TTL
from toolkit.text import (
    Stream,
    count,
    duration,
    layout,
    plural,
    pre,
    size,
    ttl_change,
    utc_iso,
    verdict_line,
)

__all__ = ["diff_json", "duration", "render_markdown", "render_table", "utc_iso", "verdict"]

SCHEMA = "rbkit.diff/1"
TOP_PREFIXES = 10  # key families shown by default

_COUNT_FIELDS = ("a", "b", "added", "removed", "expired", "changed", "unchanged")
_COUNT_HEADERS = ("A", "B", "added", "removed", "expired", "changed", "unchanged")
# The password of a URL, in case a name or note still carries one: redis://user:PASS@host.
_URL_PASSWORD = re.compile(r"(?i)\b(rediss?|unix|valkeys?)://([^:/@\s]*):([^@\s]*)@")
_TYPE_NOTE = "(a key whose type changed counts as changed under its type in B)"
_KIND_WORDS = {
    REMOVED: "removed",
    EXPIRED: "expired",
    ADDED: "added",
    TYPE: "type changed",
    SIZE: "size changed",
    TTL_GAINED: "TTL gained",
    TTL_LOST: "TTL lost",
    TTL_CHANGED: "TTL changed",
    VALUE: "value changed",
}


# ---------------------------------------------------------------------------------------
# JSON


def diff_json(
    report: DiffReport,
    *,
    keys: bool = True,
    top_prefixes: int | None = None,
    stream: bool = False,
) -> dict[str, Any]:
    """The ``rbkit diff --json`` object (schema rbkit.diff/1); field names are a contract.

    ``keys`` False leaves the per-key list out (``"keys": null``, as for a diff of counts
    only); ``top_prefixes`` caps the prefix list (None: all the report has). The CLI computes
    the report without a --limit for JSON, so the list holds every differing key: with
    ``stream`` it is a :class:`~toolkit.text.Stream` that makes each key's dict as
    ``jsontext`` writes it (``json.dumps`` then needs ``default=jsontext.plain``), else a
    list.
    """
    totals = _totals(report)
    listed = keys and report.level != COUNTS
    prefixes = report.prefixes if top_prefixes is None else report.prefixes[:top_prefixes]
    return {
        "schema": SCHEMA,
        "same": report.same,
        "level": report.level,
        "a": _source_json(report.a),
        "b": _source_json(report.b),
        "dbs_compared": report.dbs_compared,
        "match": report.match,
        "ttl_tolerance_ms": report.ttl_tolerance_ms,
        "databases": {
            str(db): {
                "keys": _counts_json(d.keys),
                "expires": {"a": d.expires_a, "b": d.expires_b},
                "by_type": {t: _counts_json(c) for t, c in _types(d)},
            }
            for db, d in sorted(report.databases.items())
        },
        "totals": {
            "keys": _counts_json(totals.keys),
            "expires": {"a": totals.expires_a, "b": totals.expires_b},
            "by_type": {t: _counts_json(c) for t, c in _types(totals)},
        },
        "keys_differing": None if report.level == COUNTS else report.keys_differing,
        "keys_expired": None if report.level == COUNTS else report.keys_expired,
        "values_compared": report.values_compared,
        "values_reread": report.values_reread,
        "by_kind": {kind: report.by_kind.get(kind, 0) for kind in KINDS},
        "prefixes": [
            {
                **(key_fields(p.raw, "prefix") if p.raw else {"prefix": p.prefix}),
                "removed": p.removed,
                "added": p.added,
                "changed": p.changed,
                "total": p.total,
            }
            for p in prefixes
        ],
        "keys": _keys_json(report, stream) if listed else None,
        "notes": [redact(n) for n in report.notes],
    }


def _source_json(source: Source) -> dict[str, Any]:
    return {
        "kind": source.kind,
        "name": redact(source.name),
        "time_ms": source.time_ms,
        "time": None if source.time_ms is None else utc_iso(source.time_ms),
        "time_source": source.time_source,
        "version": source.version,
        "keys_read": source.keys_read,
        "seconds": round(source.seconds, 6),
        "notes": [redact(n) for n in source.notes],
        "via": source.via,
    }


def _counts_json(c: Counts) -> dict[str, int | None]:
    return {name: getattr(c, name) for name in _COUNT_FIELDS}


def _keys_json(report: DiffReport, stream: bool) -> list[dict[str, Any]] | Stream:
    if stream:
        keys = report.keys
        return Stream(
            keys,
            lambda k: _key_json(k, report),
            lambda k, nl, step: _key_json_text(k, report, nl, step),
            (lambda nl, step: _key_json_texts(keys, report, nl, step))
            if isinstance(keys, KeyList)
            else None,
        )
    return [_key_json(k, report) for k in report.keys]


def _key_json(k: KeyDiff, report: DiffReport) -> dict[str, Any]:
    return {
        "db": k.db,
        **key_fields(k.key),
        "kinds": list(k.kinds),
        "a": _state_json(k.a, report.a),
        "b": _state_json(k.b, report.b),
    }


def _key_json_text(k: KeyDiff, report: DiffReport, nl: str, step: str) -> str:
    """The text ``json.dumps`` gives :func:`_key_json` ``(k)`` indented at ``nl`` by
    ``step`` (what writing a million keys of a diff spends its time on)."""
    inner = nl + step
    sep = "," + inner
    fields = [f'"db": {int.__repr__(k.db)}']
    fields += [f"{_js(n)}: {_js(v)}" for n, v in key_fields(k.key).items()]
    deeper = inner + step
    kinds = "[" + deeper + ("," + deeper).join(map(_js, k.kinds)) + inner + "]"
    fields.append('"kinds": ' + (kinds if k.kinds else "[]"))
    fields.append('"a": ' + _state_json_text(k.a, report.a, inner, step))
    fields.append('"b": ' + _state_json_text(k.b, report.b, inner, step))
    return "{" + inner + sep.join(fields) + nl + "}"


# Listed keys made into JSON text at a time by _key_json_texts.
TEXT_ROWS = 16384
# A key name that is its own JSON text between quotes: printable ASCII but " and \.
_PLAIN_NAME = r"^[ !#-\[\]-~]*$"


def _key_json_texts(keys: KeyList, report: DiffReport, nl: str, step: str) -> Iterator[str]:
    """:func:`_key_json_text` of every listed key, in order, made with Arrow compute a chunk
    at a time; a name JSON must escape (or not UTF-8) is written by _key_json_text."""
    inner, deeper = nl + step, nl + step + step
    sep = "," + inner
    for start, cols in keys.chunks(TEXT_ROWS):
        kinds = [
            "[" + deeper + ("," + deeper).join(map(_js, k)) + inner + "]" if k else "[]"
            for k in cols.kind_sets
        ]
        plain = pc.match_substring_regex(cols.key, _PLAIN_NAME)
        names = pc.cast(pc.if_else(plain, cols.key, b""), pa.large_string())
        states = [
            _state_json_texts(side, source, cols.type_names, deeper, inner)
            for side, source in zip(cols.sides, (report.a, report.b), strict=True)
        ]
        texts = _join(
            "{" + inner + '"db": ',
            pc.cast(cols.db, pa.large_string()),
            sep + '"key": "',
            names,
            '"' + sep + '"kinds": ',
            pa.array(kinds, pa.large_string()).take(cols.kinds),
            sep + '"a": ',
            states[0],
            sep + '"b": ',
            states[1],
            nl + "}",
        )
        for i, (text, ok) in enumerate(zip(texts.to_pylist(), plain.to_pylist(), strict=True)):
            yield text if ok else _key_json_text(keys[start + i], report, nl, step)


def _join(*parts: str | pa.Array) -> pa.Array:
    """The parts (text, or large_string arrays of one length) joined row by row."""
    texts = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*texts, pa.scalar("", pa.large_string()))


def _state_json_texts(
    side: tuple[pa.Array, pa.Array, pa.Array],
    source: Source,
    type_names: list[str],
    nl: str,
    close: str,
) -> pa.Array:
    """:func:`_state_json_text` of one side of a chunk of keys (its columns)."""
    type_code, exp, size = side
    has_exp = pc.not_equal(exp, NO_TTL)
    exp_text = pc.if_else(has_exp, pc.cast(exp, pa.large_string()), "null")
    if source.time_ms is None:
        ttl_text = pa.repeat(pa.scalar("null", pa.large_string()), len(exp))
    else:
        ttl = pc.cast(pc.subtract(exp, source.time_ms), pa.large_string())
        ttl_text = pc.if_else(has_exp, ttl, "null")
    size_text = pc.if_else(pc.less(size, 0), "null", pc.cast(size, pa.large_string()))
    types = pa.array([_js(t) for t in type_names], pa.large_string()).take(type_code)
    text = _join(
        "{" + nl + '"type": ',
        types,
        "," + nl + '"expire_ms": ',
        exp_text,
        "," + nl + '"ttl_ms": ',
        ttl_text,
        "," + nl + '"size": ',
        size_text,
        close + "}",
    )
    return pc.if_else(pc.equal(type_code, 0), "null", text)


def _state_json_text(state: KeyState | None, side: Source, nl: str, step: str) -> str:
    if state is None:
        return "null"
    inner = nl + step
    return (
        "{" + inner + '"type": ' + _js(state.type)
        + "," + inner + '"expire_ms": ' + _json_int(state.expire_ms)
        + "," + inner + '"ttl_ms": ' + _json_int(_ttl_ms(state, side))
        + "," + inner + '"size": ' + _json_int(state.size)
        + nl + "}"
    )  # fmt: skip


def _json_int(n: int | None) -> str:
    return "null" if n is None else int.__repr__(n)


def _state_json(state: KeyState | None, side: Source) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "type": state.type,
        "expire_ms": state.expire_ms,
        "ttl_ms": _ttl_ms(state, side),
        "size": state.size,
    }


# ---------------------------------------------------------------------------------------
# Terminal table


def render_table(
    report: DiffReport,
    *,
    keys: bool = False,
    top_prefixes: int = TOP_PREFIXES,
    width: int | None = None,
) -> str:
    """The diff as text for a terminal: verdict, both sources, per-db and per-type tables,
    differences by kind, the key families that changed most and (``keys``) the keys; prose
    wrapped to ``width``."""
    out: list[str] = [verdict_line("rbkit diff", verdict(report))]
    for label, source in (("A", report.a), ("B", report.b)):
        out.append(f"  {label}: {_source_line(source)}")
        out.extend(f"     note: {_one_line(redact(n))}" for n in source.notes)
    out.append(f"  level: {level_text(report)}")
    if report.level != COUNTS:
        out.append(f"  TTL tolerance: {report.ttl_tolerance_ms} ms")
    out.extend(f"  {line}" for line in _scope_lines(report))
    out.extend(f"  note: {_one_line(redact(n))}" for n in _report_notes(report))
    if not report.databases:
        out += ["", "no keys on either side" + (" match --match" if report.match else "")]
        return layout(out, width)
    out += ["", pre(_db_table(report, "simple"))]
    out += ["", pre(_type_table(report, "simple"))]
    if report.by_kind.get(TYPE):
        out.append(_TYPE_NOTE)
    if report.level != COUNTS and any(report.by_kind.values()):
        rows = [(_KIND_WORDS.get(k, k), count(n)) for k, n in _kinds(report)]
        out += ["", pre(_table(rows, ("difference", "keys"), "simple", numeric=(1,)))]
    if report.prefixes and top_prefixes:
        out += ["", pre(_prefix_table(report, top_prefixes, "simple"))]
    if keys and report.level != COUNTS:
        out += ["", _keys_caption(report)]
        if report.keys:
            out.append(pre(_keys_table(report, "simple", code=False)))
    return layout(out, width)


def _source_line(source: Source) -> str:
    kind = _KIND_NAMES.get(source.kind, source.kind)
    if source.via:
        kind += f", read by {_VIA_NAMES.get(source.via, source.via)}"
    parts = [f"{_one_line(redact(source.name))} ({kind})"]
    if source.time_ms is not None:
        when = utc_iso(source.time_ms)
        parts.append(f"{when} from {source.time_source}" if source.time_source else when)
    else:
        parts.append("time unknown")
    if source.version:
        parts.append(f"Redis {source.version}")
    parts.append(f"{plural(source.keys_read, 'key')} read in {source.seconds:.2f} s")
    return ", ".join(parts)


_VIA_NAMES = {"snapshot": "its replication snapshot (SYNC)", "scan": "SCAN"}
_KIND_NAMES = {
    "rdb": "RDB file",
    "aof": "AOF",
    "report": "saved check report",
    "live": "live server",
    "cluster-set": "cluster backup set",
}


# ---------------------------------------------------------------------------------------
# Markdown


def render_markdown(
    report: DiffReport, *, keys: bool = True, top_prefixes: int = TOP_PREFIXES
) -> str:
    """The diff as a Markdown section for a post-incident review: heading, sources, verdict,
    summary tables (GitHub pipe tables), key families, and (``keys``) the first keys."""
    a, b = report.a, report.b
    out = [f"## Redis diff: {_md_text(_short(a))} → {_md_text(_short(b))}", ""]
    rows = [
        (
            label,
            _code(redact(s.name)),
            _KIND_NAMES.get(s.kind, s.kind),
            "unknown" if s.time_ms is None else utc_iso(s.time_ms),
            _md_text(s.time_source or "-"),
            _md_text(s.version or "-"),
            count(s.keys_read),
            f"{s.seconds:.2f}",
        )
        for label, s in (("A (before)", a), ("B (after)", b))
    ]
    headers = ("side", "source", "kind", "time (UTC)", "time from", "Redis", "keys read", "seconds")
    out += [_table(rows, headers, "pipe", numeric=(6, 7)), ""]
    out.append(f"**Result:** {_md_text(verdict(report))}")
    out.append("")
    details = [f"Compared: {_md_text(level_text(report))}."]
    if report.level != COUNTS:
        details.append(f"TTL tolerance {report.ttl_tolerance_ms} ms.")
    details += [_md_text(line) + "." for line in _scope_lines(report)]
    out.append(" ".join(details))
    notes = [(label, n) for label, s in (("A", a), ("B", b)) for n in s.notes]
    notes += [("", n) for n in _report_notes(report)]
    if notes:
        out.append("")
        out.extend(f"- {label + ': ' if label else ''}{_md_text(redact(n))}" for label, n in notes)
    if not report.databases:
        out += ["", "No keys on either side" + (" match --match." if report.match else ".")]
        return "\n".join(out) + "\n"
    out += ["", "### Keys per database", "", _db_table(report, "pipe")]
    out += ["", "### Keys per type", "", _type_table(report, "pipe")]
    if report.by_kind.get(TYPE):
        out += ["", _md_text(_TYPE_NOTE)]
    if report.level != COUNTS and any(report.by_kind.values()):
        rows = [(_KIND_WORDS.get(k, k), n) for k, n in _kinds(report)]
        out += ["", "### Differences by kind", ""]
        out.append(_table(rows, ("difference", "keys"), "pipe", numeric=(1,)))
    if report.prefixes and top_prefixes:
        out += ["", "### Key families that changed most", ""]
        out.append(_prefix_table(report, top_prefixes, "pipe"))
    if keys and report.level != COUNTS:
        out += ["", "### Differing keys", "", _md_text(_keys_caption(report))]
        if report.keys:
            out += ["", _keys_table(report, "pipe", code=True)]
    return "\n".join(out) + "\n"


def _short(source: Source) -> str:
    """The heading's name of a side: a file's base name, a URL as it is."""
    name = redact(source.name)
    if source.kind == "live" or "://" in name:
        return name
    return name.rstrip("/").rsplit("/", 1)[-1] or name


def _md_text(text: str) -> str:
    """Text for a Markdown table cell or line: one line, no table or emphasis breaks."""
    text = _one_line(text)
    return re.sub(r"([\\|*_`<>\[\]])", r"\\\1", text)


def _code(text: str) -> str:
    """Text as an inline code span (a fence longer than any backtick run inside it)."""
    text = _one_line(text).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# ---------------------------------------------------------------------------------------
# Shared pieces


def verdict(report: DiffReport) -> str:
    """One sentence: the same, or how many keys differ and how."""
    if report.level == COUNTS:
        if report.same:
            return "the same key counts (per db, per type and with a TTL)"
        totals = _totals(report)
        return (
            f"the key counts differ: A has {totals.keys.a} keys, B has {totals.keys.b} "
            f"(key names not compared: a side gave counts only)"
        )
    expired = ""
    if report.keys_expired:
        expired = (
            f"; {plural(report.keys_expired, 'key')} of A expired by B's time "
            "(not counted as differences)"
        )
    if report.same:
        what = (
            "types, sizes, TTLs and values" if report.level == VALUES else "types, sizes and TTLs"
        )
        return f"the same keys, {what}{expired}"
    totals = _totals(report).keys
    parts = [
        f"{totals.removed or 0} removed",
        f"{totals.added or 0} added",
        f"{totals.changed or 0} changed",
    ]
    differ = "key differs" if report.keys_differing == 1 else "keys differ"
    return f"{report.keys_differing} {differ}: {', '.join(parts)}{expired}"


def level_text(report: DiffReport) -> str:
    """What the diff compared, in words."""
    if report.level == COUNTS:
        return "counts only (a side is a saved check report: no key names)"
    if report.level == VALUES:
        compared = plural(report.values_compared, "value")
        text = f"key names, types, sizes, TTLs and values ({compared} compared"
        if report.values_reread:
            text += f", {report.values_reread} re-read from the live server"
        return text + ")"
    return "key names, types, sizes and TTLs (values not compared: --values)"


def _report_notes(report: DiffReport) -> list[str]:
    """The report's notes, less those that repeat a side's note as ``A: ...``/``B: ...``."""
    repeats = {f"{label}: {n}" for label, s in (("A", report.a), ("B", report.b)) for n in s.notes}
    return [n for n in report.notes if n not in repeats]


def _scope_lines(report: DiffReport) -> list[str]:
    lines = []
    if report.dbs_compared is not None:
        lines.append("databases compared: " + ", ".join(map(str, report.dbs_compared)))
    if report.match is not None:
        lines.append(f"keys matching: {_one_line(report.match)}")
    return lines


def _ttl_ms(state: KeyState, side: Source) -> int | None:
    if state.expire_ms is None or side.time_ms is None:
        return None
    return state.expire_ms - side.time_ms


def _state_text(state: KeyState | None, side: Source) -> str:
    """``string, 12 B, TTL 42 s`` / ``hash, 6 items, no TTL`` / ``-`` (not there)."""
    if state is None:
        return "-"
    parts = [state.type]
    if state.size is not None:
        parts.append(size(state.size) if state.type == "string" else plural(state.size, "item"))
    if state.expire_ms is None:
        parts.append("no TTL")
    else:
        ttl = _ttl_ms(state, side)
        parts.append(
            f"TTL {duration(ttl)}" if ttl is not None else f"expires {utc_iso(state.expire_ms)}"
        )
    return ", ".join(parts)


def _totals(report: DiffReport) -> DbDiff:
    """All dbs added up (a count that is None in any db is None in the total)."""
    total = DbDiff()
    for d in report.databases.values():
        _add(total.keys, d.keys)
        total.expires_a += d.expires_a
        total.expires_b += d.expires_b
        for t, c in d.by_type.items():
            _add(total.by_type.setdefault(t, Counts()), c)
    return total


def _add(into: Counts, c: Counts) -> None:
    for name in _COUNT_FIELDS:
        mine, theirs = getattr(into, name), getattr(c, name)
        setattr(into, name, None if mine is None or theirs is None else mine + theirs)


def _types(d: DbDiff) -> list[tuple[str, Counts]]:
    """A db's per-type counts: Redis's types in their usual order, then the others by name."""
    order = {t: i for i, t in enumerate(REDIS_TYPES)}
    return sorted(d.by_type.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))


def _kinds(report: DiffReport) -> list[tuple[str, int]]:
    known = [(k, report.by_kind.get(k, 0)) for k in KINDS]
    other = sorted((k, n) for k, n in report.by_kind.items() if k not in KINDS)
    return [(k, n) for k, n in known + other if n]


def _cells(c: Counts) -> list[str]:
    return [count(getattr(c, f)) for f in _COUNT_FIELDS]


def _db_table(report: DiffReport, fmt: str) -> str:
    rows = [
        [str(db), *_cells(d.keys), count(d.expires_a), count(d.expires_b)]
        for db, d in sorted(report.databases.items())
    ]
    if len(rows) > 1:
        total = _totals(report)
        rows.append(["all", *_cells(total.keys), count(total.expires_a), count(total.expires_b)])
    headers = ("db", *_COUNT_HEADERS, "expires A", "expires B")
    return _table(rows, headers, fmt, numeric=range(1, len(headers)))


def _type_table(report: DiffReport, fmt: str) -> str:
    """Per type over all dbs; per db and type when there are several dbs."""
    several = len(report.databases) > 1
    rows = []
    if several:
        for db, d in sorted(report.databases.items()):
            rows += [[str(db), t, *_cells(c)] for t, c in _types(d)]
        rows += [["all", t, *_cells(c)] for t, c in _types(_totals(report))]
        headers: tuple[str, ...] = ("db", "type", *_COUNT_HEADERS)
        return _table(rows, headers, fmt, numeric=range(2, len(headers)))
    rows = [[t, *_cells(c)] for t, c in _types(_totals(report))]
    headers = ("type", *_COUNT_HEADERS)
    return _table(rows, headers, fmt, numeric=range(1, len(headers)))


def _prefix_table(report: DiffReport, top: int, fmt: str) -> str:
    shown = report.prefixes[:top]
    rows = [
        (
            _code(printable(p.raw or p.prefix))
            if fmt == "pipe" and p.prefix
            else printable(p.raw or p.prefix) or "(none)",
            count(p.removed),
            count(p.added),
            count(p.changed),
            count(p.total),
        )
        for p in shown
    ]
    table = _table(rows, ("key family", "removed", "added", "changed", "total"), fmt, (1, 2, 3, 4))
    more = len(report.prefixes) - len(shown)
    if more > 0:
        table += f"\n\n(and {plural(more, 'more family', 'more families')})"
    return table


def _keys_caption(report: DiffReport) -> str:
    listed = len(report.keys)
    total = report.keys_differing + report.keys_expired
    expired = f" and {report.keys_expired} expired" if report.keys_expired else ""
    if not total:
        return "no key differs"
    if listed >= total:
        if not report.keys_expired:
            return f"all {plural(total, 'differing key')}:"
        return f"all {plural(total, 'key')} ({report.keys_differing} differing{expired}):"
    return f"first {listed} of {report.keys_differing} differing keys{expired} (--limit):"


def _keys_table(report: DiffReport, fmt: str, *, code: bool) -> str:
    rows = [
        (
            str(k.db),
            _code(printable(k.key)) if code else printable(k.key),
            ", ".join(_kind_text(kind, k, report) for kind in k.kinds),
            _state_text(k.a, report.a),
            _state_text(k.b, report.b),
        )
        for k in report.keys
    ]
    return _table(rows, ("db", "key", "difference", "A", "B"), fmt, numeric=(0,))


def _kind_text(kind: str, k: KeyDiff, report: DiffReport) -> str:
    """A key's difference in words; a TTL change as the difference of the two TTLs."""
    if kind == TTL_CHANGED and k.a is not None and k.b is not None:
        ttl_a, ttl_b = _ttl_ms(k.a, report.a), _ttl_ms(k.b, report.b)
        if ttl_a is not None and ttl_b is not None:
            return ttl_change(ttl_a, ttl_b)
    return _KIND_WORDS.get(kind, kind)


def _table(
    rows: Iterable[Sequence[Any]], headers: Sequence[str], fmt: str, numeric: Iterable[int] = ()
) -> str:
    """tabulate without number parsing (key names stay text), numbers aligned right."""
    right = set(numeric)
    align = ["right" if i in right else "left" for i in range(len(headers))]
    rows = [[str(v) for v in row] for row in rows]
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True, colalign=align)


def _one_line(text: str) -> str:
    """Composed text on one line: control characters (newline, tab, ESC, C1...) escaped as
    :func:`parsers.printable.printable` escapes them; backslashes kept (names in the text
    were escaped when it was composed)."""
    return printable(text, composed=True)


def redact(text: str) -> str:
    """Any URL password in the text replaced by ``***`` (sources should carry none)."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}://{m.group(2)}:***@", text)
