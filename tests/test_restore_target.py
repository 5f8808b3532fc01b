"""How the restore finds, reaches and runs its target: data files owned by the server's own
user (the target runs as `redis`, started with runuser, in the foreground or daemonized), and
``--url`` mode (the target described by CONFIG GET and INFO's config_file), with a password
that must never show in any output or in the journal.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import binary
from restore_support import (
    JOURNAL,
    OLD_KEYS,
    RDB,
    REDIS_UID,
    Target,
    alive_counts,
    make_target,
    rbkit,
)

__all__ = ["make_target"]  # the fixture

BACKUP = RDB / "redis-7.0-all-types.rdb"


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory the `redis` user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="rbkit-restore-owner-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


@pytest.mark.parametrize(
    ("daemonize", "appendonly"),
    [(False, False), (True, True)],
    ids=["foreground-appendonly-no", "daemonized-appendonly-yes"],
)
def test_files_owned_by_the_servers_user(
    world_readable_dir: Path, daemonize: bool, appendonly: bool
) -> None:
    """The target runs as redis and owns its files (mode 0640). --start-cmd starts it with
    runuser, as a foreground server (the command never returns) or daemonized; the installed
    files get the owner and mode of the files they replace, and the server loads them."""
    t = Target(
        world_readable_dir / "target",
        binary("7.0"),
        user="redis",
        daemonize=daemonize,
        appendonly=appendonly,
    )
    try:
        t.start()
        assert process_uid(t.pid()) == REDIS_UID
        t.fill_old()
        t.save_now()
        data_files = [p for p in t.data.rglob("*") if p.is_file()]
        assert data_files and all(p.stat().st_uid == REDIS_UID for p in data_files)
        for p in data_files:
            p.chmod(0o640)
        start = shlex.join(t.start_command())
        run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json", "--start-cmd", start)
        assert run.code == 0, run.text
        report = run.json()
        assert report["outcome"] == "restored"
        install = next(s for s in report["steps"] if s["name"] == "install")
        assert install["detail"].endswith(f"owner {REDIS_UID}:{os.stat(t.data).st_gid} mode 640")
        installed = t.data / report["installed"][0]
        paths = [installed, *installed.rglob("*")] if installed.is_dir() else [installed]
        for p in paths:
            st = p.stat()
            assert st.st_uid == REDIS_UID, p
            if p.suffix not in (".manifest", ".aof"):  # those the server itself rewrites
                assert stat.S_IMODE(st.st_mode) == (0o750 if p.is_dir() else 0o640), p
        assert process_uid(t.pid()) == REDIS_UID  # started by --start-cmd, as redis
        assert t.counts() == alive_counts(BACKUP)
        # The kept files keep their owner.
        [folder] = t.rollback_dirs()
        kept = [p for p in folder.rglob("*") if p.is_file() and p.name != JOURNAL]
        assert kept and all(p.stat().st_uid == REDIS_UID for p in kept)
        t.restart()  # started as redis again, from the installed files
        assert t.counts() == alive_counts(BACKUP)
    finally:
        t.cleanup()


# -- --url -----------------------------------------------------------------------------------

PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def protected(make_target) -> Target:
    return make_target("7.0", fill=True, password=PASSWORD)


def no_password(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text


def test_url_mode_reads_config_get_and_info(protected: Target) -> None:
    t = protected
    url = f"redis://:{PASSWORD}@127.0.0.1:{t.port}"
    dry = rbkit("restore", BACKUP, "--url", url, "--dry-run")
    assert dry.code == 0, dry.text
    assert f"target: redis 7.0.15 at redis://127.0.0.1:{t.port} (running)" in dry.out
    run = rbkit("restore", BACKUP, "--url", url, "--yes", "--json")
    assert run.code == 0, run.text
    report = run.json()
    assert report["outcome"] == "restored"
    target = report["target"]
    assert target["config_file"] == str(t.conf)  # from INFO server config_file
    assert f"config file {t.conf} (INFO server config_file)" in report["notes"]
    assert target["data_dir"] == str(t.data)
    assert {target["sources"][n] for n in ("dir", "dbfilename", "appendonly")} == {"CONFIG GET"}
    assert target["address"] == f"redis://127.0.0.1:{t.port}"
    assert t.counts() == alive_counts(BACKUP)
    journal = Path(report["journal"]).read_text()
    no_password(dry.out, dry.err, run.out, run.err, journal)
    assert f"redis://127.0.0.1:{t.port}" in journal


def test_password_from_rediscli_auth_and_config(protected: Target) -> None:
    t = protected
    bare = f"redis://127.0.0.1:{t.port}"
    denied = rbkit("restore", BACKUP, "--url", bare, "--yes")
    assert denied.code == 2
    assert denied.err.strip() == (
        f"error: {bare}: the server needs a password (-a PASSWORD, REDISCLI_AUTH or the URL)"
    )
    text = rbkit("restore", BACKUP, "--url", bare, "--yes", env={"REDISCLI_AUTH": PASSWORD})
    assert text.code == 0, text.text
    assert "RESTORED" in text.out
    # Killed after install, then rolled back by --rollback DIR: the password comes from the
    # config file the journal names.
    killed = rbkit("restore", BACKUP, "--config", t.conf, "--yes", kill_after="install")
    assert killed.code == -9
    journal = (t.data / JOURNAL).read_text()
    back = rbkit("restore", "--rollback", t.data)
    assert back.code == 0, back.text
    assert t.counts() == alive_counts(BACKUP)  # the first restore's result, kept
    no_password(text.out, text.err, killed.out, killed.err, journal, back.out, back.err)
    for path in t.data.rglob(JOURNAL):
        no_password(path.read_text())


def test_running_config_that_differs_from_the_file_is_refused(protected: Target) -> None:
    """CONFIG SET appendonly yes at runtime: the server would restart with the file's `no`."""
    t = protected
    c = t.client()
    c.config_set("appendonly", "yes")
    c.close()
    url = f"redis://:{PASSWORD}@127.0.0.1:{t.port}"
    run = rbkit("restore", BACKUP, "--url", url, "--yes")
    assert run.code == 1
    assert (
        f"reason: the running server has appendonly 'yes' but {t.conf} says 'no': it restarts "
        "with the file's; make them agree first (CONFIG REWRITE, or edit the file)"
    ) in run.out
    assert t.counts() == {0: OLD_KEYS, 3: 1}
    wrong = rbkit("restore", BACKUP, "--url", f"redis://:wrong@127.0.0.1:{t.port}", "--yes")
    assert wrong.code == 2
    assert (
        wrong.err.strip() == f"error: redis://127.0.0.1:{t.port}: the server refused the password"
    )
    no_password(run.out, run.err)
