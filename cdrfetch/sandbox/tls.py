"""TLS material for the HTTPS emulators: a fresh self-signed certificate for 127.0.0.1.

Needs the `cryptography` package (a development dependency), imported only when HTTPS is asked for.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from datetime import datetime, timedelta, timezone


def self_signed() -> tuple[bytes, bytes]:
    """A fresh EC key and a self-signed CA certificate for 127.0.0.1 / localhost (PEM)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cdrfetch sandbox")])
    now = datetime.now(timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ca_file(pem: bytes) -> str:
    """The CA certificate in a temp file (removed at exit), for the `ca_bundle` setting."""
    handle, path = tempfile.mkstemp(prefix="cdrfetch-sandbox-ca-", suffix=".pem")
    with os.fdopen(handle, "wb") as out:
        out.write(pem)
    atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)
