"""TLS of every connection to the source: one setting (``source.tls``), two clients.

* pymysql — control connections (pre-flight, status, validation, the full load's planning) and the
  capture's binlog stream (pymysqlreplication opens its connections with the same keyword arguments):
  :func:`pymysql_settings`.
* MySQL Connector/J — the full load's, validation's and resync's JDBC reads on the Spark driver and
  executors: :func:`jdbc_properties`.

The modes are MySQL's ``--ssl-mode`` values and mean the same for both clients:

============== ================ ======================= ====================================
mode           plain server     certificate             host name
============== ================ ======================= ====================================
disabled       plain            —                       —
preferred      plain (fallback) not checked             not checked
required       refused          not checked             not checked
verify-ca      refused          a trusted CA signed it  not checked
verify-identity refused         a trusted CA signed it  names ``source.host`` (SAN / CN)
============== ================ ======================= ====================================

``preferred`` (the default, for compatibility) and ``required`` log a warning once per process: a
man in the middle can read and change such a connection. Trusted CAs come from ``ca_file`` (PEM,
e.g. AWS's ``global-bundle.pem``), else the system's stores.

Password exchange: ``caching_sha2_password`` and ``sha256_password`` send the password in clear
inside TLS; over a plain connection they need the server's RSA public key, which a man in the
middle can substitute. pymysql fetches that key silently; :class:`_KeyRetrievalGuard` refuses it
before the password leaves unless ``allow_public_key_retrieval`` is set — the same rule as
Connector/J's ``allowPublicKeyRetrieval`` (which this module sets from the same key). The guard
is binlake's only contact with pymysql's authentication internals (checked: PyMySQL 1.1-1.2).
"""

from __future__ import annotations

import atexit
import functools
import importlib.metadata
import logging
import secrets
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pymysql
from pymysql import _auth as _pymysql_auth

from binlake.config import TlsConfig, TlsMode

__all__ = ["TlsMode", "failure_hint", "jdbc_settings", "pymysql_settings", "warn_unverified"]

log = logging.getLogger(__name__)

SUPPORTED_PYMYSQL = ("1.1.", "1.2.")
CR_AUTH_PLUGIN_ERR = 2061  # the MySQL client's "Authentication requires secure connection"
CR_SSL_CONNECTION_ERROR = 2026
_warned: set[tuple[str, TlsMode]] = set()
_auth: Any = _pymysql_auth  # untyped internals (the stubs omit part of them)


class PublicKeyRetrievalRefused(pymysql.err.OperationalError):
    """The server asked for RSA key exchange over a plain connection and the user did not allow it."""


def warn_unverified(tls: TlsConfig, host: str) -> None:
    """Log once per process and host that connections in ``preferred`` / ``required`` are not verified."""
    if tls.mode.verifies or tls.mode is TlsMode.DISABLED or (host, tls.mode) in _warned:
        return
    _warned.add((host, tls.mode))
    log.warning(
        "source.tls.mode is %s: the connection to %s is %s and the server's certificate is not verified, "
        "so a man in the middle can read or change what binlake replicates; set source.tls.mode: "
        "verify-identity (with source.tls.ca_file, e.g. the AWS CA bundle for RDS/Aurora)",
        tls.mode.value, host,
        "encrypted only if the server offers TLS" if tls.mode is TlsMode.PREFERRED else "encrypted",
    )


def ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """The client context of a mode that requires TLS (``required`` and stronger)."""
    if not tls.mode.encrypts:
        raise ValueError(f"source.tls.mode {tls.mode.value} has no required TLS context")
    context = ssl.create_default_context(cafile=tls.ca_file) if tls.mode.verifies else ssl.SSLContext(
        ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = tls.mode is TlsMode.VERIFY_IDENTITY
    context.verify_mode = ssl.CERT_REQUIRED if tls.mode.verifies else ssl.CERT_NONE
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def pymysql_settings(tls: TlsConfig) -> dict[str, Any]:
    """pymysql keyword arguments for ``tls`` (for :func:`binlake.source.connection_kwargs`).

    ``disabled`` → ``ssl_disabled``; ``preferred`` → pymysql's own preferred mode (TLS when the
    server offers it, no verification); stronger modes → an :class:`ssl.SSLContext`, with which
    pymysql refuses a server that offers no TLS before it sends anything. Every mode carries the
    key-retrieval guard for the SHA-256 plugins.
    """
    check_pymysql_version()
    settings: dict[str, Any] = {"auth_plugin_map": _guards(tls.allow_public_key_retrieval)}
    if tls.mode is TlsMode.DISABLED:
        settings["ssl_disabled"] = True
    elif tls.mode.encrypts:
        settings["ssl"] = ssl_context(tls)
    return settings


def _guards(allowed: bool) -> dict[str, type[_KeyRetrievalGuard]]:
    return {
        "caching_sha2_password": _CachingSha2Guard if not allowed else _CachingSha2Allowed,
        "sha256_password": _Sha256Guard if not allowed else _Sha256Allowed,
    }


class _KeyRetrievalGuard:
    """A pymysql auth-plugin handler: pymysql's own exchange, minus RSA key exchange in the clear."""

    allowed: ClassVar[bool] = False
    plugin: ClassVar[str] = ""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def refuse(self) -> None:
        raise PublicKeyRetrievalRefused(
            CR_AUTH_PLUGIN_ERR,
            f"the source's {self.plugin} login needs the password RSA-encrypted with a public key sent over "
            "this unencrypted connection, which a man in the middle can substitute: use TLS (source.tls.mode: "
            "verify-identity) or, on a trusted network only, set source.tls.allow_public_key_retrieval: true",
        )

    def exposed(self) -> bool:
        """Would the next step send the password over a plain connection with a retrieved key?"""
        conn = self.conn
        return not (self.allowed or conn._secure or conn.server_public_key or not conn.password)


class _Sha256Guard(_KeyRetrievalGuard):
    plugin = "sha256_password"

    def authenticate(self, pkt: Any) -> Any:
        if self.exposed():
            self.refuse()
        return _auth.sha256_password_auth(self.conn, pkt)


class _Sha256Allowed(_Sha256Guard):
    allowed = True


class _CachingSha2Guard(_KeyRetrievalGuard):
    """caching_sha2_password: the fast path (a scramble, no password) is fine in the clear; full
    authentication (result 4) over a plain connection needs the RSA key and is refused."""

    plugin = "caching_sha2_password"

    def authenticate(self, pkt: Any) -> Any:
        conn = self.conn
        if self.exposed() and pkt.is_auth_switch_request():
            conn.salt = pkt.read_all().rstrip(b"\0")
            pkt = _auth._roundtrip(conn, _auth.scramble_caching_sha2(conn.password, conn.salt))
        if self.exposed() and pkt.is_extra_auth_data() and pkt._data[1:2] == b"\x04":
            self.refuse()
        return _auth.caching_sha2_password_auth(conn, pkt)


class _CachingSha2Allowed(_CachingSha2Guard):
    allowed = True


@functools.cache
def check_pymysql_version() -> None:
    """Refuse a pymysql whose authentication internals the guard was not checked against."""
    version = importlib.metadata.version("PyMySQL")
    if not version.startswith(SUPPORTED_PYMYSQL):
        raise RuntimeError(f"binlake.tls was checked against PyMySQL {'x, '.join(SUPPORTED_PYMYSQL)}x, found "
                           f"{version}: check the key-retrieval guard against its pymysql/_auth.py, then add it")


def failure_hint(tls: TlsConfig, host: str, text: str) -> str | None:
    """The fix for a connection failure caused by TLS (``text``: the client's message), else ``None``."""
    lowered = text.lower()
    setting = f"source.tls.mode is {tls.mode.value}, source.tls.ca_file is {tls.ca_file or 'unset (system CAs)'}"
    if "mismatch" in lowered or "doesn't match" in lowered or "server identity verification failed" in lowered:
        return (f"the server's TLS certificate does not name {host} ({setting}): connect by a name the "
                "certificate holds (source.host), or use source.tls.mode: verify-ca to skip the name check")
    if "certificate verify failed" in lowered or "pkix path" in lowered or "trust anchors" in lowered \
            in lowered:
        return (f"the server's TLS certificate is not signed by a trusted CA ({setting}): set source.tls.ca_file "
                "to the CA bundle that signed it (RDS/Aurora: the AWS global-bundle.pem)")
    if "ssl is required but the server doesn't support it" in lowered:
        return (f"source.tls.mode is {tls.mode.value} but the server offers no TLS: enable TLS on the server "
                "(ssl_cert / ssl_key) or — on a trusted network only — lower source.tls.mode")
    if "secure transport" in lowered or "insecure transport" in lowered:
        return "the server accepts only TLS connections: set source.tls.mode: verify-identity (or required)"
    if "ssl" in lowered and "handshake" in lowered:
        return f"the TLS handshake with the server failed ({setting})"
    return None


# --- Connector/J ------------------------------------------------------------------------------

_JDBC_MODE = {
    TlsMode.DISABLED: "DISABLED",
    TlsMode.PREFERRED: "PREFERRED",
    TlsMode.REQUIRED: "REQUIRED",
    TlsMode.VERIFY_CA: "VERIFY_CA",
    TlsMode.VERIFY_IDENTITY: "VERIFY_IDENTITY",
}


@dataclass(frozen=True)
class KeyStore:
    """A PKCS12 file Connector/J reads (``url`` is ``file:…``) and its password (never logged)."""

    url: str
    password: str


def jdbc_properties(tls: TlsConfig, trust: KeyStore | None = None, client: KeyStore | None = None) -> dict[str, str]:
    """Connector/J 9 connection properties for ``tls`` (pure; the stores come from :func:`jdbc_key_stores`).

    With a trust store only its CAs are trusted (``fallbackToSystemTrustStore=false``), as pymysql
    trusts only ``ca_file``; without one Java's ``cacerts`` is used.
    """
    properties = {
        "sslMode": _JDBC_MODE[tls.mode],
        "allowPublicKeyRetrieval": "true" if tls.allow_public_key_retrieval else "false",
    }
    if tls.mode.encrypts:
        properties["tlsVersions"] = "TLSv1.2,TLSv1.3"
    if trust is not None:
        properties.update(trustCertificateKeyStoreUrl=trust.url, trustCertificateKeyStoreType="PKCS12",
                          trustCertificateKeyStorePassword=trust.password, fallbackToSystemTrustStore="false")
    if client is not None:
        properties.update(clientCertificateKeyStoreUrl=client.url, clientCertificateKeyStoreType="PKCS12",
                          clientCertificateKeyStorePassword=client.password, fallbackToSystemKeyStore="false")
    return properties


_stores: dict[TlsConfig, tuple[KeyStore | None, KeyStore | None]] = {}


def jdbc_key_stores(tls: TlsConfig) -> tuple[KeyStore | None, KeyStore | None]:
    """``(trust store of ca_file, client key store of cert_file + key_file)`` as PKCS12 files.

    Java reads PEM neither as a trust store nor as a key store, so the PEM files are converted
    once per process into a private folder of the system temp folder (mode 0700, removed at exit).
    Executors read the same ``file:`` paths: on a Spark cluster spanning several hosts, run the
    job with the temp folder on shared storage (``TMPDIR``) — local and single-host standalone
    clusters need nothing.
    """
    if tls in _stores:
        return _stores[tls]
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    folder = Path(tempfile.mkdtemp(prefix="binlake-tls-"))
    atexit.register(shutil.rmtree, folder, True)
    trust = client = None
    if tls.ca_file and tls.mode.verifies:
        cas = x509.load_pem_x509_certificates(Path(tls.ca_file).read_bytes())
        password = secrets.token_urlsafe(16)
        data = pkcs12.serialize_java_truststore(
            [pkcs12.PKCS12Certificate(ca, f"ca{index}".encode()) for index, ca in enumerate(cas)],
            serialization.BestAvailableEncryption(password.encode()),
        )
        (folder / "trust.p12").write_bytes(data)
        trust = KeyStore((folder / "trust.p12").as_uri(), password)
    if tls.cert_file and tls.key_file:
        certs = x509.load_pem_x509_certificates(Path(tls.cert_file).read_bytes())
        key = serialization.load_pem_private_key(Path(tls.key_file).read_bytes(), password=None)
        password = secrets.token_urlsafe(16)
        data = pkcs12.serialize_key_and_certificates(
            b"client", key, certs[0], certs[1:] or None,  # type: ignore[arg-type]
            serialization.BestAvailableEncryption(password.encode()),
        )
        (folder / "client.p12").write_bytes(data)
        client = KeyStore((folder / "client.p12").as_uri(), password)
    _stores[tls] = (trust, client)
    return trust, client


def jdbc_settings(tls: TlsConfig, host: str) -> dict[str, str]:
    """Every Connector/J TLS property for ``tls`` (stores written when needed); warns when unverified."""
    warn_unverified(tls, host)
    trust, client = jdbc_key_stores(tls) if (tls.ca_file and tls.mode.verifies) or tls.cert_file else (None, None)
    return jdbc_properties(tls, trust, client)
