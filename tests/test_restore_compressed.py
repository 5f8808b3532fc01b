"""A gzip backup restored into real servers: ``--to`` (every key compared with what a server
that loaded the plain file itself holds), ``--stage-only`` (the drill's scratch server loads
the decompressed copy), and a cut-short gzip refused by both."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import invoke_cli
from sources_support import compressed
from test_network_restore import assert_holds_file, fixture, restore, target

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
