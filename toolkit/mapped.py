"""Files mapped read-only for the parsers, and their pages released behind a reader.

Mapped pages a reader has passed still count in its RSS; releasing them keeps memory flat
however large the file is.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable, Iterator
from pathlib import Path

# Pages this far behind the reader are released (a little slack for look-backs).
RELEASE_LAG = 1 << 20


@contextlib.contextmanager
def mapped(path: Path) -> Iterator[mmap.mmap | None]:
    """``path`` mapped read-only, or None when it is empty (which cannot be mapped)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            yield None
            return
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield mm
        finally:
            # Views of the map may outlive an exception's traceback; then the map closes
            # when they are collected, and the original error is kept.
            with contextlib.suppress(BufferError):
                mm.close()


def release_behind(mm: mmap.mmap, offset: int, released: int) -> int:
    """Release the pages from ``released`` to RELEASE_LAG before ``offset``; the new mark."""
    upto = (offset - RELEASE_LAG) // mmap.PAGESIZE * mmap.PAGESIZE
    if upto > released:
        mm.madvise(mmap.MADV_DONTNEED, released, upto - released)
        return upto
    return released


def releasing_hook(
    mm: mmap.mmap, progress: Callable[[int, int], None] | None
) -> Callable[[int], None]:
    """A walker's ``on_progress``: release the pages behind the offset, tell ``progress``
    (offset, size)."""
    released = 0
    size = len(mm)

    def hook(offset: int) -> None:
        nonlocal released
        released = release_behind(mm, offset, released)
        if progress is not None:
            progress(offset, size)

    return hook
