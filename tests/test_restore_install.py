"""``rbkit restore BACKUP --config redis.conf`` into real, running targets: what gets installed
where, and that the server holds the backup's keys after the restore and after a restart.

Each target has its own config file and data dir and already holds "old" data; after the
restore its keyspace must equal the fixture's expected JSON (less the keys that had expired),
the old data must sit in the rollback folder, and a plain restart (stop, start from the config
file) must bring the same keys back: the appendonly yes trap (Redis ignoring dump.rdb), the
shutdown save of a server with save points, an AOF backup into appendonly no.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import redis
from conftest import falkordb
from restore_support import (
    AOF,
    JOURNAL,
    LOCK,
    OLD_KEYS,
    RDB,
    Target,
    alive_counts,
    file_keys,
    make_target,
    rbkit,
)

__all__ = ["make_target"]  # the fixture


def restore(t: Target, backup: Path, *extra: str) -> dict:
    run = rbkit("restore", backup, "--config", t.conf, "--yes", "--json", *extra)
    assert run.code == 0, run.text
    report = run.json()
    assert report["outcome"] == "restored", report
    assert report["verification"]["verified"] and report["verification"]["key_names_compared"]
    return report


def assert_holds(t: Target, backup: Path) -> None:
    """The live keyspace is the backup's (per-db counts from its expected JSON), no old key."""
    assert t.counts() == alive_counts(backup)
    assert not t.keys(0, "old:*") and not t.keys(3, "old:*")


def assert_cleaned_up(t: Target) -> None:
    assert not (t.data / JOURNAL).exists() and not (t.data / LOCK).exists()
    assert not list(t.data.glob(".rbkit-install-*"))


def test_rdb_into_appendonly_no_keeps_the_old_data(make_target) -> None:
    t = make_target("7.0", fill=True)
    backup = RDB / "redis-7.0-all-types.rdb"
    report = restore(t, backup)
    assert_holds(t, backup)
    assert (t.data / "dump.rdb").read_bytes() == backup.read_bytes()
    [folder] = t.rollback_dirs()
    assert report["rollback_dir"] == str(folder) and report["kept"] == ["dump.rdb"]
    # The old data, saved on the way down, is in the rollback folder with the journal.
    assert file_keys(folder / "dump.rdb") == OLD_KEYS + 1
    assert (folder / JOURNAL).is_file()
    assert_cleaned_up(t)
    assert [s["name"] for s in report["steps"]] == [
        "preflight", "copy", "gate", "fit", "stage", "save", "stop", "keep", "install", "start",
        "verify",
    ]  # fmt: skip
    t.restart()
    assert_holds(t, backup)


# -- appendonly yes: the RDB must become what the server loads -------------------------------

AOF_YES = [
    # (target version, backup, extra config, what must be installed)
    ("6.2", RDB / "redis-6.2-all-types.rdb", {}, "appendonly.aof"),
    ("7.0", RDB / "redis-7.0-all-types.rdb", {}, "appendonlydir/appendonly.aof.1.base.rdb"),
    (
        "7.0",
        RDB / "redis-6.2-all-types.rdb",
        {"appenddirname": "aof-prod", "appendfilename": "prod.aof", "dbfilename": "prod.rdb"},
        "aof-prod/prod.aof.1.base.rdb",
    ),
    ("8.2", RDB / "redis-8.2-all-types.rdb", {}, "appendonlydir/appendonly.aof.1.base.rdb"),
]


@pytest.mark.parametrize(
    ("version", "backup", "extra", "installed"),
    AOF_YES,
    ids=["6.2", "7.0", "7.0-custom-names", "8.2-modules"],
)
def test_rdb_into_appendonly_yes_survives_a_restart(
    make_target, version: str, backup: Path, extra: dict[str, str], installed: str
) -> None:
    modules = [falkordb()] if version == "8.2" else []
    t = make_target(version, fill=True, appendonly=True, modules=modules, extra=extra)
    restore(t, backup)
    assert_holds(t, backup)
    # Installed as it is (a 6.2 server appends the DELs of keys that expire to its AOF).
    assert (t.data / installed).read_bytes().startswith(backup.read_bytes())
    if version != "6.2":
        aofname = extra.get("appendfilename", "appendonly.aof")
        manifest = (t.data / installed).parent / f"{aofname}.manifest"
        assert manifest.read_text().splitlines()[0] == f"file {Path(installed).name} seq 1 type b"
    [folder] = t.rollback_dirs()
    assert_cleaned_up(t)
    t.restart()
    assert_holds(t, backup)
    # The kept AOF holds the old data.
    kept = folder / (extra.get("appendfilename", "appendonly.aof"))
    if version != "6.2":
        kept = folder / extra.get("appenddirname", "appendonlydir") / f"{kept.name}.manifest"
    assert file_keys(kept) == OLD_KEYS + 1


