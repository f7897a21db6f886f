"""A private S3-compatible server on a loopback port, for the tests and the demo's S3 variant.

It is s3proxy (``org.gaul:s3proxy`` 3.3, fetched by ``make jars`` into ``.jars/s3proxy/``) with its
``filesystem-nio2`` storage backend: every bucket is a folder and every object a file under
``basedir``, so objects survive a stop and a start (or a SIGKILL) of the server — unlike an
in-memory mock, it can be stopped and restarted in the middle of a test to play an S3 outage.

The server checks AWS SigV2/SigV4 signatures against one access key and secret. It accepts a
session token (``X-Amz-Security-Token``) without checking it, so clients can use the same
temporary-credential chain as on AWS.

What clients see, checked against s3proxy 3.3.0 (``tests/integration/test_s3_server.py``):

* Listings, HEAD, multipart uploads, copy and multi-object delete behave as on S3, directory
  markers (``folder/`` keys, which s3a's ``mkdirs`` writes) included. Before 3.3 the filesystem
  backends left an empty marker out of the listing of its own prefix, so s3a could not see a
  directory it had just made (Spark's streaming checkpoint failed): hence 3.3.
* Conditional PUTs are honoured (``If-None-Match: *`` on an existing key: 412), though nothing in
  binlake relies on them; Delta's default S3 log store does not either.
* ``s3proxy.ignore-unknown-headers``: without it the server refuses requests carrying headers it
  does not implement (boto3's ``DeleteObjects`` sends some).
* One difference from S3 remains: deleting a directory marker while a deeper one still exists
  (``a/`` before ``a/b/``) fails with 500, since a marker is a folder on disk. s3a's recursive
  delete removes markers in listing order, so ``delete(a, recursive)`` fails on a tree whose
  parent *and* child folders were both made with ``mkdirs`` (a Spark streaming checkpoint is one).
  Dropping a Delta table (files plus leaf markers only) works; binlake deletes no such tree.

Usage::

    with LocalS3(Path(".run/s3"), port=free_port()) as s3:
        os.environ.update(s3.client_env())
        s3.create_bucket("lake")
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from binlake.devproc import stop_process

MAIN_CLASS = "org.gaul.s3proxy.Main"
# A small heap, and the quick (C1) compiler only, for a server that only ever sees test traffic:
# measured here on a busy 2-core machine, start-up (until it accepts connections) 2-3 s instead of 4-6 s.
JVM_OPTIONS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")

PROPERTIES = """\
s3proxy.endpoint=http://127.0.0.1:{port}
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity={access_key}
s3proxy.credential={secret_key}
s3proxy.ignore-unknown-headers=true
jclouds.provider=filesystem-nio2
jclouds.identity={access_key}
jclouds.credential={secret_key}
jclouds.filesystem.basedir={basedir}
"""

# s3proxy ships no logging config: without one logback logs every Jetty event at DEBUG.
LOGBACK = """\
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>{log}</file>
    <encoder><pattern>%d{{HH:mm:ss.SSS}} %-5level %logger{{36}} - %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="FILE"/></root>
</configuration>
"""


def s3proxy_jars() -> Path:
    """The folder ``make jars`` fills with s3proxy and its dependencies (``$BINLAKE_JARS/s3proxy``)."""
    jars = os.environ.get("BINLAKE_JARS") or str(Path(__file__).resolve().parent.parent / ".jars")
    return Path(jars) / "s3proxy"


class LocalS3:
    """An s3proxy server owned by this process, keeping its objects under ``basedir``.

    ``access_key``/``secret_key`` are the only credentials it accepts; random ones are made when
    not given. ``session_token`` is what :meth:`client_env` hands to clients (the server ignores it).
    """

    def __init__(
        self,
        basedir: Path,
        port: int,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.basedir = basedir.resolve()
        self.port = port
        self.access_key = access_key or "AKIA" + secrets.token_hex(8).upper()
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        self.session_token = session_token or secrets.token_urlsafe(48)
        self.region = region
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``, for ``lake.s3.endpoint`` and boto3's ``endpoint_url``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """The server's own log (warnings and errors only), beside ``basedir``."""
        return self.basedir.parent / f"{self.basedir.name}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client_env(self) -> dict[str, str]:
        """The AWS environment for clients (boto3, Hadoop s3a): session credentials, region, and
        request checksums only when required (s3proxy does not check the newer CRC headers)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }

    def _write_config(self) -> tuple[Path, Path]:
        self.basedir.mkdir(parents=True, exist_ok=True)
        properties = self.basedir.parent / f"{self.basedir.name}.properties"
        logback = self.basedir.parent / f"{self.basedir.name}.logback.xml"
        properties.touch(mode=0o600)  # it holds the secret key: private before anything is written
        properties.write_text(PROPERTIES.format(port=self.port, access_key=self.access_key,
                                                secret_key=self.secret_key, basedir=self.basedir))
        logback.write_text(LOGBACK.format(log=self.log_path))
        return properties, logback

    def start(self, timeout: float = 60.0) -> None:
        """Start the server on the same ``basedir`` and port, and wait until it accepts connections.

        Objects written before a :meth:`stop` are all there again. Fails with the server's log
        when it exits (port taken, jars missing) or does not listen within ``timeout`` seconds.
        """
        if self.running:
            return
        jars = s3proxy_jars()
        if not any(jars.glob("s3proxy-*.jar")):
            raise RuntimeError(f"s3proxy not found in {jars}: run `make jars` (or set BINLAKE_JARS)")
        properties, logback = self._write_config()
        with self.log_path.open("ab") as log:  # the JVM's own messages (logback writes to the same file)
            self.process = subprocess.Popen(
                ["java", *JVM_OPTIONS, f"-Dlogback.configurationFile={logback}", "-cp", f"{jars}/*", MAIN_CLASS,
                 "--properties", str(properties)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                raise RuntimeError(f"s3proxy exited with {code}:\n{self._log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop(hard=True)
        raise TimeoutError(f"s3proxy on port {self.port} did not start within {timeout}s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else "(no log)"

    def stop(self, hard: bool = False) -> None:
        """Stop the server: SIGTERM or, with ``hard``, SIGKILL. Objects stay in ``basedir``; clients
        get connection refused until :meth:`start`."""
        if self.process is None:
            return
        stop_process(self.process, hard, timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> Any:
        """A boto3 S3 client for this server (path-style, the server's session credentials)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            aws_session_token=self.session_token,
            config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )

    def create_bucket(self, name: str) -> str:
        """Create bucket ``name`` (3-63 lowercase letters, digits, hyphens) and return its name."""
        self.client().create_bucket(Bucket=name)
        return name

    def __enter__(self) -> LocalS3:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
