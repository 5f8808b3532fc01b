"""Backups in object storage and on a web server, through real local servers: moto's S3
server (ThreadedMotoServer, on a free port; rbkit reaches it by AWS_ENDPOINT_URL as it would
MinIO) and http.server serving a temp dir. What rbkit reports equals the plain file's report;
a missing object is an error naming it; no secret of a URL or the environment is printed."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import invoke_cli
from moto.server import ThreadedMotoServer
from sources_support import ROOT, compressed, content, run_rbkit

from toolkit.server.process import free_port

ALL_TYPES = ROOT / "fixtures/rdb/redis-7.0-all-types.rdb"
SECRET = "s3cr3t-never-printed"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A real S3 API on 127.0.0.1 (moto server mode) with a bucket 'backups'."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = s3_client(endpoint)
    client.create_bucket(Bucket="backups")
    client.upload_file(str(ALL_TYPES), "backups", "redis/dump.rdb")
    yield endpoint
    server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )


def s3_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def rbkit(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = run_rbkit(*args, env=env)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def plain_report() -> dict:
    return json.loads(invoke_cli("check", ALL_TYPES, "--json").stdout)


def test_s3_plain_and_compressed(s3: str, tmp_path: Path) -> None:
    client = s3_client(s3)
    packed = compressed(ALL_TYPES, "zstd", tmp_path)
    client.upload_file(str(packed), "backups", "redis/dump.rdb.zst")
    for key in ("redis/dump.rdb", "redis/dump.rdb.zst"):
        done = rbkit("check", f"s3://backups/{key}", "--json", env=s3_env(s3))
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["path"] == f"s3://backups/{key}"
        assert content(report) == content(plain_report())
        assert SECRET not in done.stdout + done.stderr


def test_s3_missing_object_and_bucket(s3: str) -> None:
    done = rbkit("check", "s3://backups/redis/nothere.rdb", env=s3_env(s3))
    assert done.returncode == 2
    assert "error: s3://backups/redis/nothere.rdb: no such object" in done.stderr
    done = rbkit("check", "s3://nobucket/dump.rdb", env=s3_env(s3))
    assert done.returncode == 2 and done.stderr.startswith("error: s3://nobucket/dump.rdb: ")
    assert SECRET not in done.stdout + done.stderr


def test_s3_drill(s3: str) -> None:
    """restore --stage-only from S3: the scratch server loads the copy."""
    done = rbkit("restore", "s3://backups/redis/dump.rdb", "--stage-only", "--json", env=s3_env(s3))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["backup"] == "s3://backups/redis/dump.rdb"
    assert report["verified"] is True


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """http.server serving ``tmp_path/www`` on a free loopback port."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_http_plain_gzip_and_missing(web: tuple[str, Path]) -> None:
    base, root = web
    (root / "dump.rdb").write_bytes(ALL_TYPES.read_bytes())
    compressed(ALL_TYPES, "gzip", root)
    for name in ("dump.rdb", "redis-7.0-all-types.rdb.gz"):
        done = rbkit("check", f"{base}/{name}", "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["path"] == f"{base}/{name}"
        assert content(report) == content(plain_report())
    done = rbkit("check", f"{base}/nothere.rdb")
    assert done.returncode == 2
    assert f"error: {base}/nothere.rdb: no such object" in done.stderr


def test_http_secrets_are_not_printed(web: tuple[str, Path]) -> None:
    """A password in the URL and a presigned-style signature in the query stay unprinted."""
    base, root = web
    (root / "dump.rdb").write_bytes(ALL_TYPES.read_bytes())
    host = base.removeprefix("http://")
    for url in (
        f"http://user:{SECRET}@{host}/dump.rdb?X-Amz-Signature={SECRET}",
        f"http://user:{SECRET}@{host}/gone.rdb?X-Amz-Signature={SECRET}",
    ):
        done = rbkit("check", url, "--json")
        assert SECRET not in done.stdout + done.stderr
        assert done.returncode in (0, 2)
        assert f"{base}/" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("url", "package", "extra"),
    [("gs://bucket/dump.rdb", "gcsfs", "gcs"), ("az://container/dump.rdb", "adlfs", "azure")],
)
def test_a_missing_optional_package_is_named(url: str, package: str, extra: str) -> None:
    """gcsfs and adlfs are extras the test environment does not install."""
    run = invoke_cli("check", url)
    assert run.exit_code == 2
    assert f"needs the package {package} (pip install 'rbkit[{extra}]')" in run.stderr
