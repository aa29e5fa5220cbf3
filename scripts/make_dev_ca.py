"""Make a development certificate authority, a server certificate and a client certificate.

Usage: python scripts/make_dev_ca.py OUT_DIR [--san NAME_OR_IP ...] [--days N]

Writes into OUT_DIR (created 0700):
    ca.pem, ca.key            the CA (its key signs the two certificates below)
    server.pem, server.key    for every hushtune service (HUSHTUNE_TLS_CERT_FILE / _KEY_FILE)
    client.pem, client.key    for callers when servers require client certificates (mutual TLS)

The server certificate names localhost, 127.0.0.1, ::1 and the Compose/Kubernetes service names
(keystore, featurizer, inference), plus every --san. Private keys are written 0600. This CA is
for development and tests only: production certificates come from the operator's own PKI.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_SANS = ("localhost", "127.0.0.1", "::1", "keystore", "featurizer", "inference")
"""Names every development server certificate carries: loopback and the service names."""
DEFAULT_DAYS = 365
PRIVATE_FILE = 0o600
PUBLIC_FILE = 0o644

PrivateKey = ec.EllipticCurvePrivateKey


def new_key() -> PrivateKey:
    """A fresh P-256 key: small, fast and supported by gRPC's TLS stack."""
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hushtune development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: PrivateKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def make_ca(days: int = DEFAULT_DAYS) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA certificate that may sign leaf certificates only."""
    key = new_key()
    name = _name("hushtune development CA")
    certificate = (
        _builder(name, name, key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _san(name: str) -> x509.GeneralName:
    """An IP address SAN for addresses, a DNS name SAN otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_leaf(
    ca: tuple[x509.Certificate, PrivateKey],
    common_name: str,
    *,
    server: bool,
    sans: Sequence[str] = (),
    days: int = DEFAULT_DAYS,
) -> tuple[x509.Certificate, PrivateKey]:
    """A certificate signed by ``ca`` for a server (with ``sans``) or a client."""
    ca_certificate, ca_key = ca
    key = new_key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(_name(common_name), ca_certificate.subject, key, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        names = [_san(name) for name in dict.fromkeys(sans)]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` with ``mode`` from the start (no moment with wider permissions)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def write_pair(out_dir: Path, stem: str, pair: tuple[x509.Certificate, PrivateKey]) -> None:
    """``<stem>.pem`` (certificate, 0644) and ``<stem>.key`` (PKCS#8 private key, 0600)."""
    certificate, key = pair
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
    _write(out_dir / f"{stem}.pem", certificate_pem, PUBLIC_FILE)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(out_dir / f"{stem}.key", key_pem, PRIVATE_FILE)


def make_dev_ca(
    out_dir: str | Path, extra_sans: Sequence[str] = (), days: int = DEFAULT_DAYS
) -> dict[str, Path]:
    """Write the CA, server and client pairs into ``out_dir``; returns the paths by file name."""
    if days <= 0:
        raise ValueError(f"--days must be positive, got {days}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = make_ca(days)
    write_pair(out, "ca", ca)
    sans = [*DEFAULT_SANS, *extra_sans]
    write_pair(out, "server", make_leaf(ca, "hushtune server", server=True, sans=sans, days=days))
    write_pair(out, "client", make_leaf(ca, "hushtune client", server=False, days=days))
    return {
        name: out / name
        for name in ("ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key")
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="folder to write the certificates and keys into")
    parser.add_argument(
        "--san", action="append", default=[], help="extra DNS name or IP of the server (repeat)"
    )
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="validity in days")
    args = parser.parse_args(argv)
    try:
        paths = make_dev_ca(args.out_dir, args.san, args.days)
    except ValueError as exc:
        parser.error(str(exc))
    for name, path in paths.items():
        print(f"{name:<11} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
