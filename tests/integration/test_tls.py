"""TLS to the source, against a private MariaDB started with a test CA, a server certificate naming
127.0.0.1 only and ``require_secure_transport=ON`` (plain TCP connections refused by the server).

* verify-identity with the right CA: capture, full load (JDBC on the driver and the in-JVM
  executors) and merge, and the lake equals the source value by value; validation agrees.
* A CA that did not sign the server's certificate: refused by the control connection, the capture
  and the full load (clear errors naming source.tls.ca_file), and by the JDBC read itself.
* A host name the certificate does not hold (``localhost``): refused in verify-identity by pymysql and
  Connector/J; accepted in verify-ca (the name is not checked there).
* ``disabled`` against this server: the server refuses; ``required`` against the session's plain
  server: binlake refuses before logging in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for
from conftest import include_schema_rules
from tls_support import Certificates, make_certificates

from binlake.config import PipelineConfig, parse_config
from binlake.devdb import LocalMariaDB, free_port
from binlake.lake import table_key
from binlake.merge.job import run as run_merge
from binlake.snapshot.job import run_full_load
from binlake.snapshot.reading import jdbc_source
from binlake.source import SourceTlsError, SourceUnreachableError, connect
from binlake.validation import validate

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, certs: Certificates) -> Iterator[LocalMariaDB]:
    server = LocalMariaDB(tmp_path_factory.mktemp("tls-mariadb") / "data", free_port(), server_id=7,
                          extra_cnf=certs.server_cnf(require_secure_transport=True))
    server.start()
    yield server
    server.stop()


def tls_config(server: LocalMariaDB, lake: Path, database: str, tls: dict[str, Any],
               host: str = "127.0.0.1") -> PipelineConfig:
    return parse_config({
        "name": "tls",
        "source": {"host": host, "port": server.port, "user": "root", "password_env": None, "server_id": 4711,
                   "tls": tls},
        "lake": {"root": str(lake)},
        "table_mappings": include_schema_rules(database),
        "capture": {"start": "end", "flush_seconds": 0.5},
        "full_load": {"chunk_rows": 40},
        "merge": {"trigger_seconds": 1},
        "spark": {"master": "local[2]"},
    }, Path("tls.yaml"))


def jdbc_select_one(spark: Any, config: PipelineConfig) -> list[Any]:
    jdbc = jdbc_source(config)
    return list(spark.read.jdbc(jdbc.url, "(SELECT 1 AS one) AS t", properties=jdbc.properties).collect())


def jdbc_refusal(spark: Any, config: PipelineConfig) -> str:
    """The messages of the Java exception chain of a JDBC read that must fail."""
    with pytest.raises(Exception) as failure:
        jdbc_select_one(spark, config)
    messages, throwable = [str(failure.value)], getattr(failure.value, "_origin", None)
    while throwable is not None:
        messages.append(f"{throwable.getClass().getName()}: {throwable.getMessage()}")
        throwable = throwable.getCause()
    return " | ".join(messages)


def session_cipher(config: PipelineConfig) -> str:
    with connect(config.source) as conn, conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return str(cur.fetchall()[0][1])


@pytest.mark.slow  # a full pipeline: about 3 minutes on a shared 2-core machine
def test_verify_identity_capture_full_load_and_merge(
    tls_server: LocalMariaDB, certs: Certificates, spark: Any, tmp_path: Path
) -> None:
    database = "tls_e2e"
    tls_server.execute(f"DROP DATABASE IF EXISTS {database}")
    tls_server.execute(f"CREATE DATABASE {database}")
    tls_server.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT)", database)
    tls_server.execute("INSERT INTO t VALUES " + ",".join(f"({i}, 'v{i}', {i * i})" for i in range(1, 301)), database)
    config = tls_config(tls_server, tmp_path / "lake", database,
                        {"mode": "verify-identity", "ca_file": str(certs.ca)})
    assert session_cipher(config), "the control connection must be encrypted"

    capture = CaptureThread(config).start()
    wait_for(lambda: capture.error is not None or checkpoint_reached(config, master_position(tls_server))(), 30,
             "the capture to start")
    run_full_load(config, spark)
    tls_server.execute("UPDATE t SET v = CONCAT(v, '-changed'), n = -n WHERE id % 7 = 0", database)
    tls_server.execute("DELETE FROM t WHERE id % 11 = 0", database)
    tls_server.execute("UPDATE t SET id = id + 1000 WHERE id % 13 = 0", database)
    tls_server.execute("INSERT INTO t VALUES (5000, 'new', 5)", database)
    end = master_position(tls_server)
    wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 30, "the capture to catch up")
    capture.stop()
    run_merge(spark, config, available_now=True)

    source = tls_server.execute("SELECT id, v, n FROM t ORDER BY id", database)
    lake = spark.read.format("delta").load(f"{config.lake.root}/{table_key(database, 't')}").orderBy("id")
    assert [(r.id, r.v, r.n) for r in lake.collect()] == [tuple(row) for row in source]
    assert [r.status for r in validate(spark, config)] == ["OK"]


def test_wrong_ca_is_refused_by_every_connection(
    tls_server: LocalMariaDB, certs: Certificates, spark: Any, tmp_path: Path
) -> None:
    tls_server.execute("CREATE DATABASE IF NOT EXISTS tls_wrong_ca")
    tls_server.execute("CREATE TABLE IF NOT EXISTS tls_wrong_ca.t (id INT PRIMARY KEY)")
    for mode in ("verify-ca", "verify-identity"):
        config = tls_config(tls_server, tmp_path / mode, "tls_wrong_ca", {"mode": mode, "ca_file": str(certs.other_ca)})
        with pytest.raises(SourceTlsError, match=r"not signed by a trusted CA.*source.tls.ca_file") as control:
            connect(config.source)
        assert f"source.tls.mode is {mode}" in str(control.value)

        capture = CaptureThread(config)
        with pytest.raises(SourceTlsError, match=r"source.tls.ca_file"):
            capture.runner.run()
        with pytest.raises(SourceTlsError, match=r"source.tls.ca_file"):
            run_full_load(config, spark)
        assert "Path does not chain with any of the trust anchors" in jdbc_refusal(spark, config)


def test_host_name_not_in_certificate(tls_server: LocalMariaDB, certs: Certificates, spark: Any,
                                      tmp_path: Path) -> None:
    identity = tls_config(tls_server, tmp_path / "a", "mysql", {"mode": "verify-identity", "ca_file": str(certs.ca)},
                          host="localhost")
    with pytest.raises(SourceTlsError, match=r"does not name localhost.*source.host"):
        connect(identity.source)
    assert "Server identity verification failed" in (refusal := jdbc_refusal(spark, identity)), refusal
    assert "hostname/IP 'localhost'" in refusal

    ca_only = tls_config(tls_server, tmp_path / "b", "mysql", {"mode": "verify-ca", "ca_file": str(certs.ca)},
                         host="localhost")
    assert session_cipher(ca_only)
    assert [row.one for row in jdbc_select_one(spark, ca_only)] == [1]


def test_client_certificate_and_plain_connections(tls_server: LocalMariaDB, certs: Certificates,
                                                  mariadb: LocalMariaDB, spark: Any, tmp_path: Path) -> None:
    with_client_cert = tls_config(tls_server, tmp_path / "c", "mysql", {
        "mode": "verify-identity", "ca_file": str(certs.ca),
        "cert_file": str(certs.client_cert), "key_file": str(certs.client_key)})
    assert session_cipher(with_client_cert)
    assert [row.one for row in jdbc_select_one(spark, with_client_cert)] == [1]

    plain = tls_config(tls_server, tmp_path / "d", "mysql", {"mode": "disabled"})
    with pytest.raises(SourceUnreachableError, match=r"Access denied.*only over TLS.*source.tls.mode: verify-identity"):
        connect(plain.source)  # MariaDB 10.11 answers a plain login under require_secure_transport so

    required = tls_config(mariadb, tmp_path / "e", "mysql", {"mode": "required"})  # the session's plain server
    with pytest.raises(SourceTlsError, match=r"required but the server offers no TLS"):
        connect(required.source)
    assert "SSL" in jdbc_refusal(spark, required)
    preferred = tls_config(mariadb, tmp_path / "f", "mysql", {"mode": "preferred"})
    assert session_cipher(preferred) == ""  # preferred falls back to plain, with a warning
