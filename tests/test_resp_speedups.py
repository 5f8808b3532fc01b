"""The C accelerator of read_commands must change nothing but the speed.

Every outcome (each command and annotation with its byte range, then the error with its offset,
message and attributes) is compared with the pure-Python reader on the AOF fixtures, on
damaged copies of them, and on hypothesis-generated and mutated RESP streams.
"""

from __future__ import annotations

import importlib
import importlib.util
import mmap
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import parsers.aof.resp as resp_module
from parsers.aof.resp import Command, TruncatedCommand, read_commands
from parsers.errors import FormatError
from parsers.rdb.walker import RdbWalker

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "aof"


def _unique_fixtures() -> list[Path]:
    """Every *.aof under fixtures/aof (damaged/ too), one path per distinct content."""
    seen: set[bytes] = set()
    paths = []
    for path in sorted(ROOT.rglob("*.aof")):
        data = path.read_bytes()
        if data not in seen:
            seen.add(data)
            paths.append(path)
    return paths


FIXTURES = _unique_fixtures()
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Bytes that matter to the grammar, and some that do not.
FLIPS = (0x0D, 0x0A, 0x2A, 0x24, 0x23, 0x30, 0x39, 0x2D, 0x20, 0xFF)


def commands_start(data: bytes) -> int:
    """Where the commands start: after the RDB preamble, if the file has one."""
    if not data.startswith(b"REDIS"):
        return 0
    walker = RdbWalker(data)
    for _ in walker.walk():
        pass
    return len(data) - walker.trailing_bytes


def outcome(data: bytes | mmap.mmap, start: int, fast: bool, mp: pytest.MonkeyPatch) -> Any:
    """Every item read, and how the reading ended (the error and all it carries)."""
    mp.setattr(resp_module, "USE_SPEEDUPS", fast)
    items: list[Any] = []
    try:
        for item in read_commands(data, start):
            items.append(item)
    except TruncatedCommand as e:
        end = ("cut", e.offset, str(e), e.code, e.start, e.name, e.missing_hint, e.annotation)
    except FormatError as e:
        end = ("error", type(e).__name__, e.offset, str(e), e.code)
    else:
        end = ("ok",)
    return items, end


def same_outcome(data: bytes, start: int, mp: pytest.MonkeyPatch) -> Any:
    fast = outcome(data, start, True, mp)
    assert fast == outcome(data, start, False, mp)
    return fast


