"""Compressed backups restored into real servers: gzip ``--to`` (every key compared with what a
server that loaded the plain file itself holds), ``--stage-only`` (the drill's scratch server
loads the decompressed copy), an xz file restore into a target's data dir (its DEBUG DIGEST
against a server that loaded the plain file), and a cut-short gzip refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import invoke_cli
from restore_support import make_target, rbkit
from sources_support import compressed
from test_network_restore import assert_holds_file, fixture, restore, target

__all__ = ["make_target"]  # the fixture

NAME = "redis-7.0-all-types"


def test_gzip_restore_to_a_server(tmp_path: Path) -> None:
    plain = fixture(NAME)
    packed = compressed(plain, "gzip", tmp_path, name="backup.gz")
    with target("7.0") as server:
        code, report, err = restore(packed, server, "--yes")
        assert code == 0, (report or {}).get("reasons") or err
        assert report["outcome"] == "verified"
        assert report["backup"] == str(packed)
        assert assert_holds_file(server, plain) > 0


def test_gzip_drill(tmp_path: Path) -> None:
    packed = compressed(fixture(NAME), "gzip", tmp_path)
    run = invoke_cli("restore", packed, "--stage-only", "--json", "--tmpdir", tmp_path)
    assert run.exit_code == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["verified"] is True and report["backup"] == str(packed)
    assert not list(tmp_path.glob("rbkit-src-*"))


def test_cut_short_gzip_is_refused(tmp_path: Path) -> None:
    packed = compressed(fixture(NAME), "gzip", tmp_path)
    data = packed.read_bytes()
    packed.write_bytes(data[:-4])  # only the trailer is missing: the RDB itself is whole
    run = invoke_cli("restore", packed, "--stage-only", "--json")
    assert run.exit_code == 1
    assert json.loads(run.stdout)["outcome"] == "refused"
    with target("7.0") as server:
        code, report, _ = restore(packed, server, "--yes")
        assert code == 1 and report["outcome"] == "refused"
        assert "gzip stream ends at compressed byte" in json.dumps(report)


def test_xz_file_restore_into_a_data_dir(make_target, tmp_path: Path) -> None:
    plain = fixture(NAME)
    reference = make_target("7.0", start=False)
    shutil.copyfile(plain, reference.data / "dump.rdb")
    reference.start()
    expected = reference.digest()
    t = make_target("7.0", fill=True)
    packed = compressed(plain, "xz", tmp_path, name="nightly.xz")
    run = rbkit("restore", packed, "--config", t.conf, "--yes", "--json", "--tmpdir", tmp_path)
    assert run.code == 0, run.text
    report = run.json()
    assert report["outcome"] == "restored"
    assert any(n.startswith("xz-compressed") for n in report["notes"])
    assert t.digest() == expected
    assert not list(tmp_path.glob("rbkit-src-*"))
