"""Cluster hash slots: which slot a key hashes to, keys counted per slot, slot ranges.

A key's slot is Redis's ``keyHashSlot``: the CRC-16/XMODEM of the key, or of the part between
its first ``{`` and the first ``}`` after it when that part is not empty (a hash tag), modulo
16384. The C accelerator (parsers/rdb/_speedups.c) computes it in the deep walk's hot loop.
"""

from __future__ import annotations

from collections.abc import Iterable

from parsers.rdb.records import Aux, SlotInfo

try:  # the C helpers (setup.py builds them where a compiler is at hand)
    from parsers.rdb import _speedups
except ImportError:  # pragma: no cover - depends on the build
    _speedups = None

SLOTS = 16384


def _crc16_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021 if c & 0x8000 else c << 1) & 0xFFFF
        table.append(c)
    return table


_TABLE = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM (polynomial 0x1021, initial 0), as Redis's crc16.c."""
    c = 0
    table = _TABLE
    for b in data:
        c = ((c << 8) & 0xFFFF) ^ table[((c >> 8) ^ b) & 0xFF]
    return c


def py_key_slot(key: bytes) -> int:
    """:func:`key_slot` in pure Python."""
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1 : e]
    return crc16(key) & 0x3FFF


def key_slot(key: bytes) -> int:
    """The cluster hash slot of ``key`` (bytes as Redis loads them)."""
    if _speedups is not None:
        return _speedups.key_slot(key)
    return py_key_slot(key)


def name_slots(names: bytes | bytearray | memoryview, offsets: memoryview, rows: int) -> bytearray:
    """The slots of ``rows`` key names stored back to back in ``names``, row i from
    ``offsets[i]`` to ``offsets[i + 1]`` (a typed int64 memoryview, as a batch of
    :class:`~parsers.rdb.columns.KeyColumns` holds them), as native uint16 values."""
    out = bytearray(2 * rows)
    if _speedups is not None:
        _speedups.name_slots(names, offsets, rows, out)
        return out
    slots = memoryview(out).cast("H")
    for i in range(rows):
        slots[i] = py_key_slot(bytes(names[offsets[i] : offsets[i + 1]]))
    return out


class SlotCounts:
    """Keys counted per slot while a walk goes: ``buffer`` holds 2 * 16384 native uint64, the
    keys of each slot, then those of them with an expiry (the C scan adds to it in place)."""

    def __init__(self) -> None:
        self.buffer = bytearray(2 * SLOTS * 8)
        self._view = memoryview(self.buffer).cast("Q")

    def add(self, key: bytes, has_expire: bool) -> None:
        """Count one key (the Python walk)."""
        slot = key_slot(key)
        self._view[slot] += 1
        if has_expire:
            self._view[SLOTS + slot] += 1

    @property
    def keys(self) -> list[int]:
        """Keys per slot, indexed by slot."""
        return self._view[:SLOTS].tolist()

    @property
    def expires(self) -> list[int]:
        """Keys with an expiry per slot, indexed by slot."""
        return self._view[SLOTS:].tolist()


def ranges(slots: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted slots as inclusive (first, last) runs: ``[0, 1, 2, 7]`` -> ``[(0, 2), (7, 7)]``."""
    out: list[tuple[int, int]] = []
    for slot in sorted(set(slots)):
        if out and out[-1][1] == slot - 1:
            out[-1] = (out[-1][0], slot)
        else:
            out.append((slot, slot))
    return out


def ranges_text(runs: list[tuple[int, int]]) -> str:
    """``[(0, 2), (7, 7)]`` -> ``"0-2, 7"``."""
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)


def declared_slots(records: list[SlotInfo], aux: list[Aux]) -> dict[int, tuple[int, int]]:
    """Slot -> (keys, keys with an expiry) as an RDB declares them: Redis 7.4+ writes a
    SLOT_INFO record (opcode 244: slot, keys, expires) before each slot's keys, Valkey 8+ a
    ``slot-info`` aux field ``"slot,keys,expires"`` (rdb.c, rdbSaveDb), per db."""
    out: dict[int, tuple[int, int]] = {}

    def add(slot: int, keys: int, expires: int) -> None:
        old = out.get(slot, (0, 0))
        out[slot] = (old[0] + keys, old[1] + expires)

    for rec in records:
        add(rec.slot, rec.keys, rec.expires)
    for field in aux:
        if field.name == b"slot-info":
            parts = field.value.split(b",")
            if len(parts) == 3 and all(p.strip().isdigit() for p in parts):
                slot, keys, expires = (int(p) for p in parts)
                add(slot, keys, expires)
    return out
