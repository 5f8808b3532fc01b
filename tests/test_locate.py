"""Which file a BACKUP argument means: files, appendonlydir/, data dirs with and without a
redis.conf, and the config reader itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.check.locate import AOF, MULTIPART, RDB, locate
from toolkit.cli.app import app
from toolkit.errors import BackupIOError, ConfigError
from toolkit.server.config import read_config, split_args

FIXTURE = Path(__file__).parent.parent / "fixtures" / "rdb" / "redis-7.0-strings-only.rdb"
MANIFEST = b"file appendonly.aof.1.base.rdb seq 1 type b\n"


def data_dir(tmp_path: Path, *, rdb: bool = True, aof_dir: bool = False) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    if rdb:
        shutil.copy(FIXTURE, d / "dump.rdb")
    if aof_dir:
        (d / "appendonlydir").mkdir()
        (d / "appendonlydir" / "appendonly.aof.manifest").write_bytes(MANIFEST)
    return d


def conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "redis.conf"
    path.write_text(text)
    return path


def test_an_rdb_file_is_an_rdb() -> None:
    assert locate(FIXTURE).kind == RDB


def test_a_manifest_and_its_folder_are_a_multipart_aof(tmp_path: Path) -> None:
    d = data_dir(tmp_path, rdb=False, aof_dir=True)
    manifest = d / "appendonlydir" / "appendonly.aof.manifest"
    assert locate(manifest).kind == MULTIPART
    found = locate(d / "appendonlydir")
    assert (found.kind, found.path) == (MULTIPART, manifest)


def test_a_file_of_commands_is_an_aof(tmp_path: Path) -> None:
    path = tmp_path / "whatever.bin"
    path.write_bytes(b"*1\r\n$4\r\nPING\r\n")
    assert locate(path).kind == AOF


def test_a_data_dir_without_config_means_dump_rdb_and_says_so(tmp_path: Path) -> None:
    d = data_dir(tmp_path, aof_dir=True)
    found = locate(d)
    assert (found.kind, found.path) == (RDB, d / "dump.rdb")
    assert any("defaults" in n for n in found.notes)
    assert any("appendonlydir" in n and "not loaded" in n for n in found.notes)


def test_appendonly_yes_means_the_aof_and_the_dump_is_ignored(tmp_path: Path) -> None:
    d = data_dir(tmp_path, aof_dir=True)
    config = read_config(conf(tmp_path, f"dir {d}\nappendonly yes\n"))
    found = locate(d, config)
    assert (found.kind, found.path) == (MULTIPART, d / "appendonlydir" / "appendonly.aof.manifest")
    assert any("dump.rdb is here too and Redis ignores it" in n for n in found.notes)


def test_appendonly_yes_with_a_single_file_aof(tmp_path: Path) -> None:
    d = data_dir(tmp_path, rdb=False)
    (d / "appendonly.aof").write_bytes(b"*1\r\n$4\r\nPING\r\n")
    found = locate(d, read_config(conf(tmp_path, "appendonly yes\n")))
    assert (found.kind, found.path) == (AOF, d / "appendonly.aof")


def test_appendonly_yes_without_any_aof_would_start_empty(tmp_path: Path) -> None:
    d = data_dir(tmp_path)
    with pytest.raises(BackupIOError, match="start empty"):
        locate(d, read_config(conf(tmp_path, "appendonly yes\n")))


def test_an_aof_without_appendonly_is_not_loaded(tmp_path: Path) -> None:
    d = data_dir(tmp_path, rdb=False, aof_dir=True)
    (d / "appendonlydir" / "appendonly.aof.manifest").unlink()
    (d / "appendonly.aof").write_bytes(b"*1\r\n$4\r\nPING\r\n")
    with pytest.raises(BackupIOError, match="only with appendonly yes"):
        locate(d)


def test_config_names_are_used(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(FIXTURE, d / "backup.rdb")
    config = read_config(conf(tmp_path, 'dbfilename "backup.rdb"\ndir data\n'))
    assert config.data_dir == tmp_path / "data"
    assert locate(d, config).path == d / "backup.rdb"


def test_config_lines_split_like_redis() -> None:
    assert split_args('dir "/var/lib/my redis"') == ["dir", "/var/lib/my redis"]
    assert split_args("dbfilename 'a b.rdb'") == ["dbfilename", "a b.rdb"]
    assert split_args(r'x "\x41\n"') == ["x", "A\n"]
    with pytest.raises(ConfigError):
        split_args('dir "unbalanced')


def test_config_includes_and_last_wins(tmp_path: Path) -> None:
    (tmp_path / "extra.conf").write_text("appendonly yes\ndbfilename two.rdb\n")
    path = conf(tmp_path, "dbfilename one.rdb\ninclude extra.conf\nappenddirname aofs\n")
    config = read_config(path)
    assert (config.get("dbfilename"), config.appendonly, config.get("appenddirname")) == (
        "two.rdb",
        True,
        "aofs",
    )


def test_cli_checks_what_redis_would_load_and_notes_it(tmp_path: Path) -> None:
    d = data_dir(tmp_path)
    path = conf(tmp_path, f"dir {d}\nappendonly no\n")
    result = CliRunner().invoke(app, ["check", str(d), "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "VALID" in result.stdout and str(d / "dump.rdb") in result.stdout


def test_cli_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["check", str(FIXTURE), "--config", str(tmp_path / "no")])
    assert result.exit_code == 2
    assert "error:" in result.stderr


def test_an_empty_aof_file_is_an_empty_aof_not_a_truncated_rdb(tmp_path: Path) -> None:
    path = tmp_path / "appendonly.aof"
    path.write_bytes(b"")
    assert locate(path).kind == AOF
    result = CliRunner().invoke(app, ["check", "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert '"keys": 0' in result.stdout
