"""The one error family every parser raises.

Each error knows the byte offset where reading failed, what was expected there and, when a
key was being read, the db and key. ``str(error)`` is a single line ending with the offset.
"""

from __future__ import annotations

from parsers.printable import printable

# Codes of the checks Redis makes when it loads a value with ``sanitize-dump-payload yes``
# (rdbLoadObject and the *ValidateIntegrity functions); ``FormatError.code`` holds one of these
# or, for anything else, the error's kind (``truncated``, ``corrupt``, ``unsupported``).
BAD_LZF = "bad_lzf"  # an LZF string that does not inflate to its declared length
BAD_LISTPACK = "bad_listpack"
BAD_ZIPLIST = "bad_ziplist"
BAD_INTSET = "bad_intset"
BAD_ZIPMAP = "bad_zipmap"
BAD_QUICKLIST = "bad_quicklist"  # a node container other than 1 or 2, an empty node
BAD_STREAM = "bad_stream"  # entries, master ids, groups, consumers, pending entries
DUPLICATE = "duplicate"  # a set member, sorted set member or hash field stored twice
BAD_SCORE = "bad_score"  # a sorted set score that is NaN or not a number
BAD_FIELD_TTL = "bad_field_ttl"  # a hash field expiry out of range or out of order
BAD_MODULE_VALUE = "bad_module_value"  # a module value's opcode framing


class FormatError(Exception):
    """Input that cannot be read as the format it claims to be."""

    kind = "corrupt"

    def __init__(
        self,
        what: str,
        offset: int,
        *,
        key: bytes | None = None,
        db: int | None = None,
        source: str | None = None,
        code: str | None = None,
    ) -> None:
        self.what = what
        self.code = code or self.kind
        self.offset = offset
        self.key = key
        self.db = db
        self.source = source
        super().__init__(what)

    def __str__(self) -> str:
        where = f"offset {self.offset}"
        if self.key is not None:
            where = f"{where} while reading key {format_key(self.key)}"
            if self.db is not None:
                where = f"{where} in db {self.db}"
        prefix = f"{self.source}: " if self.source else ""
        return f"{prefix}{self.what} at {where}"

    def located(
        self, *, offset: int | None = None, key: bytes | None = None, db: int | None = None
    ) -> FormatError:
        """Fill in the context the raiser did not know; returns self for ``raise ... from``."""
        if offset is not None:
            self.offset = offset
        if key is not None and self.key is None:
            self.key = key
        if db is not None and self.db is None:
            self.db = db
        return self


class TruncatedError(FormatError):
    """The input ends before the structure being read does."""

    kind = "truncated"


class CorruptError(FormatError):
    """Bytes are present but do not form a valid structure."""

    kind = "corrupt"


class UnsupportedError(FormatError):
    """Well-formed input that this parser does not read (a newer version, an unknown type)."""

    kind = "unsupported"


def format_key(key: bytes, limit: int = 80) -> str:
    """A key (or any name from the input) for a one-line message: quoted, escaped as
    :func:`parsers.printable.printable` escapes names, cut after ``limit`` bytes."""
    return f"'{printable(bytes(key[:limit]))}'" + ("..." if len(key) > limit else "")