def generator_scan(data: bytes) -> list[Any]:
    """The commands of a pure-RESP AOF as the fixture generator's own strict scanner reads
    them (fixtures/generate_aof.py, which shares no code with parsers/)."""
    spec = importlib.util.spec_from_file_location("generate_aof", ROOT.parent / "generate_aof.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    if spec.name not in sys.modules:
        sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
        spec.loader.exec_module(module)
    return module.scan_commands(data)


def test_the_accelerator_is_built() -> None:
    """The compiled module imports (a missing compiler at install is a failure here, not a
    silent fall back to Python), and it is the one read_commands uses."""
    built = importlib.import_module("parsers.aof._speedups")
    assert resp_module._speedups is built, "setup.py did not build parsers.aof._speedups"


def test_the_accelerator_reads_the_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """It must actually take the commands, or the comparisons here would prove nothing."""
    real = resp_module._speedups
    assert real is not None
    consumed = []

    def counting(buf: Any, pos: int, limit: int) -> tuple[list[Any], int]:
        items, new_pos = real.scan_commands(buf, pos, limit)
        consumed.append(len(items))
        return items, new_pos

    monkeypatch.setattr(resp_module, "_speedups", SimpleNamespace(scan_commands=counting))
    data = (ROOT / "redis-6.2-plain.aof").read_bytes()
    items, end = outcome(data, 0, True, monkeypatch)
    commands = sum(isinstance(item, Command) for item in items)
    assert end == ("ok",)
    assert commands == len(generator_scan(data)) > 100
    assert sum(consumed) == commands  # every well-formed command of the file came from C


def test_scan_commands_stops_before_what_it_does_not_accept() -> None:
    scan = resp_module._speedups.scan_commands
    ping = b"*1\r\n$4\r\nPING\r\n"
    assert scan(ping * 3, 0, 2) == ([((b"PING",), 0, 14), ((b"PING",), 14, 28)], 28)
    assert scan(ping + b"#TS:1\r\n" + ping, 0, 10) == ([((b"PING",), 0, 14)], 14)
    assert scan(b"", 0, 10) == ([], 0)
    assert scan(ping, 14, 10) == ([], 14)
    with mmap.mmap(-1, 4096) as mm:
        mm[:28] = ping * 2
        assert scan(mm, 0, 10) == ([((b"PING",), 0, 14), ((b"PING",), 14, 28)], 28)
    for bad in (
        b"*0\r\n",
        b"*-1\r\n",
        b"*+1\r\n$4\r\nPING\r\n",
        b"*1\n$4\r\nPING\r\n",
        b"*1\r\n$4\r\nPING\n",
        b"*1\r\n$4\r\nPIN",
        b"*1\r\n$5\r\nPING\r\n",
        b"*2\r\n$4\r\nPING\r\n",
        b"*2147483648\r\n" + ping,
        b"*2147483647\r\n" + ping,  # a count that lies: no tuple of that size is made
        b"*1\r\n$9999999999999999999\r\n" + ping,  # a length that lies, near 2**64
        b"*1\r\n$18446744073709551615\r\n" + ping,
        b"*00000000000000000001\r\n$4\r\nPING\r\n",  # 20 digits
    ):
        assert scan(bad, 0, 10) == ([], 0), bad
    padded = b"*0000000000000000001\r\n$04\r\nPING\r\n"  # 19 digits, a leading 0
    assert scan(padded, 0, 10) == ([((b"PING",), 0, len(padded))], len(padded))


@pytest.mark.parametrize("path", FIXTURES, ids=[str(p.relative_to(ROOT)) for p in FIXTURES])
def test_fixture_commands_are_the_same_in_c_and_python(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = path.read_bytes()
    start = commands_start(data)
    items, _ = same_outcome(data, start, monkeypatch)
    assert items or start == len(data)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert outcome(mm, start, True, monkeypatch) == outcome(data, start, False, monkeypatch)


@pytest.mark.parametrize("path", FIXTURES, ids=[str(p.relative_to(ROOT)) for p in FIXTURES])
def test_truncated_and_flipped_copies_end_alike(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = path.read_bytes()
    start = commands_start(data)
    size = len(data) - start
    step = max(1, size // 40)
    for cut in range(start, len(data) + 1, step):
        same_outcome(data[:cut], start, monkeypatch)
    for at in range(start, len(data), step):
        for value in (*FLIPS, data[at] ^ 0x01):
            damaged = bytearray(data)
            damaged[at] = value
            same_outcome(bytes(damaged), start, monkeypatch)
    for at in range(start, len(data), step * 4):  # a byte lost, a byte added
        same_outcome(data[:at] + data[at + 1 :], start, monkeypatch)
        same_outcome(data[:at] + b"1" + data[at:], start, monkeypatch)


def _encode(items: list[tuple[bytes, ...] | bytes]) -> bytes:
    out = []
    for item in items:
        if isinstance(item, bytes):
            out.append(item)
        else:
            out.append(b"*%d\r\n" % len(item))
            out.extend(b"$%d\r\n%s\r\n" % (len(a), a) for a in item)
    return b"".join(out)


ARG = st.binary(max_size=12) | st.sampled_from([b"SET", b"\r\n", b"*1\r\n", b"$3\r\n"])
ITEM = st.lists(ARG, min_size=1, max_size=5).map(tuple)
ANNOTATION = st.sampled_from([b"#TS:1700000000\r\n", b"#x\n", b"#" + b"a" * 1030 + b"\n"])
STREAM = st.lists(ITEM | ANNOTATION, max_size=12)


@FUZZ
@given(
    items=STREAM,
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from([*FLIPS, 0x31, 0x00]) | st.integers(0, 255)),
        max_size=4,
    ),
    cut=st.floats(0, 1),
    start=st.integers(0, 3),
)
def test_generated_and_mutated_streams_end_alike(
    items: list[tuple[bytes, ...] | bytes],
    edits: list[tuple[float, int]],
    cut: float,
    start: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = bytearray(_encode(items))
    if data:
        for where, value in edits:
            data[min(len(data) - 1, int(where * len(data)))] = value
    data = data[: len(data) - int(cut * len(data) * 0.2)]
    same_outcome(bytes(data), 0, monkeypatch)
    same_outcome(bytes(data), start, monkeypatch)


@FUZZ
@given(data=st.binary(max_size=200).map(lambda b: b"*" + b))
def test_random_bytes_after_a_star_end_alike(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    same_outcome(data, 0, monkeypatch)
