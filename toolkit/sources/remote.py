"""Backups in object storage or on a web server (``s3://``, ``gs://``, ``az://``, ``http(s)://``),
read through fsspec with the providers' usual credentials (AWS environment, profile or
instance role; Google application default credentials; Azure's environment). Nothing here
prints a secret: a URL is shown without its user, password and query (a presigned URL's
signature is in its query)."""

from __future__ import annotations

import os
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from toolkit.errors import BackupIOError

# scheme: (the package fsspec needs for it, how to install it)
SCHEMES = {
    "s3": ("s3fs", "pip install s3fs"),
    "gs": ("gcsfs", "pip install 'rbkit[gcs]'"),
    "gcs": ("gcsfs", "pip install 'rbkit[gcs]'"),
    "az": ("adlfs", "pip install 'rbkit[azure]'"),
    "abfs": ("adlfs", "pip install 'rbkit[azure]'"),
    "http": ("aiohttp", "pip install aiohttp"),
    "https": ("aiohttp", "pip install aiohttp"),
}
# Environment variables whose values never appear in a message, whatever a library says.
SECRET_VARS = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_SECRET",
)


def is_remote(spec: str) -> bool:
    """Does ``spec`` name object storage or a web server (a URL rbkit reads through fsspec)?"""
    scheme, sep, _ = spec.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def shown(url: str) -> str:
    """``url`` as it may be printed: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def name_of(url: str) -> str:
    """The object's file name (the last part of its path)."""
    return urlsplit(url).path.rstrip("/").rpartition("/")[2] or "backup"


def storage_options(url: str) -> dict[str, Any]:
    """fsspec options: for S3, the endpoint of an S3-compatible store (MinIO, a local test
    server) from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, as the AWS tools read them."""
    if urlsplit(url).scheme.lower() == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            return {"client_kwargs": {"endpoint_url": endpoint}}
    return {}


def open_remote(url: str) -> tuple[IO[bytes], int | None]:
    """The object at ``url``, open for reading in order, and its size when the store says it.
    Raises BackupIOError (a missing package named with its extra, a missing object, refused
    credentials) in words that carry no secret."""
    scheme = urlsplit(url).scheme.lower()
    package, install = SCHEMES[scheme]
    try:
        import fsspec

        fs, path = fsspec.core.url_to_fs(url, **storage_options(url))
    except ImportError:
        raise BackupIOError(
            f"{shown(url)}: reading {scheme}:// needs the package {package} ({install})"
        ) from None
    except Exception as e:
        raise BackupIOError(f"{shown(url)}: {clean(e, url)}") from None
    try:
        size = fs.size(path)
    except (FileNotFoundError, PermissionError) as e:
        raise BackupIOError(f"{shown(url)}: {clean(e, url)}") from None
    except Exception:  # a web server that gives no length: the copy finds the size
        size = None
    try:
        f = fs.open(path, "rb", block_size=8 << 20, cache_type="none")
    except Exception as e:
        raise BackupIOError(f"{shown(url)}: {clean(e, url)}") from None
    return f, int(size) if size is not None else None


def clean(error: BaseException, url: str) -> str:
    """A library's error in one line, with the URL as shown and no secret in it."""
    if isinstance(error, FileNotFoundError):
        return "no such object"
    if isinstance(error, PermissionError):
        text = f"access denied ({error})"
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    text = text.replace(url, shown(url))
    for var in SECRET_VARS:
        value = os.environ.get(var)
        if value:
            text = text.replace(value, "***")
    parts = urlsplit(url)
    for secret in (parts.password, parts.query):
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())[:300]
