"""TLS for the services: server credentials and the inference worker's channel to the keystore.

Certificates come from PEM files named in the settings and are read once, at start-up; a
missing, unreadable or non-PEM file stops the start with an error naming the setting and the
file. Empty settings keep plaintext gRPC, which is only meant for loopback development.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from hushtune.services.common.config import Settings, env_name

CERTIFICATE_MARK = b"-----BEGIN CERTIFICATE-----"
PRIVATE_KEY_MARK = b"PRIVATE KEY-----"


def read_pem(setting: str, path: str, mark: bytes) -> bytes:
    """The bytes of the PEM file named by ``setting``, refused when they lack ``mark``.

    Raises:
        ValueError: the file is missing, unreadable or not the expected PEM, naming both.
    """
    where = f"{env_name(setting)}={path}"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{where}: cannot read the file ({exc.strerror or exc})") from exc
    if mark not in data:
        kind = "certificate" if mark == CERTIFICATE_MARK else "private key"
        raise ValueError(f"{where}: not a PEM {kind} (no {mark.decode()!r} line)")
    return data


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """Credentials of this process's servers; None when TLS is off (no certificate set).

    With ``tls_client_ca_file`` set, every caller must present a certificate that CA signed.
    """
    if not settings.tls_cert_file:
        return None
    certificate = read_pem("tls_cert_file", settings.tls_cert_file, CERTIFICATE_MARK)
    key = read_pem("tls_key_file", settings.tls_key_file, PRIVATE_KEY_MARK)
    client_ca = None
    if settings.tls_client_ca_file:
        client_ca = read_pem("tls_client_ca_file", settings.tls_client_ca_file, CERTIFICATE_MARK)
    return grpc.ssl_server_credentials(
        [(key, certificate)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def keystore_channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """Credentials of inference workers' calls to the keystore; None for plaintext."""
    if not settings.keystore_ca_file:
        return None
    root = read_pem("keystore_ca_file", settings.keystore_ca_file, CERTIFICATE_MARK)
    certificate = key = None
    if settings.keystore_client_cert_file:
        certificate = read_pem(
            "keystore_client_cert_file", settings.keystore_client_cert_file, CERTIFICATE_MARK
        )
        key = read_pem(
            "keystore_client_key_file", settings.keystore_client_key_file, PRIVATE_KEY_MARK
        )
    return grpc.ssl_channel_credentials(root, private_key=key, certificate_chain=certificate)


def check_files(settings: Settings) -> None:
    """Read every configured TLS file once, so that a bad one stops the start before any server.

    Raises:
        ValueError: a file is missing, unreadable or not PEM, naming the setting and the file.
    """
    server_credentials(settings)
    keystore_channel_credentials(settings)


def open_keystore_channel(
    settings: Settings, options: list[tuple[str, int]]
) -> grpc.Channel:
    """The channel an inference worker fetches keys on: TLS when a keystore CA is set."""
    credentials = keystore_channel_credentials(settings)
    if credentials is None:
        return grpc.insecure_channel(settings.keystore_address, options=options)
    return grpc.secure_channel(settings.keystore_address, credentials, options=options)
