"""Test certificates made at run time (never committed): a CA, a server certificate it signs, and an
unrelated second CA. The server certificate names only the address ``127.0.0.1`` (an IP SAN), so a
connection to ``localhost`` — the same server — is a host-name mismatch."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Certificates:
    ca: Path            # the CA that signed the server certificate
    other_ca: Path      # a CA that signed nothing the server holds
    server_cert: Path   # SAN IP:127.0.0.1 only
    server_key: Path
    client_cert: Path   # signed by ``ca``
    client_key: Path

    def server_cnf(self, require_secure_transport: bool = True) -> str:
        """``[mariadbd]`` lines enabling TLS with these files."""
        return (f"ssl_ca = {self.ca}\nssl_cert = {self.server_cert}\nssl_key = {self.server_key}\n"
                f"require_secure_transport = {'ON' if require_secure_transport else 'OFF'}\n")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _ca(common_name: str, folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, Path]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    path = folder / f"{common_name.replace(' ', '-')}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key, path


def _leaf(common_name: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
          san: list[x509.GeneralName] | None, folder: Path, stem: str) -> tuple[Path, Path]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return cert_path, key_path


def make_certificates(folder: Path) -> Certificates:
    """Fresh keys and certificates in ``folder`` (a test's temp folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key, ca_path = _ca("binlake test CA", folder)
    _, _, other_path = _ca("unrelated CA", folder)
    server_cert, server_key = _leaf("binlake test server", ca, ca_key,
                                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], folder, "server")
    client_cert, client_key = _leaf("binlake", ca, ca_key, None, folder, "client")
    return Certificates(ca_path, other_path, server_cert, server_key, client_cert, client_key)
