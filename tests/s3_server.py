"""A real S3 endpoint for the object-storage and Delta Lake tests: moto's standalone server, started as a
subprocess on 127.0.0.1 (deltalake hangs against an in-process moto), one per test worker.

Loaded as a plugin by conftest.py. `s3` gives a test its own fresh bucket and points the standard AWS
variables (endpoint, dummy credentials, region) at the server, the way a user's environment would.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class S3:
    """A bucket on the moto server."""

    endpoint: str
    bucket: str

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def keys(self) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def pending_uploads(self) -> list[str]:
        """Keys of multipart uploads started and never completed."""
        return [u["Key"] for u in self.client().list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_moto(directory: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """moto_server on a free loopback port (its log in `directory`) until the block ends; yields the endpoint."""
    pytest.importorskip("moto")
    executable = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    port = _free_port()
    log = (directory / "moto.log").open("wb")
    process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log, env=env)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start (see {log.name})") from None
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto_server for the whole test session of this worker."""
    with running_moto(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    """A fresh bucket, and the AWS environment (endpoint, dummy credentials) pointing at it."""
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",  # deltalake: the endpoint is plain http on loopback
    }.items():
        monkeypatch.setenv(name, value)
    bucket = S3(moto_endpoint, f"cdr-{uuid.uuid4().hex[:12]}")
    bucket.client().create_bucket(Bucket=bucket.bucket)
    return bucket
