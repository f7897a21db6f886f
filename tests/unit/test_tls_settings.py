"""source.tls → pymysql and Connector/J settings, the RSA key-retrieval guard replayed on recorded
server packets, and the classification of TLS failures (messages recorded from pymysql and Connector/J)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import pymysql
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError
from pymysql.protocol import MysqlPacket

from binlake import tls
from binlake.config import SourceConfig, TlsConfig, TlsMode

MODES = ["disabled", "preferred", "required", "verify-ca", "verify-identity"]


def test_default_is_preferred_and_key_retrieval_off() -> None:
    assert SourceConfig().tls == TlsConfig(mode=TlsMode.PREFERRED, allow_public_key_retrieval=False)


def test_config_refuses_half_a_client_pair_and_missing_files(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="cert_file and key_file go together"):
        TlsConfig(mode=TlsMode.REQUIRED, cert_file=str(cert))
    with pytest.raises(ValidationError, match="needs mode required or stronger"):
        TlsConfig(mode=TlsMode.PREFERRED, cert_file=str(cert), key_file=str(cert))
    with pytest.raises(ValidationError, match="is not a file"):
        TlsConfig(ca_file=str(tmp_path / "absent.pem"))
    with pytest.raises(ValidationError, match="mode"):
        TlsConfig.model_validate({"mode": "verify_full"})


@pytest.mark.parametrize(("mode", "verify", "hostname"), [
    ("required", ssl.CERT_NONE, False),
    ("verify-ca", ssl.CERT_REQUIRED, False),
    ("verify-identity", ssl.CERT_REQUIRED, True),
])
def test_pymysql_gets_a_context_for_every_mode_that_refuses_plain(mode: str, verify: int, hostname: bool) -> None:
    settings = tls.pymysql_settings(TlsConfig.model_validate({"mode": mode}))
    context = settings["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (verify, hostname)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert "ssl_disabled" not in settings


def test_pymysql_disabled_and_preferred() -> None:
    assert tls.pymysql_settings(TlsConfig(mode=TlsMode.DISABLED))["ssl_disabled"] is True
    preferred = tls.pymysql_settings(TlsConfig())
    assert "ssl" not in preferred and "ssl_disabled" not in preferred  # pymysql's own preferred mode


def test_pymysql_connection_takes_the_settings_and_requires_tls() -> None:
    """pymysql 1.2 marks an explicit context as required: a server without TLS is refused before the login."""
    kwargs = dict(host="127.0.0.1", port=1, user="u", defer_connect=True,
                  **tls.pymysql_settings(TlsConfig(mode=TlsMode.REQUIRED)))
    conn = pymysql.connect(**kwargs)
    assert conn.ssl and conn._ssl_required  # type: ignore[attr-defined]
    plain = pymysql.connect(host="127.0.0.1", port=1, user="u", defer_connect=True,
                            **tls.pymysql_settings(TlsConfig(mode=TlsMode.DISABLED)))
    assert not plain.ssl


@pytest.mark.parametrize("mode", MODES)
def test_jdbc_properties_per_mode(mode: str) -> None:
    properties = tls.jdbc_properties(TlsConfig.model_validate({"mode": mode}))
    assert properties["sslMode"] == mode.upper().replace("-", "_")
    assert properties["allowPublicKeyRetrieval"] == "false"
    assert "trustCertificateKeyStoreUrl" not in properties  # no ca_file: Java's cacerts


def test_jdbc_key_retrieval_only_when_allowed() -> None:
    allowed = TlsConfig(mode=TlsMode.DISABLED, allow_public_key_retrieval=True)
    assert tls.jdbc_properties(allowed)["allowPublicKeyRetrieval"] == "true"


def test_jdbc_trust_store_from_the_ca_file(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

    ca = _self_signed(tmp_path)
    config = TlsConfig(mode=TlsMode.VERIFY_IDENTITY, ca_file=str(ca))
    properties = tls.jdbc_settings(config, "db.example.com")
    assert properties["sslMode"] == "VERIFY_IDENTITY"
    assert properties["trustCertificateKeyStoreType"] == "PKCS12"
    assert properties["fallbackToSystemTrustStore"] == "false"  # only ca_file's CAs, as with pymysql
    store = Path(properties["trustCertificateKeyStoreUrl"].removeprefix("file://"))
    loaded = pkcs12.load_pkcs12(store.read_bytes(), properties["trustCertificateKeyStorePassword"].encode())
    assert [c.certificate for c in loaded.additional_certs] == x509.load_pem_x509_certificates(ca.read_bytes())
    assert tls.jdbc_settings(config, "db.example.com") == properties  # converted once per process


def _self_signed(folder: Path) -> Path:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = folder / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


# --- the key-retrieval guard, on recorded server packets ------------------------------------------

FULL_AUTH = b"\x01\x04"        # caching_sha2_password: "perform full authentication"
FAST_OK = b"\x01\x03"          # caching_sha2_password: "fast authentication succeeded"
OK = b"\x00\x00\x00\x02\x00\x00\x00"


class RecordedServer:
    """What pymysql's auth functions need of a connection: packets the server sends, packets written."""

    def __init__(self, replies: list[bytes], secure: bool, password: bytes = b"s3cret-password") -> None:
        self.replies = [MysqlPacket(reply, "utf8") for reply in replies]
        self.written: list[bytes] = []
        self._secure = secure
        self.server_public_key: bytes | None = None
        self.password = password
        self.salt = b"0123456789abcdefghij"

    def write_packet(self, payload: bytes) -> None:
        self.written.append(payload)

    def _read_packet(self) -> Any:
        return self.replies.pop(0)


