"""The multi-part AOF manifest: Redis's rules (aofLoadManifestFromFile) and safe file names."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.aof import Manifest, ManifestEntry, parse_manifest
from parsers.aof.manifest import MANIFEST_MAX_LINE, name_problem, split_args
from parsers.errors import CorruptError

# As Redis 7.0 to 8.2 write it (getAofManifestAsString): base, then history, then incrs.
REDIS_7 = (
    b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
)


def bad(text: bytes) -> CorruptError:
    with pytest.raises(CorruptError) as info:
        parse_manifest(text)
    e = info.value
    assert e.code == "bad_manifest"
    assert "\n" not in str(e)
    assert str(e).endswith(f"at offset {e.offset}")
    return e


# -- good manifests ---------------------------------------------------------------------------


def test_redis_7_manifest():
    m = parse_manifest(REDIS_7)
    assert m.entries == (
        ManifestEntry("appendonly.aof.1.base.rdb", 1, "b", 1, 0),
        ManifestEntry("appendonly.aof.1.incr.aof", 1, "i", 2, 44),
    )
    assert m.base == m.entries[0]
    assert m.incrs == (m.entries[1],)
    assert m.history == ()
    assert m.warnings == ()


def test_manifest_after_rewrites_with_history_and_several_incrs():
    text = (
        b"file appendonly.aof.3.base.rdb seq 3 type b\n"
        b"file appendonly.aof.2.base.rdb seq 2 type h\n"
        b"file appendonly.aof.5.incr.aof seq 5 type h\n"
        b"file appendonly.aof.6.incr.aof seq 6 type i\n"
        b"file appendonly.aof.7.incr.aof seq 7 type i\n"
    )
    m = parse_manifest(text)
    assert m.base is not None and m.base.seq == 3
    assert [e.name for e in m.history] == ["appendonly.aof.2.base.rdb", "appendonly.aof.5.incr.aof"]
    assert [(e.seq, e.line) for e in m.incrs] == [(6, 4), (7, 5)]


def test_base_only_manifest_as_fred_rs_committed_it():
    m = parse_manifest(b"file appendonly.aof.4.base.rdb seq 4 type b\n")
    assert m.base == ManifestEntry("appendonly.aof.4.base.rdb", 4, "b", 1, 0)
    assert m.incrs == ()


def test_incrs_without_base_and_aof_format_base():
    m = parse_manifest(b"file appendonly.aof.1.base.aof seq 1 type b\nfile x seq 9 type i\n")
    assert [e.type for e in m.entries] == ["b", "i"]
    assert parse_manifest(b"file x seq 9 type i\n").base is None


def test_fields_in_any_order_and_keys_in_any_case():
    m = parse_manifest(b"TYPE i Seq 2 FiLe a.aof\n")
    assert m.entries == (ManifestEntry("a.aof", 2, "i", 1, 0),)


def test_history_seqs_need_no_order():
    m = parse_manifest(b"file a seq 5 type h\nfile b seq 1 type h\nfile c seq 1 type i\n")
    assert [e.seq for e in m.entries] == [5, 1, 1]


def test_crlf_line_endings_blanks_and_tabs_are_trimmed():
    m = parse_manifest(b"  file a  seq 1\ttype i \r\n")
    assert m.entries == (ManifestEntry("a", 1, "i", 1, 0),)


@pytest.mark.parametrize(
    ("line", "name"),
    [
        (b'file "my file.aof" seq 1 type i\n', "my file.aof"),  # sdscatrepr quotes spaces
        (b'file "a\\x41\\tb\\"c" seq 1 type i\n', 'aA\tb"c'),
        (b"file 'it\\'s' seq 1 type i\n", "it's"),
        (b'file a"b c" seq 1 type i\n', "ab c"),  # sdssplitargs opens a quote mid-word
        (b'file "caf\\xc3\\xa9.aof" seq 1 type i\n', "café.aof"),
    ],
)
def test_quoted_names(line, name):
    assert parse_manifest(line).entries[0].name == name


def test_undecodable_name_round_trips_to_its_bytes():
    (entry,) = parse_manifest(b'file "a\\xff" seq 1 type i\n').entries
    assert os.fsencode(entry.name) == b"a\xff"


def test_comments_are_skipped_and_lines_still_counted():
    text = b"# written by hand\n" + REDIS_7 + b"#trailing comment without newline"
    m = parse_manifest(text)
    assert [(e.line, e.offset) for e in m.entries] == [(2, 18), (3, 62)]


def test_only_comments_is_an_empty_manifest_with_a_warning():
    m = parse_manifest(b"# nothing here\n")
    assert m == Manifest((), m.warnings)
    assert "no files" in m.warnings[0]


def test_longest_line_redis_reads():
    name = b"n" * (MANIFEST_MAX_LINE - len(b"file  seq 1 type i\n"))
    line = b"file " + name + b" seq 1 type i\n"
    assert len(line) == MANIFEST_MAX_LINE
    assert parse_manifest(line).entries[0].name == name.decode()


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        (b"file a seq 1 type i foo bar\n", "line 1: unknown key 'foo' ignored"),
        (b"file a file b seq 1 type i\n", "line 1: key file given twice, the last counts"),
        (b"file a seq 1x type i\n", "line 1: seq '1x' read as 1"),  # atoll
        (b"file a seq +1 type i\n", "line 1: seq '+1' read as 1"),
        (b"file a seq -2 type h\n", "line 1: seq -2 is negative"),
        (b"file a seq 1 type incr\n", "line 1: type 'incr' read as 'i'"),
        (
            b"file a seq 1 type h\nfile a seq 1 type i\n",
            "line 2: file 'a' is also listed on line 1",
        ),
    ],
)
def test_what_redis_lets_pass_is_a_warning(text, warning):
    m = parse_manifest(text)
    assert len(m.entries) == text.count(b"\n")
    assert warning in m.warnings


def test_last_file_key_counts():
    assert parse_manifest(b"file a file b seq 1 type i\n").entries[0].name == "b"


def test_comment_longer_than_a_line_continues_as_a_line_like_in_redis():
    # fgets(buf, 1025): the comment's first 1024 bytes are skipped, the rest is a line.
    text = b"#" + b"x" * (MANIFEST_MAX_LINE - 1) + b"file a seq 1 type i\n"
    m = parse_manifest(text)
    assert m.entries == (ManifestEntry("a", 1, "i", 1, MANIFEST_MAX_LINE),)
    assert "comment longer than 1024 bytes" in m.warnings[0]
    e = bad(b"#" + b"x" * 2000 + b"\n")
    assert e.offset == MANIFEST_MAX_LINE
    assert "the rest of a comment longer than 1024 bytes" in e.what


def test_atoll_saturates_like_c():
    m = parse_manifest(b"file a seq 99999999999999999999999 type i\n")
    assert m.entries[0].seq == 2**63 - 1
    m = parse_manifest(b"file a seq 000000000000000000000000007 type i\n")
    assert m.entries[0].seq == 7


# -- errors, one per rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "offset", "message"),
    [
        (b"", 1, 0, "the manifest is empty"),
        (b"\n", 1, 0, "a blank line"),
        (REDIS_7 + b"  \r\n", 3, 88, "a blank line"),
        (b"file a seq 1 type i", 1, 0, "the last line has no newline"),
        (b"file " + b"a" * 1100 + b" seq 1 type i\n", 1, 0, "longer than 1024 bytes"),
        (b"file a\x00 seq 1 type i\n", 1, 0, "a NUL byte"),
        (b"file a seq 1 type\n", 1, 0, "found 5 words"),
        (b"file a seq 1 type i x\n", 1, 0, "found 7 words"),
        (b"garbage\n", 1, 0, "found 1 word "),
        (b'file "a seq 1 type i\n', 1, 0, "unbalanced quotes"),
        (b"file 'a seq 1 type i\n", 1, 0, "unbalanced quotes"),
        (b'file "a"b seq 1 type i\n', 1, 0, "closing quote not followed by a space"),
        (b"seq 1 type i x y\n", 1, 0, "missing file"),
        (b"file a type i x y\n", 1, 0, "missing seq"),
        (b"file a seq 0 type i\n", 1, 0, "missing a non-zero seq"),
        (b"file a seq x type i\n", 1, 0, "missing a non-zero seq"),
        (b"file a seq 1 x y\n", 1, 0, "missing type"),
        (b'file a seq 1 type ""\n', 1, 0, "missing type"),
        (b"x 1 y 2 z 3\n", 1, 0, "missing file and seq and type"),
        (b"file a seq 1 type x\n", 1, 0, "unknown file type 'x'"),
        (b"file a seq 1 type B\n", 1, 0, "unknown file type 'B'"),
        (b"file a seq 1 type b\nfile b seq 2 type b\n", 2, 20, "a second base file"),
        (b"file a seq 2 type i\nfile b seq 2 type i\n", 2, 20, "incr seq 2 is not above 2"),
        (b"file a seq 3 type i\nfile b seq 2 type i\n", 2, 20, "incr seq 2 is not above 3"),
        (b"file a seq -1 type i\n", 1, 0, "incr seq -1 is not positive"),
    ],
)
def test_bad_manifest(text, line, offset, message):
    e = bad(text)
    assert e.offset == offset
    assert e.what.startswith(f"line {line}: ")
    assert message in e.what


@pytest.mark.parametrize(
    ("text", "redis_log"),
    [
        (b"", "Found an empty AOF manifest"),
        (b"\n", "Invalid AOF manifest file format"),
        (b"file a seq 1 type i", "The AOF manifest file contains too long line"),
        (b"file a seq 1 type b\nfile b seq 1 type b\n", "Found duplicate base file information"),
        (b"file a seq 2 type i\nfile b seq 1 type i\n", "Found a non-monotonic sequence number"),
        (b"file a seq 1 type z\n", "Unknown AOF file type"),
        (b"file a/b seq 1 type i\n", "File can't be a path, just a filename"),
    ],
)
def test_message_quotes_what_redis_logs(text, redis_log):
    assert redis_log in bad(text).what


@pytest.mark.parametrize(
    "name",
    [
        b"../appendonly.aof.1.incr.aof",
        b"../../etc/passwd",
        b"/etc/passwd",
        b"/abs/appendonly.aof.1.base.rdb",
        b"sub/appendonly.aof",
        b"..\\\\windows",
        b"a\\\\b",
        b"..",
        b".",
        b"..hidden",
        b'""',
        b'"a\\x00/../../etc/passwd"',  # Redis would open "a"
        b'"a\\x2fb"',
        b"C:appendonly.aof",
    ],
)
def test_names_that_could_leave_the_directory_are_refused(name):
    for type_ in (b"b", b"h", b"i"):
        e = bad(b"file ok seq 1 type h\nfile " + name + b" seq 2 type " + type_ + b"\n")
        assert e.offset == 21
        assert e.what.startswith("line 2: ")
        assert "name" in e.what


def test_redis_refuses_paths_itself_and_we_say_so():
    assert "Redis: \"File can't be a path" in bad(b"file ../x seq 1 type i\n").what
    assert "Redis accepts this" in bad(b"file .. seq 1 type i\n").what


def test_name_problem():
    assert name_problem(b"appendonly.aof.1.incr.aof") is None
    assert name_problem(b"a..b") is None
    assert name_problem(b"ab:c") is None
    assert name_problem(b"../x") is not None


# -- sdssplitargs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"a b  c", [b"a", b"b", b"c"]),
        (b"\x0ba\x0cb", [b"a\x0cb"]),  # blanks (isspace) between words, not inside them
        (b'"\\n\\r\\t\\b\\a\\z\\\\"', [b"\n\r\t\b\x07z\\"]),
        (b'"\\x4"', [b"x4"]),  # not two hex digits: the backslash escapes the x
        (b"'a\\nb'", [b"a\\nb"]),
        (b'""', [b""]),
        (b'"a" "b"', [b"a", b"b"]),
        (b'"a"\t', [b"a"]),
        (b'"a"b', None),
        (b"'a'b", None),
        (b'"a', None),
        (b"'a", None),
        (b'"a\\', None),
    ],
)
def test_split_args_like_sdssplitargs(line, words):
    assert split_args(line) == words


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_random_manifests_parse_or_raise_our_error(text):
    try:
        m = parse_manifest(text)
    except CorruptError as e:
        assert e.code == "bad_manifest"
        assert 0 <= e.offset <= len(text)
        return
    for entry in m.entries:
        assert name_problem(os.fsencode(entry.name)) is None
        assert entry.type in "bhi"


def test_redis_8_offsets_are_read_past_without_warnings() -> None:
    text = (
        b"file appendonly.aof.3.base.aof seq 3 type b\n"
        b"file appendonly.aof.3.incr.aof seq 3 type i startoffset 381 endoffset 417\n"
    )
    manifest = parse_manifest(text)
    assert [e.name for e in manifest.incrs] == ["appendonly.aof.3.incr.aof"]
    assert manifest.warnings == ()
