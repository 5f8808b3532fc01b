"""The AOF command reader: Redis's RESP grammar, annotations, cut-off input and bad frames."""

from __future__ import annotations

import mmap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.aof import Annotation, Command, TruncatedCommand, read_commands
from parsers.aof.resp import ANNOTATION_MAX
from parsers.errors import CorruptError, FormatError, TruncatedError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def resp(*args: bytes) -> bytes:
    """One command as Redis writes it to the AOF (catAppendOnlyGenericCommand)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def read_all(buf: bytes | mmap.mmap, start: int = 0) -> list[Command | Annotation]:
    return list(read_commands(buf, start))


def error_of(buf: bytes) -> FormatError:
    with pytest.raises(FormatError) as info:
        read_all(buf)
    return info.value


# A stream like a Redis 7 incr file with aof-timestamp-enabled: annotations, a transaction,
# a binary-safe value, an empty argument.
ITEMS: list[tuple[bytes, ...] | bytes] = [
    b"#TS:1700000000\r\n",
    (b"SELECT", b"0"),
    (b"set", b"key", b"value"),
    (b"MULTI",),
    (b"set", b"bin", b"a\r\nb\r\n\x00\xff"),
    (b"EXEC",),
    b"#TS:1700000001\r\n",
    (b"rpush", b"list", b"", b"x"),
]


def encode(items: list[tuple[bytes, ...] | bytes]) -> tuple[bytes, list[int]]:
    """The stream and the offset where each item starts (plus the end)."""
    parts = [item if isinstance(item, bytes) else resp(*item) for item in items]
    bounds = [0]
    for part in parts:
        bounds.append(bounds[-1] + len(part))
    return b"".join(parts), bounds


STREAM, BOUNDS = encode(ITEMS)


# -- well-formed input ----------------------------------------------------------------------


def test_reads_a_stream_whole_with_offsets():
    items = read_all(STREAM)
    assert len(items) == len(ITEMS)
    for item, expected, start, end in zip(items, ITEMS, BOUNDS[:-1], BOUNDS[1:], strict=True):
        assert (item.offset, item.end) == (start, end)
        if isinstance(expected, bytes):
            assert item == Annotation(expected.rstrip(b"\r\n"), start, end)
        else:
            assert item == Command(expected, start, end)


def test_empty_input_and_start_at_the_end_yield_nothing():
    assert read_all(b"") == []
    assert read_all(STREAM, len(STREAM)) == []


def test_start_skips_what_comes_before():
    # As after an RDB preamble: the caller passes the offset where the AOF tail starts.
    blob = b"REDIS-preamble-bytes" + resp(b"set", b"k3", b"v3")
    assert read_all(blob, 20) == [Command((b"set", b"k3", b"v3"), 20, len(blob))]


def test_negative_start_is_a_programming_error():
    with pytest.raises(ValueError):
        read_all(STREAM, -1)


def test_binary_safe_argument_holding_crlf_and_star():
    value = b"\r\n*1\r\n$3\r\nfoo\r\n#TS:1\r\n"
    assert read_all(resp(b"set", b"k", value))[0].args == (b"set", b"k", value)


def test_empty_argument():
    assert read_all(resp(b"set", b"", b""))[0].args == (b"set", b"", b"")


def test_command_name_property():
    assert read_all(resp(b"PING"))[0].name == b"PING"


def test_multi_and_exec_are_plain_commands():
    names = [i.name for i in read_all(resp(b"MULTI") + resp(b"INCR", b"n"))]
    assert names == [b"MULTI", b"INCR"]  # an open MULTI is the consumer's business


def test_leading_zeros_are_numbers_as_strtol_reads_them():
    assert read_all(b"*01\r\n$03\r\nfoo\r\n")[0].args == (b"foo",)


def test_reads_an_mmap(tmp_path):
    path = tmp_path / "appendonly.aof"
    path.write_bytes(STREAM)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert read_all(mm) == read_all(STREAM)
        assert all(type(a) is bytes for i in read_all(mm) if isinstance(i, Command) for a in i.args)


# -- annotations ------------------------------------------------------------------------------


def test_timestamp_annotation():
    (ann,) = read_all(b"#TS:1700000000\r\n")
    assert ann == Annotation(b"#TS:1700000000", 0, 16)
    assert ann.timestamp == 1700000000


@pytest.mark.parametrize(
    ("line", "timestamp"),
    [
        (b"#TS:0\r\n", 0),
        (b"#TS:1700000000\n", 1700000000),  # Redis reads annotation lines with fgets: LF ends them
        (b"#TS:\r\n", None),
        (b"#TS:17x\r\n", None),
        (b"#TS: 17\r\n", None),
        (b"#ts:17\r\n", None),
        (b"#note from an operator\r\n", None),
        (b"#\r\n", None),
        (b"#TS:" + b"9" * 30 + b"\r\n", None),
    ],
)
def test_annotation_timestamp(line, timestamp):
    (ann,) = read_all(line)
    assert ann.end == len(line)
    assert ann.timestamp == timestamp


def test_annotation_of_1023_bytes_is_one_line():
    line = b"#" + b"x" * (ANNOTATION_MAX - 2) + b"\n"
    assert len(line) == ANNOTATION_MAX
    assert read_all(line + resp(b"PING"))[0] == Annotation(line[:-1], 0, ANNOTATION_MAX)


def test_longer_annotation_is_read_in_pieces_like_redis():
    # fgets(buf, 1024): 1023 bytes, then the rest is taken as the next item.
    line = b"#" + b"x" * (ANNOTATION_MAX - 1) + b"\r\n"
    e = error_of(line + resp(b"PING"))
    assert isinstance(e, CorruptError)
    assert e.offset == ANNOTATION_MAX
    assert "longer than 1023 bytes" in e.what


def test_longer_annotation_whose_rest_is_a_command():
    line = b"#" + b"x" * (ANNOTATION_MAX - 1)
    items = read_all(line + resp(b"PING"))
    assert items == [Annotation(line, 0, ANNOTATION_MAX), Command((b"PING",), 1023, 1037)]


# -- cut-off input ----------------------------------------------------------------------------


def name_known_from(start: int, args: tuple[bytes, ...]) -> int:
    """The first cut point at which the command name has been read in full."""
    return start + len(b"*%d\r\n$%d\r\n" % (len(args), len(args[0]))) + len(args[0])


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_every_cut_is_a_clean_end_or_a_truncated_command(cut):
    data = STREAM[:cut]
    if cut in BOUNDS:
        assert len(read_all(data)) == BOUNDS.index(cut)
        return
    index = max(i for i, b in enumerate(BOUNDS) if b < cut)
    start, item = BOUNDS[index], ITEMS[index]
    seen: list[Command | Annotation] = []
    with pytest.raises(TruncatedCommand) as info:
        seen.extend(read_commands(data))
    e = info.value
    assert len(seen) == index
    assert isinstance(e, TruncatedError)
    assert (e.start, e.offset, e.missing_hint, e.code) == (start, cut, cut - start, "truncated")
    assert str(e).endswith(f"at offset {cut}")
    if isinstance(item, bytes):
        assert e.annotation
        assert e.name is None
    else:
        assert not e.annotation
        assert e.name == (item[0] if cut >= name_known_from(start, item) else None)


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b"*", None, "the argument count"),
        (b"*12", None, "the argument count"),
        (b"*1\r", None, "the argument count"),
        (b"*1\r\n", None, "'$' and the length of argument 1 of 1"),
        (b"*1\r\n$", None, "the length of argument 1 of 1"),
        (b"*1\r\n$3\r", None, "the length of argument 1 of 1"),
        (b"*1\r\n$3\r\nfo", None, "1 more bytes of argument 1 of 1 (3 bytes)"),
        (b"*1\r\n$3\r\nfoo", b"foo", "\\r\\n after argument 1 of 1"),
        (b"*1\r\n$3\r\nfoo\r", b"foo", "\\r\\n after argument 1 of 1"),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nab", b"SET", "8 more bytes of argument 3"),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n", b"SET", "'$' and the length of argument 3 of 3"),
    ],
)
def test_truncated_command_says_what_was_expected(data, name, expected):
    e = error_of(b"*1\r\n$4\r\nPING\r\n" + data)
    assert isinstance(e, TruncatedCommand)
    assert (e.start, e.name, e.offset, e.missing_hint) == (14, name, 14 + len(data), len(data))
    assert expected in e.what
    assert e.what.startswith(f"input ends {len(data)} bytes into a ")


def test_huge_length_is_a_truncation_not_an_allocation():
    e = error_of(b"*1\r\n$999999999999999999\r\nshort")
    assert isinstance(e, TruncatedCommand)
    assert e.start == 0


def test_huge_argument_count_is_a_truncation():
    e = error_of(b"*2000000000\r\n$1\r\na\r\n")
    assert isinstance(e, TruncatedCommand)
    assert "argument 2 of 2000000000" in e.what


def test_cut_annotation():
    e = error_of(b"#TS:17")
    assert isinstance(e, TruncatedCommand)
    assert (e.start, e.name, e.annotation, e.missing_hint) == (0, None, True, 6)


# -- bad frames -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "offset", "message"),
    [
        # LF-only line endings (RedisShake's incr file as stored): redis-check-aof says
        # "Expected \r\n, got: 0a00" for the line at offset 0.
        (b"*2\n$6\nSELECT\n$1\n0\n", 2, "expected \\r\\n after '*2' (the argument count)"),
        (b"\n", 0, "expected '*' at the start of a command, found 0x0a"),
        (b"\x00\x00\x00\x00", 0, "found 0x00"),  # preallocated tail after a crash
        (b"SET k v\r\n", 0, "found 0x53"),  # inline command: not in an AOF
        (b"*0\r\n", 1, "argument count 0"),
        (b"*-1\r\n", 1, "expected a digit after '*'"),
        (b"*\r\n", 1, "expected a digit after '*'"),
        (b"* 1\r\n", 1, "expected a digit after '*'"),
        (b"*+1\r\n", 1, "expected a digit after '*'"),
        (b"*1_0\r\n", 2, "expected \\r\\n after '*1'"),  # int() would take it
        (b"*1\rX", 3, "expected \\n after '*1\\r', found 0x58"),
        (b"*" + b"9" * 20 + b"\r\n", 1, "more than 19 digits"),
        (b"*3000000000\r\n", 1, "argument count 3000000000 is out of range"),
        (b"*1\r\n:5\r\n", 4, "expected '$' before argument 1 of 1, found 0x3a"),
        (b"*2\r\n$3\r\nSET\r\n*1\r\n", 13, "expected '$' before argument 2 of 2"),
        (b"*1\r\n$-1\r\n", 5, "expected a digit after '$'"),
        (b"*1\r\n$3x\r\nfoo\r\n", 6, "expected \\r\\n after '$3' (the length of argument 1"),
        (b"*1\r\n$" + b"9" * 19 + b"\r\nx", 5, "is out of range"),
        (b"*1\r\n$3\r\nfoo\n", 11, "expected \\r\\n after the 3 bytes of argument 1 of 1"),
        (b"*1\r\n$3\r\nfooXY", 11, "found 0x58"),
        (b"*1\r\n$3\r\nfooX", 11, "found 0x58"),  # a wrong byte, even at the end
        (b"*1\r\n$3\r\nfoo\rX", 12, "expected \\n after \\r after the 3 bytes"),
        (b"*1\r\n$4\r\nPING\r\n\r\n", 14, "expected '*' at the start of a command"),
        (b"#TS:1\r\n$3\r\n", 7, "found 0x24"),
    ],
)
def test_bad_frame_points_at_the_offending_byte(data, offset, message):
    e = error_of(data)
    assert type(e) is CorruptError
    assert e.code == "bad_frame"
    assert e.offset == offset
    assert message in e.what
    assert str(e) == f"{e.what} at offset {offset}"
    assert "\n" not in str(e)


def test_items_before_a_bad_frame_are_yielded():
    seen: list[Command | Annotation] = []
    with pytest.raises(CorruptError):
        seen.extend(read_commands(resp(b"PING") + b"\n"))
    assert seen == [Command((b"PING",), 0, 14)]


# -- properties -------------------------------------------------------------------------------

args_lists = st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=5), max_size=8)


@FUZZ
@given(args_lists)
def test_round_trip(commands):
    data = b"".join(resp(*args) for args in commands)
    assert [c.args for c in read_all(data)] == [tuple(a) for a in commands]


def outcome(data: bytes) -> list[Command | Annotation] | FormatError:
    """What the reader makes of ``data``: the items, or our error (anything else fails)."""
    try:
        items = read_all(data)
    except TruncatedCommand as e:
        assert 0 <= e.start < len(data) == e.offset
        assert e.missing_hint == len(data) - e.start
        return e
    except CorruptError as e:
        assert e.code == "bad_frame"
        assert 0 <= e.offset < len(data)
        return e
    pos = 0
    for item in items:
        assert item.offset == pos < item.end
        pos = item.end
    assert pos == len(data)
    return items


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_give_items_or_our_errors(data):
    outcome(data)


@FUZZ
@given(st.binary(max_size=60).map(lambda b: b"*" + b))
def test_random_bytes_after_a_star(data):
    outcome(data)


@FUZZ
@given(args_lists, st.data())
def test_damaged_stream_gives_items_or_our_errors(commands, data):
    blob = bytearray(b"".join(resp(*args) for args in commands) or b"*1\r\n$0\r\n\r\n")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.sampled_from(b"*$#\r\n0129-x\x00"))
    outcome(bytes(blob))