def _public_key_reply() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return b"\x01" + key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)


def _handler(plugin: str, allowed: bool, conn: RecordedServer) -> Any:
    return tls.pymysql_settings(TlsConfig(allow_public_key_retrieval=allowed))["auth_plugin_map"][plugin](conn)


def test_caching_sha2_full_auth_over_plain_is_refused_before_the_password_leaves() -> None:
    conn = RecordedServer([], secure=False)
    with pytest.raises(tls.PublicKeyRetrievalRefused, match="allow_public_key_retrieval"):
        _handler("caching_sha2_password", False, conn).authenticate(MysqlPacket(FULL_AUTH, "utf8"))
    assert conn.written == []


def test_caching_sha2_allowed_retrieves_the_key_and_sends_only_ciphertext() -> None:
    conn = RecordedServer([_public_key_reply(), OK], secure=False)
    _handler("caching_sha2_password", True, conn).authenticate(MysqlPacket(FULL_AUTH, "utf8"))
    assert conn.written[0] == b"\x02"  # the public-key request
    assert len(conn.written[1]) == 256 and conn.password not in conn.written[1]


def test_caching_sha2_over_tls_sends_the_password_inside_tls_and_fast_path_passes_in_clear() -> None:
    secure = RecordedServer([OK], secure=True)
    _handler("caching_sha2_password", False, secure).authenticate(MysqlPacket(FULL_AUTH, "utf8"))
    assert secure.written == [secure.password + b"\0"]
    fast = RecordedServer([OK], secure=False)
    _handler("caching_sha2_password", False, fast).authenticate(MysqlPacket(FAST_OK, "utf8"))
    assert fast.written == []


def test_caching_sha2_auth_switch_tries_the_fast_path_then_refuses_full_auth_in_clear() -> None:
    conn = RecordedServer([FULL_AUTH], secure=False)
    switch: Any = MysqlPacket(b"\xfecaching_sha2_password\x00" + b"A" * 20 + b"\x00", "utf8")
    switch.read_uint8()
    switch.read_string()  # pymysql hands the handler the packet positioned after the plugin name
    with pytest.raises(tls.PublicKeyRetrievalRefused):
        _handler("caching_sha2_password", False, conn).authenticate(switch)
    assert len(conn.written) == 1 and conn.password not in conn.written[0]  # only the scramble


def test_sha256_password_over_plain_refused_unless_allowed() -> None:
    conn = RecordedServer([], secure=False)
    with pytest.raises(tls.PublicKeyRetrievalRefused, match="sha256_password"):
        _handler("sha256_password", False, conn).authenticate(MysqlPacket(_public_key_reply(), "utf8"))
    assert conn.written == []
    allowed = RecordedServer([OK], secure=False)
    _handler("sha256_password", True, allowed).authenticate(MysqlPacket(_public_key_reply(), "utf8"))
    assert len(allowed.written[0]) == 256


def test_pymysql_version_is_the_one_checked() -> None:
    tls.check_pymysql_version()


# --- failures ---------------------------------------------------------------------------------------

VERIFY = TlsConfig(mode=TlsMode.VERIFY_IDENTITY)


@pytest.mark.parametrize(("message", "expected"), [
    ("Can't connect to MySQL server on '127.0.0.1' ([SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
     "unable to get local issuer certificate (_ssl.c:1006))", "not signed by a trusted CA"),
    ("Can't connect to MySQL server on 'localhost' ([SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
     "Hostname mismatch, certificate is not valid for 'localhost'. (_ssl.c:1006))", "does not name localhost"),
    ("java.security.cert.CertPathValidatorException: Path does not chain with any of the trust anchors",
     "not signed by a trusted CA"),
    ("java.security.cert.CertificateException: Server identity verification failed. None of the certificate's DNS "
     "or IP Subject Alternative Name entries matched the server hostname/IP 'localhost'.", "does not name localhost"),
    ("SSL is required but the server doesn't support it", "offers no TLS"),
    ("Connections using insecure transport are prohibited while --require_secure_transport=ON.",
     "accepts only TLS"),
])
def test_failure_hints_name_the_setting(message: str, expected: str) -> None:
    hint = tls.failure_hint(VERIFY, "localhost", message)
    assert hint is not None and expected in hint and "source." in hint


def test_other_failures_are_not_tls() -> None:
    assert tls.failure_hint(VERIFY, "h", "Access denied for user 'binlake'@'10.0.0.1' (using password: YES)") is None
    assert tls.failure_hint(VERIFY, "h", "Can't connect to MySQL server on 'h' ([Errno 111] Connection refused)") \
        is None


def test_unverified_modes_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="binlake.tls"):
        for _ in range(3):
            tls.warn_unverified(TlsConfig(mode=TlsMode.REQUIRED), "warn-once.example")
        tls.warn_unverified(TlsConfig(mode=TlsMode.VERIFY_CA), "warn-once.example")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "not verified" in warnings[0] and "verify-identity" in warnings[0]


def test_a_tls_refusal_on_reconnect_stops_the_capture() -> None:
    from binlake.capture.runner import _fatal
    from binlake.source import SourceTlsError, SourceUnreachableError

    refused = SourceTlsError("cannot connect to source binlake@db:3306: the server's TLS certificate is not signed …")
    assert _fatal(refused, "binlog.000001:4") is refused
    assert _fatal(SourceUnreachableError("connection refused"), "binlog.000001:4") is None  # still retried