# -- AOF backups ----------------------------------------------------------------------------

AOF_CASES = [
    # (target version, appendonly, backup, what must be installed)
    ("7.0", True, AOF / "redis-7.0-rdb-base" / "appendonlydir", "appendonlydir"),
    # 8.2-rdb-base, not -aof-base: replaying its GRAPH.QUERY makes FalkorDB write (and later
    # delete) a telemetry{g} stream, which a read at the wrong moment sees.
    ("8.2", True, AOF / "redis-8.2-rdb-base" / "appendonlydir", "appendonlydir"),
    ("7.0", True, AOF / "redis-6.2-preamble.aof", "appendonly.aof"),
    ("6.2", True, AOF / "redis-6.2-plain.aof", "appendonly.aof"),
    ("7.0", False, AOF / "redis-7.0-aof-base" / "appendonlydir", "dump.rdb"),
]


@pytest.mark.parametrize(
    ("version", "appendonly", "backup", "installed"),
    AOF_CASES,
    ids=[
        "multipart-7.0",
        "multipart-8.2",
        "single-preamble-7.0",
        "single-plain-6.2",
        "aof-to-rdb-7.0",
    ],
)
def test_aof_backup(
    make_target, version: str, appendonly: bool, backup: Path, installed: str
) -> None:
    modules = [falkordb()] if version == "8.2" else []
    t = make_target(version, fill=True, appendonly=appendonly, modules=modules)
    report = restore(t, backup)
    assert report["installed"] == [installed]
    assert_holds(t, backup)
    path = t.data / installed
    if installed == "appendonlydir" and backup.is_dir():
        # Every file of the multi-part AOF, as it was (the server appends the DELs of keys
        # that expire to its last incr file, and 8.2 rewrites the manifest's offsets).
        for f in backup.iterdir():
            if f.suffix == ".manifest":
                listed = [line.split()[1] for line in (path / f.name).read_text().splitlines()]
                assert listed == [line.split()[1] for line in f.read_text().splitlines()]
            else:
                assert (path / f.name).read_bytes().startswith(f.read_bytes())
    elif installed == "dump.rdb":  # converted by the stage: an RDB of the target's version
        assert path.read_bytes()[:9] == b"REDIS0010"
        assert any("turns it into an RDB" in n for n in report["notes"])
    elif version == "6.2":
        assert path.read_bytes().startswith(backup.read_bytes())
    assert_cleaned_up(t)
    t.restart()
    assert_holds(t, backup)


# -- save points and writes going on ---------------------------------------------------------


class Writer(threading.Thread):
    """Writes live:N keys until the server goes away (never into the restarted one)."""

    def __init__(self, t: Target) -> None:
        super().__init__(daemon=True)
        self.client = t.client()
        self.written = 0
        self.started_writing = threading.Event()

    def run(self) -> None:
        try:
            while True:
                self.client.set(f"live:{self.written}", "x")
                self.written += 1
                self.started_writing.set()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass
        finally:
            self.started_writing.set()
            self.client.close()


@pytest.mark.parametrize("stop", ["shutdown", "stop-cmd"])
def test_save_points_and_writes_do_not_win(make_target, stop: str) -> None:
    """With `save 1 1` and a client writing, every write it got an answer for lands in the
    rollback folder; the server restarts with the backup, and keeps it across another
    restart."""
    t = make_target("7.0", fill=True, save="1 1")
    writer = Writer(t)
    writer.start()
    assert writer.started_writing.wait(10)
    backup = RDB / "redis-7.0-strings-only.rdb"
    extra = ["--stop-cmd", f"kill -TERM {t.pid()}"] if stop == "stop-cmd" else []
    restore(t, backup, *extra)
    writer.join(30)
    assert not writer.is_alive() and writer.written > 0
    assert_holds(t, backup)
    assert not t.keys(0, "live:*")
    [folder] = t.rollback_dirs()
    kept = file_keys(folder / "dump.rdb")
    # Every write until the stop: by SHUTDOWN SAVE, or with --stop-cmd by the BGSAVE taken
    # with writes held off until the stop (a last write may have been applied without its
    # reply reaching the writer).
    assert OLD_KEYS + 1 + writer.written <= kept <= OLD_KEYS + 2 + writer.written
    # A restart with save points (SHUTDOWN saves) keeps the backup's keys.
    t.restart(nosave=False)
    assert_holds(t, backup)
